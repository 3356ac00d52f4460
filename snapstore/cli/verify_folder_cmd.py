"""snapstore verify-folder: check a backup folder (checksums, database, memories, config)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import IntegrityError, SnapstoreError, UnsupportedFormat
from ..folder.layout import METADATA, read_metadata
from .common import JSON_OPTION, Progress, emit_json


@click.command("verify-folder")
@click.argument("path", type=click.Path())
@click.option("--pg-url", help="A PostgreSQL server to load a PostgreSQL dump into (a scratch database).")
@click.option("--key", "key", envvar="SNAPSTORE_BACKUP_KEY", help="Passphrase of an encrypted folder (or SNAPSTORE_BACKUP_KEY).")
@JSON_OPTION
def command(path: str, pg_url: str | None, key: str | None, as_json: bool) -> None:
    """Verify the backup folder PATH (encrypted ones with --key); exit 0 when valid, 4 when not."""
    from ..agent_api.verification import verify_backup  # the Mirix-compatible layer loads only here

    metadata = Path(path) / METADATA
    if metadata.is_file():
        try:
            read_metadata(Path(path))
        except UnsupportedFormat:
            raise  # a newer format is not damage: exit 2 with both versions, as import and restore do
        except SnapstoreError:
            pass  # anything else wrong with it is reported below as a failed check
    progress = Progress("verify-folder", 0, enabled=not as_json, verb="checked")
    try:
        report = verify_backup(path, pg_url=pg_url, encryption_key=key, progress=progress)
    finally:
        progress.close()
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
