"""snapstore restore: a snapshot or folder back into an SQLite or PostgreSQL database (whole or in part)."""
from __future__ import annotations

import click

from ..restore import restore
from ..restore.point_in_time import point_in_time
from .common import JSON_OPTION, Progress, emit_json, open_repo_for_reading, selection, selection_options


@click.command("restore")
@click.argument("source", metavar="[ID|latest|FOLDER]", required=False)
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False), help="Target SQLite database file, or a postgresql:// URL.")
@click.option("--only", help="Components: database (default), memories, conversations, config, logs.")
@click.option("--memory-type", "memory_types", help="Memory types, e.g. episodic,semantic (implies --only memories).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The agent's mirix.yaml a restored config is merged into (default: the one beside --to).")
@click.option("--files-dir", type=click.Path(file_okay=False),
              help="Write config/ and logs/ files here instead (default: config merged, logs beside the config).")
@click.option("--dry-run", is_flag=True, help="Show the rows per table that would change; change nothing.")
@click.option("--at", "at", metavar="TIME",
              help="Point in time: the newest snapshot taken at or before TIME ('2026-12-01 14:32', local time "
                   "unless it ends in Z or +HH:MM); the granularity is how often snapshots were taken.")
@selection_options
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, source: str, target: str, only: str | None, memory_types: str | None,
            config_path: str | None, files_dir: str | None, dry_run: bool, at: str | None, agent: str | None,
            host: str | None, as_json: bool) -> None:
    """Restore a snapshot or backup folder into the database given by --to.

    'latest' is the newest snapshot of the agent that database belongs to. An
    existing database is snapshotted first (tag pre-restore); a restore that
    would change nothing writes nothing. With --at (and no ID, or 'latest'), the newest
    snapshot of that agent taken at or before that time.
    """
    source, chosen = point_in_time(source, at, selection(agent, host))
    # The meter counts the snapshot's database as it is read out; what changed in the target
    # is the rows, reported below (a selective restore may read 1 GB to change a few rows).
    progress = Progress("restore", 0, enabled=not as_json, verb="read from the snapshot")
    try:
        result = restore(open_repo_for_reading(ctx), source, target, only=only, memory_types=memory_types,
                         files_dir=files_dir, dry_run=dry_run, progress=progress,
                         selection=chosen, config_path=config_path)
    finally:
        progress.close()
    if as_json:
        emit_json(result.as_dict())
        return
    if result.unchanged:
        click.echo(f"no changes: {result.target} already holds the {', '.join(result.components)} of {result.source}")
        return
    verb = "would change" if dry_run else "restored"
    click.echo(f"{verb} {', '.join(result.components)} of {result.source} into {result.target}")
    for table, change in sorted(result.tables.items()):
        if change["deleted"] or change["inserted"]:
            click.echo(f"  {table:28} -{change['deleted']:<8} +{change['inserted']}")
    if result.tables:
        click.echo(rows_changed_line(result.tables, dry_run))
    for what in result.not_carried:
        click.echo(f"  not carried: {what}")
    for path in result.files:
        click.echo(f"  file {path}")
    if result.config:
        click.echo(f"  merged into {result.config['config_path']}")
    if result.undo_hint:
        click.echo(f"the previous state is snapshot {result.safety_snapshot_id[:8]}; to undo: {result.undo_hint}")


def rows_changed_line(tables: dict[str, dict[str, int]], dry_run: bool) -> str:
    """What a restore did to the target, in rows: the measure of a selective restore."""
    deleted = sum(t["deleted"] for t in tables.values())
    inserted = sum(t["inserted"] for t in tables.values())
    touched = sum(1 for t in tables.values() if t["deleted"] or t["inserted"])
    verb = "would change" if dry_run else "changed"
    return (f"{verb} {touched} of {len(tables)} tables: {deleted} rows removed, {inserted} rows added "
            "(a changed row is both)")
