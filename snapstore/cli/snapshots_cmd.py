"""snapstore snapshots: list snapshots with what each added."""
from __future__ import annotations

import click

from ..lifecycle.coverage import Span, coverage, span_length
from ..lifecycle.stats import snapshot_added_bytes
from ..manifest import list_snapshots
from .common import JSON_OPTION, emit_json, human_bytes, open_repo, plural, selection, selection_options


def snapshot_row(snap, added_bytes: int) -> dict:
    """What a listing shows; ``added_bytes`` counts the snapshot's packs, index and manifest."""
    return {"id": snap.id, "short_id": snap.short_id, "time": snap.time, "host": snap.host,
            "agent": snap.agent, "tags": snap.tags, "parent": snap.parent, "files": len(snap.files),
            "total_size": snap.summary.get("total_size"), "added_bytes": added_bytes,
            "new_data_bytes": snap.summary.get("new_data_bytes"),
            "watch": snap.database.get("watch") if isinstance(snap.database, dict) else None}


@click.command("snapshots")
@selection_options
@click.option("--tag", help="Only snapshots with this tag.")
@click.option("--coverage", "show_coverage", is_flag=True,
              help="Only the time ranges restore --at can reach: watch runs (every interval) and the gaps between.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, agent: str | None, host: str | None, tag: str | None, show_coverage: bool,
            as_json: bool) -> None:
    """List snapshots, oldest first, then the time ranges a point-in-time restore (restore --at)
    reaches: each watch run to within its interval, between runs only the single snapshots."""
    repo = open_repo(ctx)
    problems: list[str] = []
    chosen = selection(agent, host)
    snaps = [s for s in list_snapshots(repo, problems) if chosen.matches(s) and (tag is None or tag in s.tags)]
    if show_coverage:
        for problem in problems:
            click.echo(f"snapstore: warning: {problem} (run 'snapstore verify')", err=True)
        spans = coverage(snaps)
        if as_json:
            emit_json([span.as_dict() for span in spans])
        else:
            _print_coverage(spans)
        return
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
    spans = coverage(snaps)
    if any(span.kind == "watch" for span in spans):
        click.echo("")
        _print_coverage(spans)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _print_coverage(spans: list[Span]) -> None:
    if not spans:
        click.echo("no snapshots: no point in time can be restored")
        return
    click.echo("Point in time (restore --at) reaches, times UTC:")
    for span in spans:
        when = f"{span.start[:19].replace('T', ' ')} .. {span.end[:19].replace('T', ' ')}"
        if span.kind == "watch":
            how = (f"watch run {span.run[:8]}: {span.granularity}, {plural(span.snapshots, 'snapshot')}"
                   + (", stopped" if span.stopped else ""))
        else:
            how = f"gap: watch not running; {plural(span.snapshots, 'snapshot')} in it, each one moment"
        click.echo(f"  {span.agent[:16]:16}  {when}  ({_duration(span_length(span))})  {how}")
        for note in span.notes:
            if span.kind == "watch":
                click.echo(f"      {note}")
