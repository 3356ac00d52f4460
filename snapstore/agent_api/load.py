"""``AgentWrapper.load_agent``: restore a backup folder into the agent, whole or in parts.

``restore_components`` (the reference's dict; a list of names works too):

* default (``None``) — the whole database, every table as in the backup; the
  agent's config and logs are left alone (the backup's config is sanitised and
  describes the machine that wrote it);
* ``memories`` — the memory tables (``True``, or a list of memory types such as
  ``["episodic", "semantic"]``), ``conversations`` — the ``messages`` table; both
  are replaced table by table in one transaction, every other table untouched;
* ``database`` — the whole database (covers memories and conversations);
* ``config`` — the backup's ``mirix.yaml`` merged into the agent's (see
  ``restore.config_merge``; the CLI's ``restore --only config`` does the same);
* ``logs`` — the backup's ``logs/`` written beside the config, in
  ``restored-logs-<folder>-<time>/``, never over the live logs.

A PostgreSQL agent (``database_url: postgresql://…``) is restored the same way:
from the snapshot a PostgreSQL folder names (in the agent's repository), or from
an SQLite folder, converted (``restore --to postgresql://…``).

``at=TIME`` (a datetime, naive meaning local time, or the strings ``restore --at``
takes) loads the agent's own snapshot of that time from its repository instead of a
folder: the newest taken at or before TIME, chosen by the same rule as ``restore
--at`` (restore/point_in_time.py); ``snapshot_id`` and ``snapshot_time`` say which.

The folder is verified (checksums) before anything changes, a newer folder format
is refused, another Mirix version gives a warning, and the live database is
captured in a ``pre-restore`` safety snapshot first (``undo`` says how to go back).
"""
from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ..errors import UsageError
from ..importer import plan_folder
from ..manifest import Selection, resolve_snapshot
from ..memory_types import CONVERSATION_TABLE, memory_tables, parse_memory_types
from ..restore import restore
from ..restore.config_merge import restore_config
from ..restore.point_in_time import point_in_time
from ..restore.safety import safety_snapshot, undo_command
from ..restore.sources import FolderSource, SnapshotSource
from ..sqlite_uri import sqlite_uri
from .opened import opened_backup
from .results import error_text
from .versions import get_mirix_version, version_warnings

if TYPE_CHECKING:
    from .wrapper import AgentWrapper

COMPONENTS = ("database", "memories", "conversations", "config", "logs")
DEFAULT_COMPONENTS = {"database": True}


def parse_restore_components(components: Any, mapping: Mapping[str, str]) -> tuple[set[str], list[str] | None]:
    """(selected component names, memory types or None for all)."""
    if components is None:
        components = DEFAULT_COMPONENTS
    if isinstance(components, str):
        components = [c.strip() for c in components.split(",")]
    if isinstance(components, (list, tuple, set, frozenset)):
        components = {str(c): True for c in components}
    if not isinstance(components, Mapping):
        raise UsageError("restore_components must be a dict such as {'memories': True, 'config': False}")
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        raise UsageError(f"unknown restore component {', '.join(unknown)}; choose from {', '.join(COMPONENTS)}")
    selected = {name for name, value in components.items() if value}
    memory_types = None
    value = components.get("memories")
    if isinstance(value, (list, tuple, str)) and not isinstance(value, bool):
        memory_types = parse_memory_types(value, mapping)
        if not memory_types:
            selected.discard("memories")
    if "database" in selected:
        selected -= {"memories", "conversations"}
        memory_types = None
    if not selected:
        raise UsageError("restore_components selects nothing to restore")
    return selected, memory_types


def _count_rows(source, tables: list[str]) -> int:
    """Rows of ``tables`` in the agent's database (SQLite file or PostgreSQL)."""
    if not source.is_sqlite:
        from ..sources.postgres.connect import PgTarget

        with PgTarget.from_url(source.database_url).connect() as conn:
            present = {n for (n,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            return sum(conn.execute(f'SELECT count(*) FROM public."{t}"').fetchone()[0] for t in tables if t in present)
    conn = sqlite3.connect(sqlite_uri(source.sqlite_path, mode="ro"), uri=True)
    try:
        present = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables if t in present)
    finally:
        conn.close()


@contextmanager
def _origin(agent: "AgentWrapper", backup_path, at, encryption_key, result: dict) -> Iterator[tuple[str, Any]]:
    """(restore source, its reader): the backup folder, or with ``at`` the agent's snapshot of that
    time, chosen as ``restore --at`` chooses it (restore.point_in_time)."""
    if at is None:
        if backup_path is None:
            raise UsageError("give the backup folder to load (or at=TIME for a point in time)")
        with opened_backup(backup_path, encryption_key) as folder:
            plan = plan_folder(folder)  # checksums verified, newer folder format refused
            info = plan.metadata.get("backup_info", {})
            result["backup_info"] = info
            result["backup_verification"] = plan.metadata.get("verification", {})
            result["warnings"] += version_warnings(info.get("mirix_version"), get_mirix_version(agent))
            yield str(folder), FolderSource(folder, plan)
        return
    if backup_path is not None:
        raise UsageError("at= chooses the snapshot itself: give no backup_path with it")
    repo = agent.repository
    ref, chosen = point_in_time(None, at, Selection(agent.name))
    snap = resolve_snapshot(repo, ref, chosen)
    result["at"] = chosen.at.isoformat()
    result["snapshot_id"], result["snapshot_time"] = snap.id, snap.time
    yield snap.id, SnapshotSource(repo, snap)


def load_agent(agent: "AgentWrapper", backup_path: str | os.PathLike | None, restore_components: Any = None, *,
               encryption_key: str | bytes | None = None, at: str | datetime | None = None) -> dict:
    loaded_from = str(backup_path) if at is None else f"snapshot at {at}"
    result: dict = {"success": False, "message": "", "backup_path": None if backup_path is None else str(backup_path),
                    "memory_count": 0, "conversation_count": 0, "components": [], "warnings": [],
                    "safety_snapshot_id": None}
    try:
        source = agent.reload()
        mapping = memory_tables(agent.config)
        selected, memory_types = parse_restore_components(restore_components, mapping)
        result["components"] = [c for c in COMPONENTS if c in selected]
        target = source.sqlite_path if source.is_sqlite else source.database_url
        with _origin(agent, backup_path, at, encryption_key, result) as (ref, origin):
            if at is not None:
                loaded_from = f"snapshot {origin.label} ({origin.snap.time}, the newest at or before {result['at']})"
            repo = agent.repository
            if "config" in selected and (not source.is_sqlite or target.is_file()):
                # One snapshot of the whole agent (old config included) before anything changes.
                result["safety_snapshot_id"] = safety_snapshot(repo, config_path=agent.config_path)
            db_parts = [c for c in ("database", "memories", "conversations") if c in selected]
            if db_parts:
                done = restore(repo, ref, target, only=db_parts, memory_types=memory_types)
                result["tables"] = done.tables
                result["safety_snapshot_id"] = result["safety_snapshot_id"] or done.safety_snapshot_id
            if "config" in selected:
                result["config"] = restore_config(agent.config_path, origin, result["safety_snapshot_id"])
                source = agent.reload()
            if "logs" in selected:
                out = agent.config_path.parent / f"restored-logs-{origin.label}-{time.strftime('%Y%m%d-%H%M%S')}"
                result["restored_logs"] = restore(repo, ref, target, only=["logs"], files_dir=out).files
        whole = "database" in selected
        if whole or "memories" in selected:
            kinds = memory_types or list(mapping)
            result["memory_count"] = _count_rows(source, [mapping[k] for k in kinds])
        if whole or "conversations" in selected:
            result["conversation_count"] = _count_rows(source, [CONVERSATION_TABLE])
    except Exception as exc:  # every failure is a result, never an exception (the reference's contract)
        result["error"] = error_text(exc)
        result["message"] = f"Agent state could not be loaded: {result['error']}"
        return result
    if result["safety_snapshot_id"]:
        result["undo"] = undo_command(agent.repository_path, result["safety_snapshot_id"], target)
        if "config" in selected:  # the previous mirix.yaml comes back as a file to copy over the config
            result["config"]["undo"] = undo_command(agent.repository_path, result["safety_snapshot_id"], target,
                                                    "--only", "config", "--files-dir",
                                                    str(agent.config_path.parent / "previous"))
    result["success"] = True
    result["message"] = (f"Agent state loaded successfully from {loaded_from} ({', '.join(result['components'])}: "
                         f"{result['memory_count']} memories, {result['conversation_count']} conversations)")
    agent.loaded_from = loaded_from
    agent.last_load = result
    return result
