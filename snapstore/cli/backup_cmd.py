"""snapstore backup: one consistent snapshot of an agent."""
from __future__ import annotations

import click

from ..backup import backup_agent
from ..sources.agent import load_agent_source
from .common import JSON_OPTION, Progress, emit_json, human_bytes, open_repo


@click.command("backup")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The agent's mirix.yaml.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="The agent's SQLite database (instead of, or overriding, the config's).")
@click.option("--include-logs", is_flag=True, help="Also store the agent's logs/ directory.")
@click.option("--tag", "tags", multiple=True, help="Tag the snapshot (repeatable).")
@click.option("--read-all", is_flag=True, help="Read the database even if it is unchanged since the last snapshot.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, config_path: str | None, db_path: str | None, include_logs: bool,
            tags: tuple[str, ...], read_all: bool, as_json: bool) -> None:
    """Snapshot the agent while it may be running; only new chunks are stored."""
    repo = open_repo(ctx)
    source = load_agent_source(config_path, db_path)
    size = source.sqlite_path.stat().st_size if source.is_sqlite and source.sqlite_path.exists() else 0
    progress = Progress("backup", size, enabled=not as_json)
    try:
        result = backup_agent(repo, source, include_logs=include_logs, tags=tags, progress=progress,
                              read_all=read_all)
    finally:
        progress.close()
    if as_json:
        emit_json(result.as_dict())
        return
    snap = result.snapshot
    click.echo(f"snapshot {snap.short_id} of agent {snap.agent} saved "
               f"({len(snap.files)} files, {human_bytes(snap.summary['total_size'])})")
    click.echo(f"added {human_bytes(result.added_bytes)} to the repository "
               f"({result.added_chunks} new chunks, {human_bytes(result.new_data_bytes)} of new data) "
               f"in {result.duration_s:.2f} s")
