"""snapstore snapshots: list snapshots with what each added."""
from __future__ import annotations

import click

from ..lifecycle.stats import snapshot_added_bytes
from ..manifest import list_snapshots
from .common import JSON_OPTION, emit_json, human_bytes, open_repo, plural, selection, selection_options


def snapshot_row(snap, added_bytes: int) -> dict:
    """What a listing shows; ``added_bytes`` counts the snapshot's packs, index and manifest."""
    return {"id": snap.id, "short_id": snap.short_id, "time": snap.time, "host": snap.host,
            "agent": snap.agent, "tags": snap.tags, "parent": snap.parent, "files": len(snap.files),
            "total_size": snap.summary.get("total_size"), "added_bytes": added_bytes,
            "new_data_bytes": snap.summary.get("new_data_bytes")}


@click.command("snapshots")
@selection_options
@click.option("--tag", help="Only snapshots with this tag.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, agent: str | None, host: str | None, tag: str | None, as_json: bool) -> None:
    """List snapshots, oldest first."""
    repo = open_repo(ctx)
    problems: list[str] = []
    chosen = selection(agent, host)
    snaps = [s for s in list_snapshots(repo, problems) if chosen.matches(s) and (tag is None or tag in s.tags)]
    sizes = repo.snapshot_sizes()
    rows = [snapshot_row(s, snapshot_added_bytes(s, sizes.get(s.id, 0))) for s in snaps]
    for problem in problems:
        click.echo(f"snapstore: warning: {problem} (run 'snapstore verify')", err=True)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no snapshots")
        return
    click.echo(f"{'ID':8}  {'Time (UTC)':19}  {'Host':12}  {'Agent':16}  {'Size':>10}  {'Added':>10}  Tags")
    for r in rows:
        click.echo(f"{r['short_id']:8}  {r['time'][:19].replace('T', ' '):19}  {r['host'][:12]:12}  "
                   f"{r['agent'][:16]:16}  "
                   f"{human_bytes(r['total_size'] or 0):>10}  {human_bytes(r['added_bytes'] or 0):>10}  "
                   f"{','.join(r['tags'])}")
    click.echo(plural(len(rows), "snapshot"))
