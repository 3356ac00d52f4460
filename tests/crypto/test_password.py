"""Where the passphrase comes from (snapstore/crypto/password.py): real files, real commands."""
from __future__ import annotations

import shlex
import sys

import pytest

from snapstore.crypto.password import get_password, new_password, password_from_environment, password_from_file
from snapstore.errors import UsageError


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "pw"
    path.write_text("from the file\nsecond line is ignored\n")
    return path


def test_file_gives_its_first_line(secret_file):
    assert password_from_environment({"SNAPSTORE_PASSWORD_FILE": str(secret_file)}) == "from the file"
    secret_file.write_text("no newline")
    assert password_from_environment({"SNAPSTORE_PASSWORD_FILE": str(secret_file)}) == "no newline"


def test_missing_empty_and_binary_files_are_refused(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(UsageError, match=f"cannot read SNAPSTORE_PASSWORD_FILE {missing}"):
        password_from_environment({"SNAPSTORE_PASSWORD_FILE": str(missing)})
    with pytest.raises(UsageError, match="cannot read SNAPSTORE_PASSWORD_FILE"):
        password_from_environment({"SNAPSTORE_PASSWORD_FILE": str(tmp_path)})  # a directory
    for empty in ("", "\n", "\nsecond"):
        (tmp_path / "empty").write_text(empty)
        with pytest.raises(UsageError, match="is empty"):
            password_from_environment({"SNAPSTORE_PASSWORD_FILE": str(tmp_path / "empty")})
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="not UTF-8"):
        password_from_file(str(tmp_path / "binary"))


def test_command_gives_its_first_printed_line(secret_file):
    assert password_from_environment({"SNAPSTORE_PASSWORD_COMMAND": "echo from the command"}) == "from the command"
    cat = f"cat {shlex.quote(str(secret_file))}"
    assert password_from_environment({"SNAPSTORE_PASSWORD_COMMAND": cat}) == "from the file"


def test_failing_commands_are_refused(tmp_path):
    with pytest.raises(UsageError, match="exited with 1"):
        password_from_environment({"SNAPSTORE_PASSWORD_COMMAND": "false"})
    with pytest.raises(UsageError, match="printed no passphrase"):
        password_from_environment({"SNAPSTORE_PASSWORD_COMMAND": "true"})
    with pytest.raises(UsageError, match="exited with"):
        password_from_environment({"SNAPSTORE_PASSWORD_COMMAND": f"cat {tmp_path / 'missing'}"})
    with pytest.raises(UsageError, match="failed to start"):
        password_from_environment({"SNAPSTORE_PASSWORD_COMMAND": str(tmp_path / "no-such-program")})


def test_order_file_then_command_then_variable(secret_file):
    everything = {"SNAPSTORE_PASSWORD_FILE": str(secret_file), "SNAPSTORE_PASSWORD_COMMAND": "echo cmd",
                  "SNAPSTORE_PASSWORD": "var"}
    assert password_from_environment(everything) == "from the file"
    everything.pop("SNAPSTORE_PASSWORD_FILE")
    assert password_from_environment(everything) == "cmd"
    everything.pop("SNAPSTORE_PASSWORD_COMMAND")
    assert password_from_environment(everything) == "var"
    assert password_from_environment({"SNAPSTORE_PASSWORD": ""}) is None
    assert password_from_environment({}) is None


def test_without_a_source_or_terminal_the_user_is_told_what_to_set(monkeypatch):
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))
    with pytest.raises(UsageError, match="SNAPSTORE_PASSWORD_FILE, SNAPSTORE_PASSWORD_COMMAND or SNAPSTORE_PASSWORD"):
        get_password(environ={})
    assert get_password(environ={"SNAPSTORE_PASSWORD": "x"}) == "x"


def test_new_passphrase_from_a_file_never_from_the_environment(secret_file, tmp_path, monkeypatch):
    assert new_password(str(secret_file)) == "from the file"
    with pytest.raises(UsageError, match="--new-password-file .* is empty"):
        (tmp_path / "empty").write_text("")
        new_password(str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="cannot read --new-password-file"):
        new_password(str(tmp_path / "missing"))
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))
    monkeypatch.setenv("SNAPSTORE_PASSWORD", "the current one")
    with pytest.raises(UsageError, match="give it with --new-password-file FILE"):
        new_password(None)
