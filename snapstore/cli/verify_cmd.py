"""snapstore verify: check that snapshots are whole (quick), or re-hash every chunk (--full)."""
from __future__ import annotations

import click

from ..verify import format_report, parse_read_subset, verify_repository
from .common import JSON_OPTION, Progress, emit_json, open_repo, selection, selection_options


@click.command("verify")
@click.argument("snapshot_refs", nargs=-1, metavar="[ID|latest]...")
@click.option("--full", is_flag=True, help="Read every pack and re-hash every chunk (in parallel).")
@click.option("--read-subset", metavar="K/N|P%",
              help="With --full (implied): read only slice K of N of the packs (1/7 ... 7/7 covers all), "
                   "or a random P% of them.")
@selection_options
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, snapshot_refs: tuple[str, ...], full: bool, read_subset: str | None,
            agent: str | None, host: str | None, as_json: bool) -> None:
    """Check the repository, or only the given snapshots.

    Damage is reported with the pack, the snapshots and the files it affects.
    Exit code: 0 clean, 4 damage found, 5 some part could not be read at all.
    """
    subset = parse_read_subset(read_subset) if read_subset is not None else None
    repo = open_repo(ctx)
    progress = Progress("verify", 0, enabled=not as_json and (full or subset is not None), verb="checked")
    try:
        report = verify_repository(repo, full=full, read_subset=subset,
                                   snapshot_ids=snapshot_refs or None, progress=progress,
                                   selection=selection(agent, host))
    finally:
        progress.close()
    if as_json:
        emit_json(report.as_dict())
    else:
        for line in format_report(report):
            click.echo(line)
    report.raise_for_status()
