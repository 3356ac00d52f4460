"""verification/backup_report.txt: what is in the backup, in words a person reads."""
from __future__ import annotations

from typing import Any

from .vault import VaultRedaction


def render_report(meta: dict[str, Any], memory_counts: dict[str, int], conversation_count: int,
                  sizes: dict[str, int], sanitized: list[str], vault: VaultRedaction | None = None) -> str:
    """The report; secrets are named by file and key (``config/mirix.yaml:llm_config.api_key``),
    never shown."""
    info, ver = meta["backup_info"], meta["verification"]
    lines = [
        "snapstore backup report",
        "=======================",
        f"snapshot:        {info['snapshot_id']}",
        f"agent:           {info['agent_name']} on {info['host']}",
        f"taken at:        {info['timestamp']}",
        f"database:        {info['database_type']}",
        f"format version:  {info['version']} (snapstore {info['snapstore_version']})",
        "",
        "Memories",
        "--------",
    ]
    lines += [f"  {kind:16} {count:>10} rows" for kind, count in memory_counts.items()]
    lines += [f"  {'conversations':16} {conversation_count:>10} messages", "", "Files", "-----"]
    lines += [f"  {size:>14,} B  {path}" for path, size in sorted(sizes.items())]
    lines += ["", "Sanitising", "----------"]
    if info.get("sanitized", True) or sanitized:
        lines += [f"  removed secret: {item}" for item in sanitized] or ["  no secrets found in the settings"]
    else:
        lines += ["  off (exported with --no-sanitize): the settings hold their secrets"]
    lines += ["", "Knowledge vault", "---------------"]
    if vault is None:
        lines += ["  secret values kept (no --redact-vault)"]
    else:
        lines += [f"  secret values of sensitivity {vault.level} and above redacted: {vault.redacted} rows of {vault.table}",
                  f"  secret values below {vault.level} kept: {vault.kept} rows"]
    lines += ["", "Verification", "------------",
              f"  database integrity_check: {ver['integrity_check']}",
              f"  memory completeness:      {ver['completeness_check']}",
              f"  repository compression:   {ver['compression_ratio']}",
              "  file checksums:           verification/checksums.md5 (md5sum -c)", ""]
    return "\n".join(lines)
