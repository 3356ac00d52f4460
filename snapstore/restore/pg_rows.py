"""Where the rows of a restore into PostgreSQL come from, one class per kind of source.

Each gives the table names and columns, fills a staging table (``copy_into``, for
``pg_stage``) and loads a whole empty database (``load``):

* ``SqliteRows`` -- an SQLite agent database, converted to Mirix's PostgreSQL schema;
* ``CaptureRows`` -- a PostgreSQL snapshot: its stored COPY text goes back unparsed;
* ``DumpRows`` -- a PostgreSQL backup folder whose snapshot is elsewhere: its dump's COPY
  blocks, or the dump itself loaded by psql.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql

from ..errors import UsageError
from ..folder.layout import DUMP
from ..migrate.sqlite_to_pg import copy_table, load_sqlite_database, open_sqlite_readonly
from ..mirix_schema.postgres import Table, pg_schema_from_sqlite, quote_ident
from ..sources.postgres.connect import PgTarget, psql_load
from ..sources.postgres.reader import PgCapture
from . import pg_parallel

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

    def other_tables(self) -> list[str]:
        return []

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

    def other_tables(self) -> list[str]:
        """Tables outside schema ``public``."""
        return [t.key for t in self.capture.tables() if t.schema != "public"]

    def column_names(self, table: str) -> list[str]:
        return [c for c, _ in self.tables[table].columns]

    def counts(self) -> dict[str, int]:
        return {name: t.row_count for name, t in self.tables.items()}

    def copy_into(self, conn: psycopg.Connection, table: Table, stage: str, columns: list[str]) -> int:
        return self._copy(conn, sql.Identifier(stage), self.tables[table.name], None)

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
