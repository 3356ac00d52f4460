"""snapstore copy: copy snapshots from another repository into --repo (restic's ``copy``)."""
from __future__ import annotations

import os
import sys

import click

from ..crypto.password import password_from_environment, prompt_password
from ..errors import UsageError
from ..lifecycle.copy import copy_snapshots
from ..repository import Repository
from .common import (JSON_OPTION, Progress, emit_json, human_bytes, open_repo, plural, repo_options, selection,
                     selection_options)

FROM = "SNAPSTORE_FROM_"


def source_password(file: str | None, command: str | None, environ=os.environ):
    """The source's passphrase, asked for only if the source is encrypted: ``--from-password-file``
    / ``--from-password-command`` (or SNAPSTORE_FROM_PASSWORD_FILE / _COMMAND), then
    SNAPSTORE_FROM_PASSWORD, then a prompt on a terminal -- the destination's own
    SNAPSTORE_PASSWORD* settings are never used for it."""
    def ask() -> str:
        given = {"SNAPSTORE_PASSWORD_FILE": file or "", "SNAPSTORE_PASSWORD_COMMAND": command or "",
                 "SNAPSTORE_PASSWORD": environ.get(f"{FROM}PASSWORD", "")}
        try:
            value = password_from_environment(given)
        except UsageError as exc:
            raise UsageError(exc.message.replace("SNAPSTORE_PASSWORD", f"{FROM}PASSWORD")) from None
        if value:
            return value
        if not sys.stdin.isatty():
            raise UsageError(f"the source repository is encrypted: give its passphrase with --from-password-file, "
                             f"--from-password-command or {FROM}PASSWORD")
        return prompt_password("passphrase for the source repository: ")
    return ask


@click.command("copy")
@click.argument("snapshots", nargs=-1, metavar="[SNAPSHOT]...")
@click.option("--from-repo", required=True, metavar="PATH|URL", envvar=f"{FROM}REPO",
              help="The repository to copy from (or set SNAPSTORE_FROM_REPO); -o options apply to it too.")
@click.option("--from-password-file", metavar="FILE", envvar=f"{FROM}PASSWORD_FILE",
              help="The source's passphrase: the file's first line (or set SNAPSTORE_FROM_PASSWORD_FILE).")
@click.option("--from-password-command", metavar="CMD", envvar=f"{FROM}PASSWORD_COMMAND",
              help="The source's passphrase: the first line CMD prints (or set SNAPSTORE_FROM_PASSWORD_COMMAND); "
                   "else SNAPSTORE_FROM_PASSWORD, else a prompt.")
@selection_options
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, snapshots: tuple[str, ...], from_repo: str, from_password_file: str | None,
            from_password_command: str | None, agent: str | None, host: str | None, as_json: bool) -> None:
    """Copy snapshots (default: all; or ids, prefixes, 'latest') from --from-repo into --repo.

    Chunks are re-hashed with the destination's key and stored once, so a plaintext
    repository moves into an encrypted one with deduplication intact.  Snapshots the
    destination already holds are skipped.  The destination's passphrase comes from
    SNAPSTORE_PASSWORD_FILE, SNAPSTORE_PASSWORD_COMMAND or SNAPSTORE_PASSWORD.
    """
    dest = open_repo(ctx)
    src = Repository.open(from_repo, repo_options(ctx), cache=not ctx.find_root().params.get("no_cache"),
                          password=source_password(from_password_file, from_password_command))
    src.command = dest.command
    src.on_lock_wait = dest.on_lock_wait
    ctx.call_on_close(src.close)
    progress = Progress("copy", 0, enabled=not as_json, verb="read")
    try:
        result = copy_snapshots(src, dest, snapshots, selection=selection(agent, host),
                                say=lambda line: click.echo(f"copy: {line}", err=True), progress=progress)
    finally:
        progress.close()
    if as_json:
        emit_json(result.as_dict())
        return
    for c in result.copied:
        click.echo(f"snapshot {c.source_id[:8]} copied as {c.dest_id[:8]} ({c.agent} on {c.host}, {c.time}): "
                   f"added {human_bytes(c.added_bytes)}")
    skipped = f", {len(result.skipped)} already present" if result.skipped else ""
    click.echo(f"copied {plural(len(result.copied), 'snapshot')}{skipped}: read "
               f"{plural(result.read_chunks, 'chunk')} ({human_bytes(result.read_bytes)}), added "
               f"{human_bytes(result.added_bytes)} in {result.duration_s:.2f} s")
