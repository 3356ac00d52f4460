"""``snapstore restore SNAPSHOT --to postgresql://…``: a snapshot into a PostgreSQL database.

Whole restores go into an empty or new database (created when the user may): the
schema's pre-data, every table by COPY, then indexes and keys -- one transaction,
a database created for it is dropped again if the load fails.  Restoring over an
existing agent (a whole restore into a database that has tables, or a selective
``--memory-type``/``--only conversations`` restore) stages the snapshot's rows and
replaces them row by row in one transaction (``pg_stage``), after a safety
snapshot of the target.  Every prerequisite (connection, password, privileges,
pgvector) is checked before any change (``pg_preflight``).

Sources: a snapshot (or folder) of an SQLite agent -- the migration of Mirix's
"Migration Between Systems" -- whose rows are converted on the way (``migrate``).
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

import psycopg

from ..atomic import remove_stale_temps, temp_dir
from ..backup import DB_PATH
from ..errors import DiskFull, PgPrerequisite, SnapstoreError, UsageError, disk_full
from ..migrate.sqlite_to_pg import copy_table, load_sqlite_database, open_sqlite_readonly
from ..migrate.values import CannotCarry
from ..mirix_schema.postgres import Table, pg_schema_from_sqlite
from .pg_preflight import (DatabaseMissing, PgDatabase, check_extensions, check_privileges, create_database,
                           drop_database)
from .pg_stage import introspect, replace_rows


class SqliteRows:
    """An SQLite agent database as the rows of a PostgreSQL restore."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = open_sqlite_readonly(str(path))
        self.schema = pg_schema_from_sqlite(self.conn)

    def close(self) -> None:
        self.conn.close()

    def table_names(self) -> list[str]:
        return [t.name for t in self.schema.tables]

    def column_names(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f'PRAGMA table_info("{table}")')]

    def copy_into(self, conn: psycopg.Connection, table: Table, stage: str, columns: list[str]) -> int:
        return copy_table(self.conn, conn, table, target=stage)


def restore_to_postgres(repo, source: str | os.PathLike, url: str, *, components: list[str],
                        tables: Callable[[dict], list[str] | None], dry_run: bool = False,
                        progress: Callable[[int], None] | None = None):
    """Restore the database part of ``source`` into the PostgreSQL database at ``url``.

    ``tables(config)`` gives the tables a selective restore replaces (None: all)."""
    from . import RestoreResult
    from .sources import FolderSource, open_source, source_config

    started = time.perf_counter()
    db = PgDatabase.from_url(url)
    unsupported = [c for c in components if c in ("config", "logs")]
    if unsupported:
        raise UsageError(f"{' and '.join(unsupported)} are files: restore them with --to a path, "
                         "not a PostgreSQL URL")
    origin = open_source(repo, source)
    if DB_PATH not in origin.paths():
        raise UsageError(f"{origin.label} has no database to restore")
    kind = "folder" if isinstance(origin, FolderSource) else "snapshot"
    result = RestoreResult(db.label, origin.id, components, source=f"{kind} {origin.label}", dry_run=dry_run)
    selected = tables(source_config(origin))
    work = Path(tempfile.gettempdir())
    remove_stale_temps(work)
    with temp_dir(work, "restore") as tmp:
        snap_db = tmp / "snapshot.db"
        try:
            origin.database(snap_db, progress)
        except OSError as exc:
            if disk_full(exc):
                raise DiskFull(f"disk full in {work} while restoring; {db.label} is unchanged") from None
            raise
        rows = SqliteRows(snap_db)
        try:
            result.tables, result.not_carried = _restore_rows(repo, db, rows, selected, dry_run, result)
        finally:
            rows.close()
    result.duration_s = time.perf_counter() - started
    return result


def _restore_rows(repo, db: PgDatabase, rows: SqliteRows, selected: list[str] | None, dry_run: bool,
                  result) -> tuple[dict, list[str]]:
    created = False
    try:
        conn = db.connect()
    except DatabaseMissing:
        if selected is not None:
            raise PgPrerequisite(f"database {db.dbname} does not exist on {db.server}; "
                                 "a selective restore needs the agent's database") from None
        if dry_run:
            return _source_counts(rows), list(rows.schema.not_carried)
        create_database(db)
        created = True
        conn = db.connect()
    try:
        with conn:
            existing = introspect(conn)
            if selected is None and not existing:
                return _load_whole(conn, db, rows, dry_run)
            return _replace(repo, conn, db, rows, existing, selected, dry_run, result), []
    except BaseException:
        if created:
            drop_database(db)
        raise


def _source_counts(rows: SqliteRows) -> dict[str, dict[str, int]]:
    return {t: {"deleted": 0, "inserted": rows.conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]}
            for t in rows.table_names()}


def _load_whole(conn: psycopg.Connection, db: PgDatabase, rows: SqliteRows, dry_run: bool):
    check_privileges(conn, db, [], creates=True)
    check_extensions(conn, db, rows.schema.required_extensions)
    loaded = load_sqlite_database(str(rows.path), conn, schema=rows.schema)
    if dry_run:
        conn.rollback()
    else:
        conn.commit()
    return {t: {"deleted": 0, "inserted": n} for t, n in loaded.rows.items()}, loaded.not_carried


def _replace(repo, conn: psycopg.Connection, db: PgDatabase, rows: SqliteRows, existing: dict[str, Table],
             selected: list[str] | None, dry_run: bool, result) -> dict:
    names = selected if selected is not None else rows.table_names()
    _check_carried(db, rows, existing, names)
    check_privileges(conn, db, names, creates=False)
    conn.rollback()  # the checks' snapshot ends here; the safety snapshot sees the target as it is now
    if not dry_run:
        result.safety_snapshot_id = _safety_snapshot(repo, db)
    counts = replace_rows(conn, rows, existing, names)
    if dry_run:
        conn.rollback()
    else:
        conn.commit()
    return counts


def _check_carried(db: PgDatabase, rows: SqliteRows, existing: dict[str, Table], names: Iterable[str]) -> None:
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


def _safety_snapshot(repo, db: PgDatabase) -> str:
    raise UsageError(f"{db.label} already holds an agent; replacing it needs a safety snapshot of it, "
                     "which needs PostgreSQL capture: restore into a new or empty database, or use --dry-run")
