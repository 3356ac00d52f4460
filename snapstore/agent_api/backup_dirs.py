"""Managing a directory of backup folders: ``cleanup_old_backups`` and ``monitor_backup_sizes``.

Only folders that are backups are ever counted or removed:

* a snapstore folder — ``metadata.json`` is JSON with a ``backup_info`` object;
* an encrypted snapstore folder — ``encryption.json`` of snapstore's format;
* a folder the real Mirix ``save_agent`` wrote — ``agent_config.json`` beside
  ``sqlite.db`` or ``mirix_database.sql``/``.dump``.

Anything else (plain files, symlinks, hidden entries such as an export still being
assembled or a ``.snapstore`` repository, other directories) is left alone.
Age is the folder's modification time, as in the reference.

Given a snapstore **repository** directory instead, both work on its snapshots:
cleanup forgets snapshots older than ``days_to_keep`` (the newest of each agent and
host always stays; the data they alone used stays in the repository until
``snapstore prune`` frees it), and monitoring lists snapshots with their logical and added sizes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ..errors import UsageError
from ..folder.layout import METADATA
from ..manifest import list_snapshots
from ..repository import Repository
from .folder_crypto import FORMAT as ENCRYPTED_FORMAT
from .folder_crypto import HEADER as ENCRYPTION_HEADER

log = logging.getLogger("snapstore.backups")

MIRIX_CONFIG = "agent_config.json"
MIRIX_DATABASES = ("sqlite.db", "mirix_database.sql", "mirix_database.dump")
DAY_S = 24 * 60 * 60
MIB = 1024 * 1024


def _json(path: Path) -> dict | None:
    try:
        if path.is_symlink() or not path.is_file():
            return None
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def backup_kind(path: str | os.PathLike) -> str | None:
    """``"snapstore"``, ``"encrypted"``, ``"mirix"`` or None when ``path`` is not a backup folder."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return None
    meta = _json(path / METADATA)
    if meta is not None and isinstance(meta.get("backup_info"), dict):
        return "snapstore"
    header = _json(path / ENCRYPTION_HEADER)
    if header is not None and header.get("format") == ENCRYPTED_FORMAT:
        return "encrypted"
    if (path / MIRIX_CONFIG).is_file() and any((path / n).is_file() for n in MIRIX_DATABASES):
        return "mirix"
    return None


def is_backup_folder(path: str | os.PathLike) -> bool:
    return backup_kind(path) is not None


def iter_backups(backup_dir: str | os.PathLike) -> Iterator[tuple[Path, str]]:
    root = Path(backup_dir)
    if not root.exists():
        return
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        kind = backup_kind(child)
        if kind is not None:
            yield child, kind


def _repository(path: str | os.PathLike) -> Repository | None:
    """The repository at ``path`` when it is one: an ``s3:`` URL (opened, so a wrong one is an
    error rather than an empty directory of folders), or a directory with ``config`` and ``snapshots/``."""
    if str(path).startswith("s3:"):
        return Repository.open(str(path))
    path = Path(path)
    if (path / "config").is_file() and (path / "snapshots").is_dir() and not path.is_symlink():
        return Repository.open(path)
    return None


def _cleanup_snapshots(repo: Repository, days_to_keep: float) -> int:
    from ..lifecycle.forget import forget_snapshots, plan_older_than
    from ..lifecycle.policy import Duration

    hours = math.ceil(days_to_keep * 24)
    plan = plan_older_than(list_snapshots(repo), Duration(hours=hours))
    removed = forget_snapshots(repo, plan.remove_ids)
    for sid in removed:
        log.info("Removed old snapshot: %s", sid[:8])
    log.info("Cleaned up %d old snapshots", len(removed))
    return len(removed)


def cleanup_old_backups(backup_dir: str | os.PathLike, days_to_keep: float = 30) -> int:
    """Remove backup folders in ``backup_dir`` last modified more than ``days_to_keep`` days ago
    (or, when ``backup_dir`` is a repository, forget its snapshots older than that).

    Returns how many were removed; a missing ``backup_dir`` has none.
    """
    if isinstance(days_to_keep, bool) or not isinstance(days_to_keep, (int, float)) or days_to_keep < 0:
        raise UsageError(f"days_to_keep must be a number of days >= 0, got {days_to_keep!r}")
    repo = _repository(backup_dir)
    if repo is not None:
        return _cleanup_snapshots(repo, days_to_keep)
    cutoff = time.time() - days_to_keep * DAY_S
    removed = 0
    for folder, _ in iter_backups(backup_dir):
        if folder.lstat().st_mtime >= cutoff:
            continue
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            log.warning("could not remove old backup %s: %s", folder, exc)
            continue
        removed += 1
        log.info("Removed old backup: %s", folder.name)
    log.info("Cleaned up %d old backups", removed)
    return removed


def _folder_size(folder: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total


def _created(folder: Path, kind: str) -> datetime:
    """The backup's own timestamp when it records one, else the folder's modification time
    (the reference reads ``st_ctime``, which on Linux is the last inode change, not creation)."""
    if kind == "snapstore":
        stamp = (_json(folder / METADATA) or {}).get("backup_info", {}).get("timestamp")
        try:
            when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime.fromtimestamp(folder.stat().st_mtime, timezone.utc)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat()


def _snapshot_sizes(repo: Repository) -> list[dict]:
    from ..lifecycle.policy import parse_time
    from ..lifecycle.stats import repository_stats

    return [{"name": s.id[:8], "size_mb": s.logical_bytes / MIB, "added_mb": s.added_bytes / MIB,
             "created": _iso(parse_time(s.time)), "path": repo.location, "kind": "snapshot",
             "agent": s.agent, "host": s.host}
            for s in repository_stats(repo).snapshots]


def monitor_backup_sizes(backup_dir: str | os.PathLike) -> list[dict]:
    """``[{"name", "size_mb", "created", "path", "kind"}]`` for the backup folders, oldest first;
    for a repository, one entry per snapshot (``name`` its short id, ``kind`` "snapshot", plus
    ``added_mb``, what its backup added to the repository, ``agent`` and ``host``).
    ``created`` is ISO 8601 in UTC (``2026-03-15T02:00:00+00:00``), readable and sortable."""
    repo = _repository(backup_dir)
    if repo is not None:
        info = _snapshot_sizes(repo)
    else:
        info = [{"name": folder.name, "size_mb": _folder_size(folder) / MIB, "created": _iso(_created(folder, kind)),
                 "path": str(folder), "kind": kind}
                for folder, kind in iter_backups(backup_dir)]
    info.sort(key=lambda x: (x["created"], x["name"]))
    if len(info) > 1:
        avg_growth = (info[-1]["size_mb"] - info[0]["size_mb"]) / len(info)
        log.info("Average backup size growth: %.2f MB per backup", avg_growth)
    return info
