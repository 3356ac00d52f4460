"""snapstore stats: per-snapshot size and growth, repository totals, dedup and compression ratios."""
from __future__ import annotations

import click

from ..lifecycle.stats import repository_stats
from .common import JSON_OPTION, emit_json, human_bytes, open_repo


@click.command("stats")
@click.option("--plot", "plot_path", metavar="FILE.png|FILE.svg",
              help="Also draw repository size and the bytes each backup added over time.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, plot_path: str | None, as_json: bool) -> None:
    """What each snapshot holds and added; the repository's size, deduplication and compression."""
    repo = open_repo(ctx)
    stats = repository_stats(repo)
    if plot_path:
        from ..lifecycle.plot import plot_stats

        plot_stats(stats, plot_path)
    if as_json:
        emit_json(stats.as_dict() | ({"plot": plot_path} if plot_path else {}))
        return
    click.echo(f"{'ID':8}  {'Time (UTC)':19}  {'Agent':20}  {'Size':>10}  {'Added':>10}")
    for s in stats.snapshots:
        click.echo(f"{s.id[:8]}  {s.time[:19].replace('T', ' '):19}  {(s.agent + '@' + s.host)[:20]:20}  "
                   f"{human_bytes(s.logical_bytes):>10}  {human_bytes(s.added_bytes):>10}")
    click.echo(f"{len(stats.snapshots)} snapshots, {human_bytes(stats.logical_bytes)} in all; stored as "
               f"{human_bytes(stats.unique_bytes)} of unique chunks ({stats.chunks} chunks), "
               f"{human_bytes(stats.stored_bytes)} compressed, {human_bytes(stats.disk_bytes)} on disk")
    click.echo(f"deduplication {stats.dedup_ratio:.2f}x, compression {stats.compression_ratio:.2f}x")
    for agent, series in stats.growth().items():
        first, last = series[0], series[-1]
        click.echo(f"{agent}: {len(series)} snapshots, size {human_bytes(first['logical_bytes'])} -> "
                   f"{human_bytes(last['logical_bytes'])}, repository growth {human_bytes(last['cumulative_added_bytes'])}")
    if plot_path:
        click.echo(f"plot written to {plot_path}")
