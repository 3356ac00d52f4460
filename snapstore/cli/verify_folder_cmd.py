"""snapstore verify-folder: check a backup folder (checksums, database, memories, config)."""
from __future__ import annotations

import sys

import click

from ..errors import IntegrityError
from ..folder.verify import verify_backup
from .common import JSON_OPTION, emit_json


@click.command("verify-folder")
@click.argument("path", type=click.Path())
@click.option("--pg-url", help="A PostgreSQL server to load a PostgreSQL dump into (a scratch database).")
@JSON_OPTION
def command(path: str, pg_url: str | None, as_json: bool) -> None:
    """Verify the backup folder PATH; exit 0 when valid, 4 when not."""
    report = verify_backup(path, pg_url=pg_url)
    if as_json:
        emit_json(report)
    else:
        for check, ok in report["results"].items():
            click.echo(f"{check:20} {'passed' if ok else 'FAILED'}")
            for problem in report["errors"].get(check, []):
                click.echo(f"  - {problem}")
        click.echo("backup folder is valid" if report["valid"] else "backup folder is NOT valid")
    if not report["valid"]:
        sys.exit(IntegrityError.exit_code)
