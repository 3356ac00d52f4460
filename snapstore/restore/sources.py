"""Where a restore reads from: a snapshot in the repository, or a verified backup folder.

A folder is read in place (after its checksums pass) rather than imported first,
so a dry run, or a restore refused for its target, never writes to the repository.
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

import yaml

from ..backup import CONFIG_PATH, DB_PATH
from ..atomic import remove_stale_temps, temp_dir
from ..errors import DiskFull, UsageError, disk_full
from ..extract import materialize, write_file
from ..folder.zst import decompress_stream
from ..importer import FolderPlan, plan_folder
from ..manifest import Selection, Snapshot, resolve_snapshot
from ..repository import Repository


class SnapshotSource:
    def __init__(self, repo: Repository, snap: Snapshot):
        self.repo, self.snap = repo, snap
        self.id, self.label = snap.id, snap.short_id

    def paths(self) -> list[str]:
        return [f.path for f in self.snap.files]

    def write(self, path: str, out: BinaryIO) -> None:
        write_file(self.repo, self.snap.file(path), out)

    def database(self, dest: Path, progress: Callable[[int], None] | None) -> None:
        materialize(self.repo, self.snap.file(DB_PATH), dest, progress)


class FolderSource:
    def __init__(self, folder: Path, plan: FolderPlan):
        self.folder, self.plan = folder, plan
        self.id = plan.metadata.get("backup_info", {}).get("snapshot_id") or str(folder)
        self.label = folder.name

    def paths(self) -> list[str]:
        return sorted(self.plan.files)

    def write(self, path: str, out: BinaryIO) -> None:
        src, compressed = self.plan.files[path]
        if compressed:
            decompress_stream(src, out)
            return
        with open(src, "rb") as f:
            shutil.copyfileobj(f, out, 8 << 20)

    def database(self, dest: Path, progress: Callable[[int], None] | None) -> None:
        with open(dest, "wb") as out:
            self.write(DB_PATH, out)


def open_source(repo: Repository, ref: str | os.PathLike,
                selection: Selection = Selection()) -> SnapshotSource | FolderSource:
    """``latest`` is always the snapshot (of ``selection``); otherwise a folder, else a snapshot id."""
    text = str(ref)
    if text.lower() == "latest":
        return SnapshotSource(repo, resolve_snapshot(repo, text, selection))
    if os.path.isdir(ref):
        return FolderSource(Path(ref), plan_folder(ref))
    if os.path.exists(ref):
        raise UsageError(f"{text} is a file, not a backup folder or a snapshot id")
    if os.sep in text or text.startswith("."):  # meant as a folder: say so, not "no snapshot './x'"
        raise UsageError(f"no backup folder {text} (and it is not a snapshot id)")
    return SnapshotSource(repo, resolve_snapshot(repo, text, selection))


@contextmanager
def database_copy(origin: "SnapshotSource | FolderSource", work_parent: Path, target_label: str,
                  progress: Callable[[int], None] | None) -> Iterator[Path]:
    """The source's SQLite database written to a work directory under ``work_parent`` (what a
    killed restore left there is removed first), for as long as the ``with`` lasts."""
    remove_stale_temps(work_parent)
    with temp_dir(work_parent, "restore") as tmp:
        snap_db = tmp / "snapshot.db"
        try:
            origin.database(snap_db, progress)
        except OSError as exc:
            if disk_full(exc):
                raise DiskFull(f"disk full in {work_parent} while restoring; {target_label} is unchanged") from None
            raise
        yield snap_db


def source_config(source: SnapshotSource | FolderSource) -> dict:
    if CONFIG_PATH not in source.paths():
        return {}
    buf = io.BytesIO()
    source.write(CONFIG_PATH, buf)
    doc = yaml.safe_load(buf.getvalue()) or {}
    return doc if isinstance(doc, dict) else {}
