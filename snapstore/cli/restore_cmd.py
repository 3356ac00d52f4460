"""snapstore restore: a snapshot or folder back into an SQLite database (whole or in part)."""
from __future__ import annotations

import click

from ..restore import restore
from .common import JSON_OPTION, Progress, emit_json, open_repo_for_reading


@click.command("restore")
@click.argument("source", metavar="ID|latest|FOLDER")
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False), help="Target SQLite database file.")
@click.option("--only", help="Components: database (default), memories, conversations, config, logs.")
@click.option("--memory-type", "memory_types", help="Memory types, e.g. episodic,semantic (implies --only memories).")
@click.option("--files-dir", type=click.Path(file_okay=False), help="Where config/ and logs/ go (default: beside the target).")
@click.option("--dry-run", is_flag=True, help="Show the rows per table that would change; change nothing.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, source: str, target: str, only: str | None, memory_types: str | None,
            files_dir: str | None, dry_run: bool, as_json: bool) -> None:
    """Restore SOURCE into TARGET; an existing target is snapshotted first (tag pre-restore)."""
    progress = Progress("restore", 0, enabled=not as_json, verb="written")
    try:
        result = restore(open_repo_for_reading(ctx), source, target, only=only, memory_types=memory_types,
                         files_dir=files_dir, dry_run=dry_run, progress=progress)
    finally:
        progress.close()
    if as_json:
        emit_json(result.as_dict())
        return
    verb = "would change" if dry_run else "restored"
    click.echo(f"{verb} {', '.join(result.components)} of {result.source} into {result.target}")
    for table, change in sorted(result.tables.items()):
        if change["deleted"] or change["inserted"]:
            click.echo(f"  {table:28} -{change['deleted']:<8} +{change['inserted']}")
    for path in result.files:
        click.echo(f"  file {path}")
    if result.undo_hint:
        click.echo(f"the previous state is snapshot {result.safety_snapshot_id[:8]}; to undo: {result.undo_hint}")
