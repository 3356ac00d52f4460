"""The text form of a verify report: a summary line, then one block per cause of damage."""
from __future__ import annotations

from ..wording import plural
from .report import VerifyReport

MAX_BLOBS_SHOWN = 5
MAX_SNAPSHOTS_SHOWN = 20


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def format_report(report: VerifyReport) -> list[str]:
    mode = report.mode + (f", subset {report.read_subset}" if report.read_subset else "")
    lines = [f"verify ({mode}): {plural(report.snapshots, 'snapshot')}, {plural(report.files, 'file')}, "
             f"{plural(report.chunks, 'chunk reference')}, {plural(report.packs, 'pack')} in the index"]
    if report.mode == "full":
        lines.append(f"read {plural(report.packs_read, 'pack')} ({_size(report.bytes_read)}), "
                     f"re-hashed {plural(report.blobs_read, 'blob')}")
    for note in report.notes:
        lines.append(f"note: {note}")
    for d in report.damage:
        lines.append(f"DAMAGE [{d.kind}] {d.message}")
        blobs = sorted(d.blobs)
        if blobs:
            shown = ", ".join(b[:16] for b in blobs[:MAX_BLOBS_SHOWN])
            more = f" and {len(blobs) - MAX_BLOBS_SHOWN} more" if len(blobs) > MAX_BLOBS_SHOWN else ""
            lines.append(f"    {'tree blobs' if d.blob_type == 'tree' else 'chunks'}: {shown}{more}")
        snaps = sorted(d.snapshots.items())
        for sid, paths in snaps[:MAX_SNAPSHOTS_SHOWN]:
            lines.append(f"    snapshot {sid[:8]}: {', '.join(sorted(paths)) or '(whole snapshot)'}")
        if len(snaps) > MAX_SNAPSHOTS_SHOWN:
            lines.append(f"    ... and {len(snaps) - MAX_SNAPSHOTS_SHOWN} more snapshots (see --json)")
    for item in report.unchecked:
        lines.append(f"NOT CHECKED: {item}")
    status = {"clean": "no damage found", "damaged": f"{len(report.damage)} problem(s) found, "
              f"{len(report.damaged_snapshots())} snapshot(s) damaged",
              "incomplete": "no damage found in what could be read, but the check is incomplete"}[report.status]
    lines.append(f"{status} ({report.duration_s:.2f} s)")
    if report.fix:
        lines.append("to repair: " + "; then ".join(report.fix))
    return lines
