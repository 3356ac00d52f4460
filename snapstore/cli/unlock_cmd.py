"""snapstore unlock: remove stale repository locks (all of them with --force)."""
from __future__ import annotations

import click

from ..repository.lock import remove_locks
from .common import JSON_OPTION, emit_json, open_repo


@click.command("unlock")
@click.option("--force", is_flag=True, help="Remove every lock, also those of processes still running.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, force: bool, as_json: bool) -> None:
    """Remove locks left by snapstore processes that died (stale: not refreshed for 30 minutes, or of a
    process of this host that no longer runs)."""
    removed, kept = remove_locks(open_repo(ctx).storage, force=force)
    if as_json:
        emit_json({"removed": [_row(i) for i in removed], "kept": [_row(i) for i in kept]})
        return
    for info in removed:
        click.echo(f"removed {info.describe()}")
    for info in kept:
        click.echo(f"kept {info.describe()} (still held; --force removes it)")
    if not removed and not kept:
        click.echo("no locks")


def _row(info) -> dict:
    return {"name": info.name, "exclusive": info.exclusive, "host": info.hostname, "host_id": info.host_id,
            "pid": info.pid, "command": info.command, "time": info.time}
