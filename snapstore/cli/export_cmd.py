"""snapstore export: a snapshot as the documented backup folder."""
from __future__ import annotations

import click

from ..export import export_snapshot
from .common import (JSON_OPTION, Progress, emit_json, human_bytes, open_repo_for_reading, plural, selection,
                     selection_options)


@click.command("export")
@click.argument("snapshot_ref", metavar="ID|latest")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--compress", is_flag=True, help="Write files over 1 MiB zstd-compressed (.zst).")
@click.option("--no-sanitize", is_flag=True, help="Keep secrets in config/mirix.yaml (environment secrets are never stored).")
@selection_options
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, snapshot_ref: str, dest: str, compress: bool, no_sanitize: bool,
            agent: str | None, host: str | None, as_json: bool) -> None:
    """Write a snapshot to DEST as a portable folder (md5sum -c, sqlite3, jq can read it)."""
    repo = open_repo_for_reading(ctx)
    progress = Progress("export", 0, enabled=not as_json, verb="written")
    try:
        result = export_snapshot(repo, snapshot_ref, dest, compress=compress, sanitize=not no_sanitize,
                                 progress=progress, selection=selection(agent, host))
    finally:
        progress.close()
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(f"exported snapshot {result.snapshot_id[:8]} to {result.path}: {plural(result.file_count, 'file')}, "
               f"{human_bytes(result.size_bytes)} in {result.duration_s:.1f} s")
    click.echo(f"integrity {result.verification['integrity_check']}, "
               f"completeness {result.verification['completeness_check']}; "
               f"check with: (cd {result.path} && md5sum -c verification/checksums.md5)")
