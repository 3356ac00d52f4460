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

Sources: a PostgreSQL snapshot (its stored COPY data goes straight back into
COPY), or a snapshot or folder of an SQLite agent -- Mirix's "Migration Between
Systems" -- whose rows are converted on the way (``migrate``).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

import psycopg
from psycopg import sql

from ..errors import PgPrerequisite, UsageError
from ..folder.layout import DUMP
from ..migrate.sqlite_to_pg import copy_table, load_sqlite_database, open_sqlite_readonly
from ..migrate.values import CannotCarry
from ..mirix_schema.postgres import Table, pg_schema_from_sqlite, quote_ident
from ..sources.postgres.connect import DatabaseMissing, PgTarget, psql_load
from ..sources.postgres.reader import PgCapture
from ..sources.sqlite_capture import DB_PATH
from . import pg_parallel
from .pg_preflight import check_extensions, check_privileges, create_database, drop_database, target_database
from .pg_source import folder_dump, is_pg_folder, pg_capture_of
from .pg_stage import introspect, replace_rows
from .safety import safety_snapshot
from .sources import FolderSource, database_copy, open_source, source_config

Progress = Callable[[int], None]


class SqliteRows:
    """An SQLite agent database (materialised from the snapshot) as the rows of a restore."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = open_sqlite_readonly(str(path))
        self.schema = pg_schema_from_sqlite(self.conn)
        self.required_extensions = self.schema.required_extensions

    def close(self) -> None:
        self.conn.close()

    def table_names(self) -> list[str]:
        return [t.name for t in self.schema.tables]

    def column_names(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f'PRAGMA table_info("{table}")')]

    def counts(self) -> dict[str, int]:
        return {t: self.conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in self.table_names()}

    def copy_into(self, conn: psycopg.Connection, table: Table, stage: str, columns: list[str]) -> int:
        return copy_table(self.conn, conn, table, target=stage)

    def load(self, conn: psycopg.Connection, progress: Progress | None,
             parallel: PgTarget | None = None) -> tuple[dict[str, int], list[str]]:
        loaded = load_sqlite_database(str(self.path), conn, schema=self.schema, progress=progress)
        return loaded.rows, loaded.not_carried


class CaptureRows:
    """A PostgreSQL snapshot's tables of schema ``public`` as the rows of a restore."""

    def __init__(self, capture: PgCapture):
        self.capture = capture
        self.tables = {t.name: t for t in capture.tables() if t.schema == "public"}
        self.required_extensions = [e["name"] for e in capture.extensions if e["name"] != "plpgsql"]

    def close(self) -> None:
        pass

    def table_names(self) -> list[str]:
        return list(self.tables)

    def column_names(self, table: str) -> list[str]:
        return [c for c, _ in self.tables[table].columns]

    def counts(self) -> dict[str, int]:
        return {name: t.row_count for name, t in self.tables.items()}

    def copy_into(self, conn: psycopg.Connection, table: Table, stage: str, columns: list[str],
                  progress: Progress | None = None) -> int:
        return self._copy(conn, sql.Identifier(stage), self.tables[table.name], progress)

    def _copy(self, conn: psycopg.Connection, target: sql.Composable, info, progress: Progress | None) -> int:
        cols = sql.SQL(", ").join(sql.Identifier(c) for c, _ in info.columns)
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, cols)) as cp:
            for block in self.capture.copy_data(info):
                cp.write(block)
                if progress:
                    progress(len(block))
        return info.row_count

    def load(self, conn: psycopg.Connection, progress: Progress | None,
             parallel: PgTarget | None = None) -> tuple[dict[str, int], list[str]]:
        """pg_dump's order: pre-data, data, sequence values, post-data (indexes and keys last);
        into a database the restore created (``parallel``), on several connections."""
        conn.execute(_sql_only(self.capture.schema_sql("pre-data")))
        infos = self.capture.tables()
        if parallel is None:
            for info in infos:
                self._copy(conn, sql.SQL(info.qualified), info, progress)
        else:
            conn.commit()  # the tables must be visible to the workers
            largest_first = sorted(infos, key=lambda t: -self.capture.snapshot.file(t.file).size)
            pg_parallel.run_all(parallel, [self._copy_job(info, progress) for info in largest_first])
        for name, state in self.capture.sequence_states().items():
            conn.execute("SELECT pg_catalog.setval(%s, %s, %s)", (_qualified(name), state["last_value"],
                                                                   state["is_called"]))
        post = _sql_only(self.capture.schema_sql("post-data"))
        if parallel is not None:
            header, per_table, post = pg_parallel.split_post_data(post)
            conn.commit()
            pg_parallel.run_all(parallel, [_script_job(header + "".join(objects)) for objects in per_table.values()])
            post = header + post
        conn.execute(post)
        return {t.key if t.schema != "public" else t.name: t.row_count for t in infos}, []

    def _copy_job(self, info, progress: Progress | None) -> Callable[[psycopg.Connection], None]:
        return lambda conn: self._copy(conn, sql.SQL(info.qualified), info, progress)


def _script_job(script: str) -> Callable[[psycopg.Connection], None]:
    return lambda conn: conn.execute(script)


class DumpRows(CaptureRows):
    """A PostgreSQL folder whose snapshot is not in the repository: staged from its dump's COPY
    blocks; a whole load into an empty database is the dump itself, loaded by psql."""

    def __init__(self, dump, target: PgTarget):
        super().__init__(dump)
        self.dump, self.target = dump, target

    def load(self, conn: psycopg.Connection, progress: Progress | None,
             parallel: PgTarget | None = None) -> tuple[dict[str, int], list[str]]:
        failure = psql_load(self.target, self.dump.dump)
        if failure:
            raise UsageError(f"psql could not load {DUMP} into {self.target.label} (nothing was changed): {failure}")
        return self.counts(), []


def _qualified(name: str) -> str:
    schema, _, rel = name.partition(".")
    return f"{quote_ident(schema)}.{quote_ident(rel)}"


def _sql_only(script: str) -> str:
    """A pg_restore section without psql's meta-commands (``\\restrict``), for the server."""
    return "".join(line + "\n" for line in script.splitlines() if not line.startswith("\\"))


def restore_to_postgres(repo, source: str | os.PathLike, url: str, *, components: list[str],
                        tables: Callable[[dict], list[str] | None], files_dir: str | os.PathLike | None = None,
                        dry_run: bool = False, progress: Progress | None = None):
    """Restore ``source`` into the PostgreSQL database at ``url``; config and logs, being files,
    go to ``files_dir``.  ``tables(config)`` gives the tables a selective restore replaces (None: all)."""
    from . import RestoreResult, _plan_files, _write_files
    started = time.perf_counter()
    db = target_database(url)
    file_parts = [c for c in components if c in ("config", "logs")]
    if file_parts and files_dir is None:
        raise UsageError(f"{' and '.join(file_parts)} are files: give --files-dir for them "
                         "(the target is a PostgreSQL database)")
    origin = open_source(repo, source)
    kind = "folder" if isinstance(origin, FolderSource) else "snapshot"
    result = RestoreResult(db.label, origin.id, components, source=f"{kind} {origin.label}", dry_run=dry_run)
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
