"""``snapstore diff``: what an agent learned, rewrote or forgot between two snapshots.

    result = diff_snapshots(repo, "a1b2", "latest")     # or diff_live(repo, "latest")
    result.tables["episodic_memory"].added

SQLite snapshots are compared page by page (sqlite_diff.py), PostgreSQL ones
range by range (pg_diff.py); both decode only what the two sides do not share.
The other files of the snapshot (config, environment, logs) are compared by
content digest.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import UsageError
from ...manifest import Snapshot, resolve_snapshot
from ...repository import Repository
from .model import DiffResult, TableChanges

__all__ = ["DiffResult", "TableChanges", "diff_live", "diff_snapshots"]


def _engine(snap: Snapshot) -> str:
    return snap.database.get("type", "sqlite")


def _other_files(snap: Snapshot) -> dict[str, bytes]:
    return {f.path: f.digest for f in snap.files if not f.path.startswith("database/")}


def _file_changes(old: dict[str, bytes], new: dict[str, bytes]) -> dict[str, list[str]]:
    return {"added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new)),
            "changed": sorted(p for p in set(old) & set(new) if old[p] != new[p])}


def diff_snapshots(repo: Repository, ref_a: str, ref_b: str, rows: int = 3) -> DiffResult:
    with repo.lock():
        a, b = resolve_snapshot(repo, ref_a), resolve_snapshot(repo, ref_b)
        if _engine(a) != _engine(b):
            raise UsageError(f"snapshot {a.short_id} is of {_engine(a)} and {b.short_id} of {_engine(b)}: "
                             "a memory-level diff needs the same database engine on both sides")
        if _engine(a) == "postgresql":
            from .pg_diff import SnapshotTables, diff_pg

            with repo.reader() as reader:
                result = diff_pg(SnapshotTables(repo, a, reader), SnapshotTables(repo, b, reader), rows)
        else:
            from .sqlite_diff import diff_sqlite, snapshot_sides

            with snapshot_sides(repo, a, b) as (side_a, side_b, positions):
                result = diff_sqlite(side_a, side_b, rows, positions)
    result.files = _file_changes(_other_files(a), _other_files(b))
    result.read |= {"from": a.id, "to": b.id}
    return result


def _live_files(repo: Repository, snap: Snapshot, source) -> dict[str, list[str]]:
    """The config file and (when the snapshot has them) logs, compared by content with the live agent."""
    from ...backup import CONFIG_PATH, log_files
    from ...extract import iter_file_chunks

    stored = {f.path: f for f in snap.files if f.path == CONFIG_PATH or f.path.startswith("logs/")}
    live: dict[str, Path] = {}
    if source.config_path is not None:
        live[CONFIG_PATH] = source.config_path
    if any(p.startswith("logs/") for p in stored) and source.log_dir is not None:
        live.update(dict(log_files(source.log_dir)))
    changed = [p for p in set(stored) & set(live)
               if b"".join(iter_file_chunks(repo, stored[p])) != live[p].read_bytes()]
    return {"added": sorted(set(live) - set(stored)), "removed": sorted(set(stored) - set(live)),
            "changed": sorted(changed)}


def diff_live(repo: Repository, ref: str, rows: int = 3, config: str | None = None,
              db: str | None = None) -> DiffResult:
    """A snapshot against the live agent it was taken of (or the agent of ``config``, or the
    database ``db``: a snapshot of a PostgreSQL database records its URL without the password)."""
    from ...sources.agent import load_agent_source  # YAML: only a live diff reads a config

    snap = resolve_snapshot(repo, ref)
    if config is None and db is None:
        config = snap.source.get("config")
        if not config:
            raise UsageError(f"snapshot {snap.short_id} does not record its agent's config: pass --config or --db")
    source = load_agent_source(config, db)
    live_engine = "sqlite" if source.is_sqlite else "postgresql"
    if live_engine != _engine(snap):
        raise UsageError(f"snapshot {snap.short_id} is of {_engine(snap)} but the live agent uses {live_engine}")
    with repo.lock():
        if live_engine == "postgresql":
            from .pg_diff import SnapshotTables, diff_pg, live_tables

            with repo.reader() as reader, live_tables(source.database_url) as live:
                result = diff_pg(SnapshotTables(repo, snap, reader), live, rows)
        else:
            from .sqlite_diff import diff_sqlite, live_side, snapshot_side

            with snapshot_side(repo, snap) as side_a, live_side(source.sqlite_path, repo.cipher.blob_id) as side_b:
                result = diff_sqlite(side_a, side_b, rows)
        result.files = _live_files(repo, snap, source)
    result.read |= {"from": snap.id, "to": "live"}
    return result
