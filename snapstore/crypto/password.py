"""Where an encrypted repository's passphrase comes from (restic's order and names).

1. ``SNAPSTORE_PASSWORD_FILE``: the file's first line;
2. ``SNAPSTORE_PASSWORD_COMMAND``: the first line the command prints (a secret manager);
3. ``SNAPSTORE_PASSWORD``;
4. a prompt on the terminal, never echoed -- only when stdin is a terminal.
"""
from __future__ import annotations

import os
import sys

from ..errors import UsageError


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def password_from_file(path: str, what: str = "SNAPSTORE_PASSWORD_FILE") -> str:
    """The first line of ``path``; UsageError naming ``what`` when it is unreadable or empty."""
    try:
        with open(path, encoding="utf-8") as f:
            value = _first_line(f.read())
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text") from None
    if not value:
        raise UsageError(f"{what} {path} is empty")
    return value


def password_from_environment(environ=os.environ) -> str | None:
    path = environ.get("SNAPSTORE_PASSWORD_FILE")
    if path:
        return password_from_file(path)
    command = environ.get("SNAPSTORE_PASSWORD_COMMAND")
    if command:
        import shlex
        import subprocess

        try:
            done = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
        except OSError as exc:
            raise UsageError(f"SNAPSTORE_PASSWORD_COMMAND failed to start: {exc.strerror}") from None
        value = _first_line(done.stdout)
        if done.returncode != 0 or not value:
            raise UsageError(f"SNAPSTORE_PASSWORD_COMMAND exited with {done.returncode} "
                             "and printed no passphrase")
        return value
    return environ.get("SNAPSTORE_PASSWORD") or None


def get_password(what: str = "repository", *, confirm: bool = False, environ=os.environ) -> str:
    """The passphrase from the environment, else from the terminal; UsageError when there is neither."""
    value = password_from_environment(environ)
    if value:
        return value
    if not sys.stdin.isatty():
        raise UsageError(f"the {what} is encrypted: set SNAPSTORE_PASSWORD_FILE, "
                         "SNAPSTORE_PASSWORD_COMMAND or SNAPSTORE_PASSWORD, or run in a terminal")
    return prompt_password(f"passphrase for the {what}: ", confirm=confirm)


def new_password(path: str | None, option: str = "--new-password-file") -> str:
    """A passphrase for a new key: the first line of ``path`` (the ``option`` naming it),
    else asked twice on the terminal.  The SNAPSTORE_PASSWORD* variables are never used
    here: they hold the passphrase that opens the repository, not the new one."""
    if path:
        return password_from_file(path, option)
    if not sys.stdin.isatty():
        raise UsageError(f"no terminal to ask the new passphrase on: give it with {option} FILE")
    return prompt_password("new passphrase: ", confirm=True)


def prompt_password(prompt: str, *, confirm: bool = False) -> str:
    import getpass

    value = getpass.getpass(prompt)
    if not value:
        raise UsageError("an empty passphrase is not allowed")
    if confirm and getpass.getpass("enter it again: ") != value:
        raise UsageError("the passphrases do not match")
    return value
