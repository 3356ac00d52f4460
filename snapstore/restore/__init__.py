"""Restore: write a snapshot (or a backup folder) back into an agent's database and files.

Components (``--only``): ``database`` (the whole file), ``memories`` (memory
tables, optionally only some ``memory_types``), ``conversations`` (messages),
``config`` (merged into the agent's live ``mirix.yaml``, see ``config_merge``)
and ``logs`` (written to ``restored-logs-<source>-<time>/`` beside the config,
never over the live logs); ``files_dir`` writes config and logs files there
instead.  Before an existing target is changed a safety snapshot of it is taken
(tagged ``pre-restore``; of the whole agent when its config changes); restoring
that snapshot undoes the restore.  A restore that would change nothing changes
nothing and takes no safety snapshot.  ``latest`` means the newest snapshot of the
target's agent (``target_selection``).
"""
from __future__ import annotations

import dataclasses

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..atomic import FILE_MODE, AtomicFile, fsync_dir, make_parents, remove_made, temp_name
from ..backup import DB_PATH, known_agent
from ..errors import IntegrityError, SourceError, UsageError
from ..manifest import SAFETY_TAG, Selection, list_snapshots
from ..memory_types import CONVERSATION_TABLE, memory_tables, parse_memory_types
from ..repository import Repository
from ..sources.agent import config_beside, is_postgres_url, load_agent_source, read_config
from ..sqlite_uri import sqlite_uri
from .config_merge import restore_config
from .pg_source import PgSnapshotAsSqlite, as_sqlite_source
from .safety import safety_snapshot, undo_command
from .sources import FolderSource, database_copy, open_source, source_config
from .sqlite_target import (attach_snapshot, copy_database, diff_tables, integrity, replace_tables, same_schema,
                            table_names)

COMPONENTS = ("database", "memories", "conversations", "config", "logs")


@dataclass
class RestoreResult:
    target: Path
    snapshot_id: str
    components: list[str]
    source: str = ""  # "snapshot 1a2b3c4d" or "folder NAME": what was restored, for messages
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    safety_snapshot_id: str | None = None
    not_carried: list[str] = field(default_factory=list)  # what the target engine cannot hold
    dry_run: bool = False
    duration_s: float = 0.0
    repository: str | None = None  # where the repository is (a path or an s3: URL), for the undo line
    unchanged: bool = False  # the target already held what was asked for: nothing was written
    config: dict | None = None  # what merging the config did (config_merge.restore_config)

    @property
    def undo_hint(self) -> str | None:
        if not self.safety_snapshot_id or self.repository is None:
            return None
        return undo_command(self.repository, self.safety_snapshot_id, self.target)

    def as_dict(self) -> dict:
        return {"target": str(self.target), "snapshot_id": self.snapshot_id, "source": self.source,
                "components": self.components, "unchanged": self.unchanged,
                "tables": self.tables, "files": self.files, "config": self.config,
                "safety_snapshot_id": self.safety_snapshot_id, "undo": self.undo_hint,
                "not_carried": self.not_carried, "dry_run": self.dry_run, "duration_s": round(self.duration_s, 3)}


def _names(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(i).strip() for i in items if str(i).strip()]


def parse_components(only: str | Iterable[str] | None, memory_types: str | Iterable[str] | None) -> list[str]:
    """The components to restore.  Given but empty ``only`` or ``memory_types`` is an error, never
    "everything": a script passing an empty variable must not restore the whole database."""
    if only is None:
        if memory_types is not None and not _names(memory_types):
            raise UsageError("--memory-type is empty; name at least one memory type")
        return ["memories"] if memory_types else ["database"]
    names = _names(only)
    if not names:
        raise UsageError(f"--only is empty; choose from {', '.join(COMPONENTS)}")
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise UsageError(f"unknown component {', '.join(unknown)}; choose from {', '.join(COMPONENTS)}")
    if memory_types is not None and _names(memory_types) and "memories" not in names:
        names.append("memories")  # --memory-type implies the memories component
    return names


def _check_target(target: Path, dry_run: bool) -> None:
    parent = target.parent if str(target.parent) else Path(".")
    if target.exists() and not target.is_file():
        raise UsageError(f"restore target {target} is not a file")
    if dry_run or not parent.exists():
        return  # a dry run only reads the target; a missing parent is made as export's is
    if not parent.is_dir():
        raise UsageError(f"restore target's parent {parent} is not a directory")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"restore target {target} is not writable")


def target_selection(repo: Repository, target: Path | str, selection: Selection = Selection()) -> Selection:
    """The agent a restore target belongs to, named as ``backup --db`` would name it (the
    config beside it, else earlier snapshots of that file): ``latest`` means its newest
    snapshot, never another agent's.  An explicit ``--agent`` wins; an unknown target leaves
    the selection as it is (and ``latest`` ambiguous if the repository holds several agents)."""
    if selection.agent is not None:
        return selection
    source = load_agent_source(db_path=target)
    backups = [s for s in list_snapshots(repo) if SAFETY_TAG not in s.tags]  # a safety snapshot names no agent
    name = known_agent(backups, source) if source.name_is_default else source.name
    return dataclasses.replace(selection, agent=name) if name else selection


def _agent_dir(target: Path, config_path: str | os.PathLike | None) -> Path:
    """Where restored logs go: beside the agent's config, else beside its database."""
    if config_path is not None:
        return Path(config_path).expanduser().resolve().parent
    beside = config_beside(target.expanduser().absolute())
    return beside[0].parent if beside else target.absolute().parent


def _agent_config(target: Path, config_path: str | os.PathLike | None) -> Path:
    if config_path is not None:
        return Path(config_path).expanduser().resolve()
    beside = config_beside(target.expanduser().absolute())
    if beside is None:
        raise UsageError(f"restoring config merges it into the agent's mirix.yaml, and there is none beside {target} "
                         "naming it as its database: give --config PATH, or --files-dir DIR to write the files there")
    return beside[0]


def restore(repo: Repository, source: str | os.PathLike, target: str | os.PathLike, *,
            only: str | Iterable[str] | None = None, memory_types: str | Iterable[str] | None = None,
            files_dir: str | os.PathLike | None = None, dry_run: bool = False,
            progress: Callable[[int], None] | None = None, selection: Selection = Selection(),
            config_path: str | os.PathLike | None = None) -> RestoreResult:
    """Restore ``source`` (snapshot ref or backup folder) into the SQLite database ``target``
    or, given a ``postgresql://`` URL, into that PostgreSQL database.

    ``config_path``: the agent's ``mirix.yaml`` a restored config is merged into (default:
    the one beside ``target``).
    """
    started = time.perf_counter()
    components = parse_components(only, memory_types)
    if str(source).lower() == "latest":  # an id or a folder names what to restore: no implied agent
        selection = target_selection(repo, target, selection)
    if is_postgres_url(str(target)):
        from .postgres_target import restore_to_postgres  # here: a SQLite restore does not import psycopg
        return restore_to_postgres(repo, source, str(target), components=components, files_dir=files_dir,
                                   tables=lambda config: _selected_tables(components, memory_types, config),
                                   dry_run=dry_run, progress=progress, selection=selection)
    target = Path(target)
    _check_target(target, dry_run)
    origin = as_sqlite_source(repo, open_source(repo, source, selection))
    db_parts = [c for c in components if c in ("database", "memories", "conversations")]
    kind = "folder" if isinstance(origin, FolderSource) else "snapshot"
    result = RestoreResult(target, origin.id, components, source=f"{kind} {origin.label}", dry_run=dry_run,
                           repository=repo.location)
    if db_parts and DB_PATH not in origin.paths():
        raise UsageError(f"{origin.label} has no SQLite database to restore")
    if "database" in components and len(db_parts) > 1:
        raise UsageError("'database' restores every table; do not combine it with memories or conversations")
    merge_into = _agent_config(target, config_path) if "config" in components and not files_dir else None
    file_parts = [c for c in components if c == "logs" or (c == "config" and merge_into is None)]
    out_dir = Path(files_dir) if files_dir else (_agent_dir(target, config_path) /
                                                 f"restored-logs-{origin.label}-{time.strftime('%Y%m%d-%H%M%S')}")
    file_plan = _plan_files(origin, out_dir, file_parts) if file_parts else []  # refused before any change
    if merge_into is not None:
        read_config(merge_into)  # missing or not YAML: refused before anything changes
    made = make_parents(target, "restore target") if db_parts and not dry_run else []
    try:
        if db_parts:
            _restore_database(repo, origin, target, components, memory_types, result, merge_into, progress)
        if merge_into is not None and not dry_run:
            if result.safety_snapshot_id is None and target.is_file():
                result.safety_snapshot_id = safety_snapshot(repo, config_path=merge_into)
            result.config = restore_config(merge_into, origin, result.safety_snapshot_id)
    except BaseException:
        remove_made(made)
        raise
    result.files = [str(out_dir / path) for path in file_plan]
    result.unchanged = result.unchanged and not file_plan and merge_into is None
    if not dry_run:
        _write_files(origin, out_dir, file_plan)
    result.duration_s = time.perf_counter() - started
    return result


def _restore_database(repo: Repository, origin, target: Path, components: list[str], memory_types,
                      result: RestoreResult, merge_into: Path | None,
                      progress: Callable[[int], None] | None) -> None:
    tables = _selected_tables(components, memory_types, source_config(origin))
    dry_run = result.dry_run
    # Beside the target, so the result can be renamed into place; a dry run writes nothing
    # there (the target's directory may be read-only) and works in the system's temp dir.
    work_parent = Path(tempfile.gettempdir()) if dry_run else target.parent
    with database_copy(origin, work_parent, str(target), progress) as snap_db:
        os.chmod(snap_db, FILE_MODE)  # a restored database is as private as the repository and dump's output
        if isinstance(origin, PgSnapshotAsSqlite):
            result.not_carried = origin.not_carried
        # A snapshot's pages were each hash-checked on the way out: they are the captured
        # database byte for byte.  A folder's file is only as good as the folder, so check it.
        check = integrity(snap_db) if isinstance(origin, FolderSource) else "ok"
        if check != "ok":
            raise IntegrityError(f"the database of {origin.label} fails integrity_check: {check}")
        result.tables, schema_same = _plan_tables(target, snap_db, tables, dry_run)
        result.unchanged = schema_same and not any(c["deleted"] or c["inserted"] for c in result.tables.values())
        if dry_run or result.unchanged:
            return
        if target.exists():
            result.safety_snapshot_id = (safety_snapshot(repo, config_path=merge_into) if merge_into
                                         else safety_snapshot(repo, db_path=target))
        _apply(target, snap_db, tables)


def _selected_tables(components: list[str], memory_types, config_doc: dict) -> list[str] | None:
    """None means every table (whole-database restore)."""
    if "database" in components:
        return None
    tables: list[str] = []
    if "memories" in components:
        mapping = memory_tables(config_doc)
        tables += [mapping[t] for t in parse_memory_types(memory_types, mapping)]
    if "conversations" in components:
        tables.append(CONVERSATION_TABLE)
    return tables


def _plan_tables(target: Path, snap_db: Path, tables: list[str] | None,
                 dry_run: bool = False) -> tuple[dict[str, dict[str, int]], bool]:
    """(rows per table that would go and come, whether the schema of those tables is the same)."""
    import sqlite3

    if not target.exists():
        if tables is not None:
            raise UsageError(f"selective restore needs an existing database; {target} does not exist")
        conn = sqlite3.connect(sqlite_uri(snap_db, immutable=1), uri=True)
        try:
            return {t: {"deleted": 0, "inserted": conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]}
                    for t in table_names(conn)}, False
        finally:
            conn.close()
    conn = attach_snapshot(target, snap_db, read_only=dry_run)
    try:
        names = tables if tables is not None else sorted(set(table_names(conn)) | set(table_names(conn, "snap")))
        return diff_tables(conn, names), same_schema(conn, tables)
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"restore target {target} is not a usable SQLite database: {exc}") from None
    finally:
        conn.close()


def _apply(target: Path, snap_db: Path, tables: list[str] | None) -> None:
    if tables is not None:
        replace_tables(target, snap_db, tables)
    elif target.exists():
        copy_database(snap_db, target)
    else:
        staged = target.with_name(temp_name(f".{target.name}"))
        os.link(snap_db, staged)  # the temp dir is beside the target: same filesystem
        os.replace(staged, target)
        fsync_dir(target.parent)
        return  # the very file checked above
    check = integrity(target)
    if check != "ok":
        raise IntegrityError(f"restored database {target} fails integrity_check: {check}")


def _plan_files(origin, out_dir: Path, parts: list[str]) -> list[str]:
    """The paths of ``parts`` (config, logs) to write under ``out_dir``; a part the source lacks
    or a file already there is refused here, before the restore changes anything."""
    chosen = {part: [p for p in origin.paths() if p.startswith(f"{part}/")] for part in parts}
    lacking = [part for part, paths in chosen.items() if not paths]
    if lacking:
        raise UsageError(f"{origin.label} has no {' or '.join(lacking)} to restore")
    paths = [p for part in parts for p in chosen[part]]
    taken = [str(out_dir / p) for p in paths if (out_dir / p).exists()]
    if taken:
        raise UsageError(f"{taken[0]} already exists; choose another --files-dir")
    return paths


def _write_files(origin, out_dir: Path, paths: list[str]) -> None:
    for path in paths:
        dest = out_dir / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        with AtomicFile(dest) as out:
            origin.write(path, out)
