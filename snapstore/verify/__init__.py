"""Integrity audits of a repository: quick (index and packs) and full (re-hash everything).

    report = verify_repository(repo, full=True)   # or read_subset="1/7", snapshot_ids=[...]
    report.clean, report.damage, report.as_dict(), report.exit_code

A damaged chunk is reported with its pack and the snapshots and files (paths in
the backup-folder layout) it damages.  Exit codes: 0 clean, 4 damaged
(``IntegrityError``), 5 could not check (``VerifyIncomplete``).
"""
from .faults import VerifyIncomplete
from .render import format_report
from .report import Damage, VerifyReport
from .run import verify_repository, verify_snapshot
from .subset import ReadSubset, parse_read_subset

__all__ = ["Damage", "ReadSubset", "VerifyIncomplete", "VerifyReport", "format_report", "parse_read_subset",
           "verify_repository", "verify_snapshot"]
