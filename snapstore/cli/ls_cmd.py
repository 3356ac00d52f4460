"""snapstore ls: the files of a snapshot, in the backup-folder layout."""
from __future__ import annotations

import click

from ..manifest import resolve_snapshot
from .common import JSON_OPTION, emit_json, human_bytes, open_repo, plural, selection, selection_options


@click.command("ls")
@click.argument("snapshot_ref", metavar="ID|latest")
@selection_options
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, snapshot_ref: str, agent: str | None, host: str | None, as_json: bool) -> None:
    """List the files of a snapshot."""
    snap = resolve_snapshot(open_repo(ctx), snapshot_ref, selection(agent, host))
    rows = [{"path": f.path, "size": f.size, "chunker": f.chunker, "chunks": f.chunks.count,
             "digest": f.digest.hex(), "md5": f.md5.hex() if f.md5 else None} for f in snap.files]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{human_bytes(r['size']):>10}  {plural(r['chunks'], 'chunk'):>13}  {r['path']}")
