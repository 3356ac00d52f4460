"""snapstore key add|list|remove|passwd: the passphrases of an encrypted repository.

Each passphrase wraps the same master key in its own key file (crypto/keys.py), so a
key change touches ``keys/`` and nothing else: data, index and snapshots stay as they
are and every running backup keeps the master key it opened with.  Locking follows from
that (restic does the same): ``list`` and ``add`` take no lock -- ``add`` only creates a
new file under a fresh name; ``remove`` and ``passwd`` take the exclusive lock around
their change, only to serialise them with each other: two removals opened with two
different keys could otherwise each remove the other's key and leave none.  They wait
for running backups like prune does (``SNAPSTORE_LOCK_WAIT``), and the new passphrase
is asked before the lock is taken, so a backup never waits for someone typing.
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from ..crypto import keys as key_files
from ..crypto.password import new_password
from ..errors import UsageError
from ..repository import Repository
from ..repository.lock import lock_wait_from_env
from .common import JSON_OPTION, REPO_OPTION, emit_json, repo_options, repo_path

SHORT = 8  # hex digits of a key id shown (and enough to name one to ``key remove``)
NEW_PASSWORD_FILE = click.option(
    "--new-password-file", "new_password_file", metavar="FILE", type=click.Path(dir_okay=False),
    help="Read the new passphrase from the first line of FILE (else it is asked twice on the terminal).")


@click.group("key")
def command() -> None:
    """Add, list, remove or change the passphrases of an encrypted repository.

    The passphrase that opens the repository comes from SNAPSTORE_PASSWORD_FILE,
    SNAPSTORE_PASSWORD_COMMAND, SNAPSTORE_PASSWORD or a prompt; a new one from
    --new-password-file or a prompt.
    """


def _open(ctx: click.Context) -> Repository:
    """The repository opened with its current passphrase; UsageError if it is not encrypted."""
    lock_wait_from_env()  # a bad setting is reported before any passphrase is asked
    repo = Repository.open(repo_path(ctx), repo_options(ctx), cache=False)  # keys are never cached
    ctx.call_on_close(repo.close)
    if not repo.config.encrypted:
        raise UsageError(f"{repo.location} is not encrypted, so it has no keys "
                         "(an encrypted repository is made with 'snapstore init --encrypt')")
    repo.command = ctx.command_path
    repo.on_lock_wait = lambda line: click.echo(f"snapstore: {line}", err=True)
    return repo


def _created(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "?"


@command.command("list")
@JSON_OPTION
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the key files: id, when and where each was added; * marks the one in use.
    A damaged key file is listed as such (remove it with 'snapstore key remove ID')."""
    repo = _open(ctx)
    infos = key_files.list_keys(repo.storage, strict=False)
    if as_json:
        emit_json([{"id": info.key_id, "current": info.key_id == repo.key_id,
                    "created": datetime.fromtimestamp(info.created, timezone.utc).isoformat() if info.created else None,
                    "host": info.host, "user": info.user, "kdf": info.cost or None,
                    "damage": info.damage or None} for info in infos])
        return
    rows = [(" ", "ID", "CREATED", "HOST", "USER")]
    for info in infos:
        mark = "*" if info.key_id == repo.key_id else " "
        if info.damage:
            rows.append((mark, info.key_id[:SHORT], "damaged", "", ""))
        else:
            rows.append((mark, info.key_id[:SHORT], _created(info.created), info.host, info.user))
    widths = [max(len(row[i]) for row in rows) for i in range(1, 4)]
    for mark, *cells in rows:
        click.echo(f"{mark} " + "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)) + "  " + cells[3])
    for info in infos:
        if info.damage:
            click.echo(f"snapstore: {info.damage}", err=True)


@command.command("add")
@NEW_PASSWORD_FILE
@JSON_OPTION
@click.pass_context
def add_command(ctx: click.Context, new_password_file: str | None, as_json: bool) -> None:
    """Add a passphrase: a new key file wrapping the same master key.  Every other
    passphrase keeps working.  Takes no lock (it only creates a new file)."""
    repo = _open(ctx)
    secret = new_password(new_password_file)
    key_id = key_files.add_key(repo.storage, repo.config.repo_id, repo.cipher.key, secret)
    if as_json:
        emit_json({"repository": repo.location, "key": key_id})
    else:
        click.echo(f"added key {key_id[:SHORT]}")


@command.command("remove")
@click.argument("key_id", metavar="ID")
@click.pass_context
def remove_command(ctx: click.Context, key_id: str) -> None:
    """Remove the key file ID (a prefix of its id is enough): its passphrase no longer
    opens the repository.  The last key and the key in use are refused.  Takes the
    exclusive lock, so it waits for running backups."""
    repo = _open(ctx)
    with repo.lock(exclusive=True):
        removed = key_files.remove_key(repo.storage, key_id, repo.key_id)
    click.echo(f"removed key {removed[:SHORT]}")


@command.command("passwd")
@NEW_PASSWORD_FILE
@JSON_OPTION
@click.pass_context
def passwd_command(ctx: click.Context, new_password_file: str | None, as_json: bool) -> None:
    """Change the passphrase in use: add a key with the new passphrase, then remove the one
    the repository was opened with (in this order: a crash in between leaves both keys,
    never none).  Takes the exclusive lock, so it waits for running backups."""
    repo = _open(ctx)
    secret = new_password(new_password_file)  # asked before the lock: nobody waits for the typing
    with repo.lock(exclusive=True):
        if repo.key_id not in key_files.key_ids(repo.storage):
            raise UsageError(f"key {repo.key_id[:SHORT]} was removed meanwhile: nothing was changed")
        new_id = key_files.add_key(repo.storage, repo.config.repo_id, repo.cipher.key, secret)
        key_files.remove_key(repo.storage, repo.key_id, new_id)
    if as_json:
        emit_json({"repository": repo.location, "key": new_id, "removed": repo.key_id})
    else:
        click.echo(f"changed the passphrase: key {new_id[:SHORT]} replaces key {repo.key_id[:SHORT]}")


for _sub in command.commands.values():  # --repo also after the subcommand's name
    _sub.params.append(REPO_OPTION)
