"""verification/backup_report.txt: what is in the backup, in words a person reads."""
from __future__ import annotations

from typing import Any


def render_report(meta: dict[str, Any], memory_counts: dict[str, int], conversation_count: int,
                  sizes: dict[str, int], sanitized: list[str]) -> str:
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
    lines += [f"  removed secret: {item}" for item in sanitized] or ["  nothing removed (sanitising off or no secrets)"]
    lines += ["", "Verification", "------------",
              f"  database integrity_check: {ver['integrity_check']}",
              f"  memory completeness:      {ver['completeness_check']}",
              f"  repository compression:   {ver['compression_ratio']}",
              "  file checksums:           verification/checksums.md5 (md5sum -c)", ""]
    return "\n".join(lines)
