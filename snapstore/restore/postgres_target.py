"""``snapstore restore SNAPSHOT --to postgresql://…``: a snapshot into a PostgreSQL database.

Whole restores go into an empty or new database (created when the user may): the
schema's pre-data, every table by COPY, sequences, then indexes and keys (post-data)
-- one transaction; a database created for it is dropped again if the load fails.
Restoring over an existing agent (a whole restore into a database that has
tables, or a selective ``--memory-type``/``--only conversations`` restore) first
takes a safety snapshot of the target, then stages the snapshot's rows and
replaces them row by row in one transaction (``pg_stage``).  Every prerequisite
(connection, password, privileges, pgvector) is checked before any change
(``pg_preflight``).

Sources (``pg_rows``): a PostgreSQL snapshot or backup folder, or a snapshot or
folder of an SQLite agent -- Mirix's "Migration Between Systems" -- whose rows are
converted on the way (``migrate``).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

import psycopg

from ..errors import PgPrerequisite, UsageError
from ..manifest import Selection
from ..migrate.values import CannotCarry
from ..mirix_schema.postgres import Table
from ..sources.postgres.connect import DatabaseMissing, PgTarget
from ..sources.sqlite_capture import DB_PATH
from .pg_preflight import check_extensions, check_privileges, create_database, drop_database, target_database
from .pg_rows import CaptureRows, DumpRows, Progress, SqliteRows
from .pg_source import folder_dump, is_pg_folder, pg_capture_of
from .pg_stage import introspect, replace_rows
from .safety import safety_snapshot
from .sources import FolderSource, database_copy, open_source, source_config


def restore_to_postgres(repo, source: str | os.PathLike, url: str, *, components: list[str],
                        tables: Callable[[dict], list[str] | None], files_dir: str | os.PathLike | None = None,
                        dry_run: bool = False, progress: Progress | None = None,
                        selection: Selection = Selection()):
    """Restore ``source`` into the PostgreSQL database at ``url``; config and logs, being files,
    go to ``files_dir``.  ``tables(config)`` gives the tables a selective restore replaces (None: all)."""
    from . import RestoreResult, _plan_files, _write_files
    started = time.perf_counter()
    db = target_database(url)
    file_parts = [c for c in components if c in ("config", "logs")]
    if file_parts and files_dir is None:
        raise UsageError(f"{' and '.join(file_parts)} are files: give --files-dir for them "
                         "(the target is a PostgreSQL database)")
    origin = open_source(repo, source, selection)
    kind = "folder" if isinstance(origin, FolderSource) else "snapshot"
    result = RestoreResult(db.label, origin.id, components, source=f"{kind} {origin.label}", dry_run=dry_run,
                           repository=repo.location)
    file_plan = _plan_files(origin, Path(files_dir), file_parts) if file_parts else []
    if any(c in ("database", "memories", "conversations") for c in components):
        _restore_database(repo, origin, url, db, tables(source_config(origin)), result, progress)
    result.files = [str(Path(files_dir) / p) for p in file_plan] if file_plan else []
    if file_plan and not dry_run:
        _write_files(origin, Path(files_dir), file_plan)
    result.duration_s = time.perf_counter() - started
    return result


def _restore_database(repo, origin, url: str, db: PgTarget, selected: list[str] | None, result,
                      progress: Progress | None) -> None:
    capture = pg_capture_of(repo, origin)
    if capture is not None:
        rows = CaptureRows(capture)
        _restore_rows(repo, url, db, rows, selected, result, progress)
    elif is_pg_folder(origin):
        with tempfile.TemporaryDirectory(prefix="snapstore-restore-") as tmp:
            rows = DumpRows(folder_dump(origin, Path(tmp)), db)
            _restore_rows(repo, url, db, rows, selected, result, progress)
    elif DB_PATH in origin.paths():
        with database_copy(origin, Path(tempfile.gettempdir()), db.label, progress) as snap_db:
            rows = SqliteRows(snap_db)
            try:
                _restore_rows(repo, url, db, rows, selected, result, progress)
            finally:
                rows.close()
    else:
        raise UsageError(f"{origin.label} holds no database to restore")


def _restore_rows(repo, url: str, db: PgTarget, rows, selected: list[str] | None, result, progress: Progress | None) -> None:
    created = False
    try:
        conn = db.connect()
    except DatabaseMissing:
        if selected is not None:
            raise PgPrerequisite(f"database {db.dbname} does not exist on {db.server}; "
                                 "a selective restore needs the agent's database") from None
        if result.dry_run:
            result.tables = {t: {"deleted": 0, "inserted": n} for t, n in rows.counts().items()}
            return
        create_database(db)
        created = True
        conn = db.connect()
    try:
        with conn:
            existing = introspect(conn)
            if selected is None and not existing:
                _load_whole(conn, db, rows, result, progress, parallel=created)
            else:
                _replace(repo, url, conn, db, rows, existing, selected, result)
    except BaseException:
        if created:
            drop_database(db)
        raise


def _load_whole(conn: psycopg.Connection, db: PgTarget, rows, result, progress: Progress | None,
                parallel: bool) -> None:
    check_privileges(conn, db, [], creates=True)
    check_extensions(conn, db, rows.required_extensions)
    if result.dry_run and isinstance(rows, DumpRows):  # psql would load it for real
        result.tables = {t: {"deleted": 0, "inserted": n} for t, n in rows.counts().items()}
        return
    conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    loaded, result.not_carried = rows.load(conn, progress, parallel=db if parallel else None)
    result.tables = {t: {"deleted": 0, "inserted": n} for t, n in loaded.items()}
    if result.dry_run:
        conn.rollback()
    else:
        conn.commit()


def _replace(repo, url: str, conn: psycopg.Connection, db: PgTarget, rows, existing: dict[str, Table],
             selected: list[str] | None, result) -> None:
    names = selected if selected is not None else rows.table_names()
    if selected is None:  # row by row replaces the agent's tables in schema public only
        result.not_carried = [f"table {t} (outside schema public: restore into a new database to have it)"
                              for t in rows.other_tables()]
    _check_carried(db, rows, existing, names)
    check_privileges(conn, db, names, creates=False)
    conn.rollback()  # the checks' transaction ends; the safety snapshot sees the target as it is now
    if not result.dry_run:
        result.safety_snapshot_id = safety_snapshot(repo, db_path=url)
    result.tables = replace_rows(conn, rows, existing, names)
    if result.dry_run:
        conn.rollback()
    else:
        conn.commit()


def _check_carried(db: PgTarget, rows, existing: dict[str, Table], names: Iterable[str]) -> None:
    """Every table and column of the snapshot has a place in the target, before any change."""
    for name in names:
        if name not in rows.table_names():
            raise UsageError(f"the snapshot has no table {name}")
        if name not in existing:
            raise UsageError(f"{db.label} has no table {name}: restore the whole database into a new one")
        lacking = [c for c in rows.column_names(name) if existing[name].column(c) is None]
        if lacking:
            raise CannotCarry(f"{db.label} table {name} has no column {', '.join(lacking)}; "
                              "nothing was changed")
