"""snapstore export: a snapshot as the documented backup folder."""
from __future__ import annotations

import click

from ..export import export_snapshot
from ..export.vault import LEVELS
from .common import (JSON_OPTION, Progress, emit_json, human_bytes, open_repo_for_reading, plural, selection,
                     selection_options)


@click.command("export")
@click.argument("snapshot_ref", metavar="ID|latest")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--compress", is_flag=True, help="Write files over 1 MiB zstd-compressed (.zst).")
@click.option("--no-sanitize", is_flag=True,
              help="Keep the secrets (API keys, tokens, passwords, connection-string passwords) of "
                   "config/mirix.yaml, environment.env and agent_config.json; by default they are redacted "
                   "and listed in verification/backup_report.txt.")
@click.option("--redact-vault", "redact_vault", type=click.Choice(LEVELS, case_sensitive=False), metavar="LEVEL",
              help="Redact the knowledge vault's secret values of sensitivity LEVEL (low, medium, high) and "
                   "above in the database, the SQL dump and memories/knowledge_vault.json.")
@selection_options
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, snapshot_ref: str, dest: str, compress: bool, no_sanitize: bool,
            redact_vault: str | None, agent: str | None, host: str | None, as_json: bool) -> None:
    """Write a snapshot to DEST as a portable folder (md5sum -c, sqlite3, jq can read it)."""
    repo = open_repo_for_reading(ctx)
    progress = Progress("export", 0, enabled=not as_json, verb="written")
    try:
        result = export_snapshot(repo, snapshot_ref, dest, compress=compress, sanitize=not no_sanitize,
                                 progress=progress, selection=selection(agent, host), redact_vault=redact_vault)
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
    if result.sanitized:
        click.echo(f"sanitised {plural(len(result.sanitized), 'secret')} of the settings "
                   f"(listed in verification/backup_report.txt)")
    if result.vault_redaction:
        v = result.vault_redaction
        click.echo(f"redacted {plural(v.redacted, 'knowledge vault secret')} of sensitivity {v.level} and above "
                   f"(kept {v.kept} below)")
