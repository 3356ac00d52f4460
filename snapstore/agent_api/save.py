"""``AgentWrapper.save_agent``: a snapshot into the repository, then the portable folder.

The snapshot is what makes frequent saves cheap (only changed chunks are stored);
the folder at ``backup_path`` is the reference's documented layout, written from
that snapshot.  ``success`` is True only when the folder was written and every
check asked for passed: ``verify_integrity`` (the export's SQLite
``integrity_check`` of the saved database and the completeness of the memory
files) and ``verify_after_backup`` (``verify_backup`` of the written folder).  A
folder that fails a check is left in place for inspection and reported with
``success: False``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..backup import backup_agent
from ..errors import SourceError, UsageError
from ..export import export_snapshot
from ..export.vault import parse_level
from ..wording import plural
from .results import error_text
from .verification import verify_backup

if TYPE_CHECKING:
    from .wrapper import AgentWrapper

MIB = 1 << 20


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def prepare_destination(dest: Path) -> None:
    """Refuse an existing non-empty path before any work; create missing parent directories."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"backup path {dest} already exists and is not an empty directory; choose a new path")
    parent = dest.parent if str(dest.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"backup path's parent {parent} is not a directory")
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def check_database(source) -> None:
    if source.is_sqlite and not source.sqlite_path.is_file():
        raise SourceError(f"the agent's database {source.sqlite_path} does not exist")


def _verification_errors(export, dest: Path, verify_integrity: bool, verify_after_backup: bool) -> list[str] | None:
    if not (verify_integrity or verify_after_backup):
        return None
    errors: list[str] = []
    if verify_integrity:
        v = export.verification
        if v.get("integrity_check") != "passed":
            errors.append(f"integrity_check: {v.get('integrity_check')}")
        if v.get("completeness_check") != "passed":
            errors.append(f"completeness_check: {v.get('completeness_check')} (memory files do not hold every row)")
    if verify_after_backup:
        check = verify_backup(dest)
        for name, messages in check["errors"].items():
            errors += [f"{name}: {m}" for m in messages]
    return errors


def save_agent(agent: "AgentWrapper", backup_path: str | os.PathLike, *, include_logs: bool = False,
               compress: bool = False, verify_integrity: bool = True, verify_after_backup: bool = False,
               include_config: bool = True, sanitize_sensitive: bool = True,
               tags: Iterable[str] = ("save_agent",), redact_vault: str | None = None) -> dict:
    dest = Path(backup_path)
    result: dict = {"success": False, "message": "", "backup_path": str(dest), "size_mb": 0.0, "file_count": 0,
                    "verification_passed": None, "verification_errors": [], "snapshot_id": None,
                    "added_bytes": 0}
    try:
        parse_level(redact_vault)  # a wrong level fails before anything is stored
        source = agent.reload()
        check_database(source)
        prepare_destination(dest)
        repo = agent.repository
        backup = backup_agent(repo, source, include_logs=include_logs, tags=tags)
        result.update(snapshot_id=backup.snapshot.id, added_bytes=backup.added_bytes, repository=repo.location)
        export = export_snapshot(repo, backup.snapshot.id, dest, compress=compress, sanitize=sanitize_sensitive,
                                 include_config=include_config, redact_vault=redact_vault)
        result.update(size_mb=round(export.size_bytes / MIB, 2), file_count=export.file_count,
                      size_bytes=export.size_bytes, database_type=backup.snapshot.database.get("type"),
                      verification=export.verification, sanitized=export.sanitized,
                      vault_redaction=export.vault_redaction.as_dict() if export.vault_redaction else None)
        errors = _verification_errors(export, dest, verify_integrity, verify_after_backup)
    except Exception as exc:  # every failure is a result, never an exception (the reference's contract)
        result["error"] = error_text(exc)
        result["message"] = f"Agent state could not be saved: {result['error']}"
        return result
    result["verification_passed"] = None if errors is None else not errors
    result["verification_errors"] = errors or []
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        result["error"] = f"backup written to {dest} failed verification: {errors[0]}{more}"
        result["message"] = f"Agent state saved to {dest}, but the backup failed verification"
        return result
    result["success"] = True
    result["message"] = (f"Agent state saved successfully to {dest} (snapshot {backup.snapshot.short_id}, "
                         f"{plural(export.file_count, 'file')}, {result['size_mb']:.2f} MB; "
                         f"{_human(backup.added_bytes)} added to the repository)")
    return result
