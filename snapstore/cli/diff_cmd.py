"""snapstore diff: what the agent learned, rewrote or forgot between two snapshots (or since one)."""
from __future__ import annotations

import click

from ..errors import UsageError
from ..lifecycle.diff import diff_live, diff_snapshots
from .common import JSON_OPTION, emit_json, open_repo
from .fast import text_lines


@click.command("diff")
@click.argument("refs", nargs=-1, metavar="A [B]")
@click.option("--live", is_flag=True, help="Compare snapshot A with the live agent instead of a snapshot B.")
@click.option("--config", metavar="MIRIX_YAML", help="With --live: the agent's config (default: the one A was taken from).")
@click.option("--db", metavar="PATH|URL", help="With --live: the live database (a PostgreSQL URL with its password).")
@click.option("--rows", type=click.IntRange(min=0), default=3, show_default=True,
              help="How many added/changed/removed rows to show per table.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, refs: tuple[str, ...], live: bool, config: str | None, db: str | None, rows: int,
            as_json: bool) -> None:
    """Rows added, removed and changed per memory table and in conversations (messages),
    and the config/log files that changed, from snapshot A to B (or to the live agent).

    Only the database pages (SQLite) or key ranges (PostgreSQL) the two sides do not
    share are read.
    """
    if live != (len(refs) == 1) or not refs or len(refs) > 2:
        raise UsageError("give two snapshots (diff A B), or one with --live (diff latest --live)")
    if (config or db) and not live:
        raise UsageError("--config and --db only go with --live")
    repo = open_repo(ctx)
    result = diff_live(repo, refs[0], rows, config, db) if live else diff_snapshots(repo, refs[0], refs[1], rows)
    if as_json:
        emit_json(result.as_dict(with_samples=rows > 0))
        return
    for line in text_lines(result, live):
        click.echo(line)
