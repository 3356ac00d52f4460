"""snapstore backup: one consistent snapshot of an agent."""
from __future__ import annotations

import sys

import click

from ..backup import backup_agent
from ..sources.agent import load_agent_source
from ..sources.base import database_capture
from .common import JSON_OPTION, Progress, emit_json, human_bytes, open_repo, plural


@click.command("backup")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The agent's mirix.yaml.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False),
              help="The agent's database: an SQLite file or postgresql://USER@HOST:PORT/DB "
                   "(instead of, or overriding, the config's).")
@click.option("--agent", help="The agent's name for a --db without a mirix.yaml beside it "
                               "(default: as its earlier snapshots, else its folder's name).")
@click.option("--env-file", "env_file", type=click.Path(dir_okay=False),
              help="The agent's environment settings to store (default: the .env beside its mirix.yaml; "
                   "a --db backup stores none unless given).")
@click.option("--host", help="Record this host name instead of the machine's (one repository, many hosts).")
@click.option("--include-logs", is_flag=True, help="Also store the agent's logs/ directory.")
@click.option("--tag", "tags", multiple=True, help="Tag the snapshot (repeatable).")
@click.option("--verify", "verify_after", is_flag=True, help="Re-read and re-hash everything the snapshot needs afterwards.")
@click.option("--read-all", is_flag=True, help="Read the database even if it is unchanged since the last snapshot.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, config_path: str | None, db_path: str | None, agent: str | None,
            env_file: str | None, host: str | None,
            include_logs: bool, tags: tuple[str, ...], verify_after: bool, read_all: bool, as_json: bool) -> None:
    """Snapshot the agent while it may be running; only new chunks are stored.

    With neither --config nor --db, the agent in $MIRIX_DIR (default ~/.mirix).
    """
    source = load_agent_source(config_path, db_path, agent=agent, env_file=env_file)
    repo = open_repo(ctx)
    size = database_capture(source.database_url).size_hint()
    progress = Progress("backup", size, enabled=not as_json)
    try:
        result = backup_agent(repo, source, include_logs=include_logs, tags=tags, progress=progress,
                              read_all=read_all, host=host)
    finally:
        progress.close()
    report = None
    if verify_after:
        from ..verify import verify_snapshot

        report = verify_snapshot(repo, result.snapshot)
    if as_json:
        emit_json(result.as_dict() | ({"verification": report.as_dict()} if report else {}))
    else:
        _print_result(result)
        if report:
            click.echo(f"verification: {report.status}")
            if not report.clean:
                from ..verify import format_report

                click.echo("\n".join(format_report(report)), err=True)
    if report and not report.clean:
        sys.exit(report.exit_code)


def _print_result(result) -> None:
    snap = result.snapshot
    click.echo(f"snapshot {snap.short_id} of agent {snap.agent} on {snap.host} saved "
               f"({plural(len(snap.files), 'file')}, {human_bytes(snap.summary['total_size'])})")
    click.echo(f"added {human_bytes(result.added_bytes)} to the repository "
               f"({plural(result.added_chunks, 'new chunk')}, {human_bytes(result.new_data_bytes)} of new data) "
               f"in {result.duration_s:.2f} s")
