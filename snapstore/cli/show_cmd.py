"""snapstore show: one snapshot's metadata and files."""
from __future__ import annotations

import click

from ..lifecycle.stats import snapshot_added_bytes
from ..manifest import resolve_snapshot
from .common import JSON_OPTION, emit_json, human_bytes, open_repo, plural, selection, selection_options
from .snapshots_cmd import snapshot_row


@click.command("show")
@click.argument("snapshot_ref", metavar="ID|latest")
@selection_options
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, snapshot_ref: str, agent: str | None, host: str | None, as_json: bool) -> None:
    """Show a snapshot: source, database, summary, files."""
    repo = open_repo(ctx)
    snap = resolve_snapshot(repo, snapshot_ref, selection(agent, host))
    doc = snapshot_row(snap, snapshot_added_bytes(snap, repo.snapshot_size(snap.id))) | {"source": snap.source, "database": snap.database, "summary": snap.summary,
                                      "sanitized": snap.sanitized,
                                      "paths": [f.path for f in snap.files]}
    if as_json:
        emit_json(doc)
        return
    click.echo(f"snapshot {snap.id}")
    for key in ("time", "host", "agent", "parent", "tags"):
        click.echo(f"  {key + ':':9} {_plain(doc[key])}")
    click.echo(f"  source:   {_readable(snap.source)}")
    click.echo(f"  database: {_readable(snap.database)}")
    click.echo(f"  size:     {human_bytes(doc['total_size'] or 0)} in {plural(len(snap.files), 'file')}; "
               f"added {human_bytes(doc['added_bytes'] or 0)}")
    if snap.sanitized:
        click.echo(f"  sanitized: {', '.join(snap.sanitized)}")
    click.echo("  files:")
    for f in snap.files:
        click.echo(f"    {human_bytes(f.size):>10}  {f.path}")


def _readable(doc: dict) -> str:
    """``key=value`` pairs; bytes (WAL salts and the like) in hex rather than Python's repr."""
    return ", ".join(f"{k}={_plain(v)}" for k, v in doc.items())


def _plain(value) -> str:
    """A value as a person writes it: ``nightly, weekly`` not ``['nightly', 'weekly']``, ``-`` not ``None``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return "{" + _readable(value) + "}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "-"
    return str(value)
