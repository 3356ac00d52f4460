"""snapstore repair index|packs: rebuild the index, or salvage damaged packs."""
from __future__ import annotations

import click

from ..repair import rebuild_index, repair_packs
from .common import JSON_OPTION, Progress, emit_json, human_bytes, open_repo

MAX_FILES_SHOWN = 10


@click.group("repair")
def command() -> None:
    """Repair repository metadata or damaged packs."""


@command.command("index")
@JSON_OPTION
@click.pass_context
def index_command(ctx: click.Context, as_json: bool) -> None:
    """Rebuild the index by reading every pack's trailer."""
    report = rebuild_index(open_repo(ctx))
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(f"index rebuilt: {report.blobs} chunks in {report.packs} packs "
               f"({report.replaced_files} old index files replaced)")
    for problem in report.bad_packs:
        click.echo(f"warning: {problem}", err=True)


@command.command("packs")
@click.argument("pack_ids", nargs=-1, metavar="[PACK]...")
@JSON_OPTION
@click.pass_context
def packs_command(ctx: click.Context, pack_ids: tuple[str, ...], as_json: bool) -> None:
    """Re-hash every pack (or the named ones, by id prefix); salvage damaged ones.

    Intact chunks of a damaged pack are copied into new packs, the index stops
    naming what is lost, and the damaged pack is deleted.  Snapshots that needed
    lost chunks are listed: a backup of the same data stores them again and makes
    those snapshots whole.  Takes the repository lock exclusively.
    """
    repo = open_repo(ctx)
    progress = Progress("repair", 0, enabled=not as_json, verb="checked")
    try:
        report = repair_packs(repo, pack_ids or None, progress=progress)
    finally:
        progress.close()
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(f"checked {_n(report.packs_checked, 'pack')} ({human_bytes(report.bytes_read)}, "
               f"{_n(report.blobs_checked, 'chunk')})")
    if not report.damaged:
        click.echo("no damaged packs found; nothing changed")
    for d in report.damaged:
        click.echo(f"pack {d.pack_id[:16]} {'; '.join(d.problems) or 'holds damaged chunks'}: "
                   f"{d.bad_blobs} of {_n(d.blobs, 'chunk')} damaged, {d.salvaged} salvaged, pack removed")
    if report.damaged:
        click.echo(f"salvaged {_n(report.salvaged_blobs, 'chunk')} into {_n(report.new_packs, 'new pack')}; "
                   f"{_n(len(report.lost_blobs), 'chunk')} lost "
                   f"({_n(report.replaced_index_files, 'index file')} replaced by one)")
    for sid, files in sorted(report.incomplete.items()):
        shown = ", ".join(files[:MAX_FILES_SHOWN]) or "(whole snapshot)"
        more = f" and {len(files) - MAX_FILES_SHOWN} more" if len(files) > MAX_FILES_SHOWN else ""
        click.echo(f"snapshot {sid[:8]} is incomplete: {shown}{more}")
    if report.incomplete:
        click.echo(f"{_n(len(report.incomplete), 'snapshot')} incomplete: back up the same agent again "
                   "(snapstore backup ...) to store the lost chunks again, then run 'snapstore verify'")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
