"""Load an SQLite agent database into PostgreSQL with Mirix's PostgreSQL schema.

Rows go in with COPY (text format, built here from SQLite values, see
``values``), between the schema's pre-data and post-data sections so indexes and
foreign keys are built once, after the rows.  The caller owns the transaction:
a restore loads into staging tables inside its own.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import psycopg
from psycopg import sql

from ..errors import PgPrerequisite
from ..mirix_schema.postgres import Column, PgSchema, Table, pg_schema_from_sqlite, quote_ident
from ..sqlite_uri import sqlite_uri
from .values import CannotCarry, copy_escape, decode_sqlite_embedding, padded, vector_text

_BATCH_BYTES = 4 << 20


@dataclass
class LoadResult:
    rows: dict[str, int] = field(default_factory=dict)
    not_carried: list[str] = field(default_factory=list)


def open_sqlite_readonly(path: str) -> sqlite3.Connection:
    return sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise CannotCarry("a text column holds bytes that are not UTF-8") from None
    return copy_escape(str(value))


def _vector(value: object) -> str:
    if isinstance(value, (bytes, str)) and not value:
        raise CannotCarry("an embedding is empty")
    return vector_text(padded(decode_sqlite_embedding(value)))  # type: ignore[arg-type]


def _boolean(value: object) -> str:
    if isinstance(value, str) and value.lower() in ("t", "f", "true", "false"):
        return value[0].lower()
    if isinstance(value, (int, float)):
        return "t" if value else "f"
    raise CannotCarry(f"{value!r} is not a boolean")


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CannotCarry(f"{value!r} is not a number")
    return repr(value) if isinstance(value, float) else str(value)


def _bytea(value: object) -> str:
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return "\\\\x" + data.hex()


def converter(column: Column) -> Callable[[object], str]:
    """SQLite value -> COPY text field for a PostgreSQL column of Mirix's schema."""
    t = column.pg_type
    if column.is_vector:
        return _vector
    if t == "boolean":
        return _boolean
    if t in ("integer", "bigint", "double precision"):
        return _number
    if t == "bytea":
        return _bytea
    return _text


def create_extensions(conn: psycopg.Connection, schema: PgSchema) -> list[str]:
    """Create the schema's extensions the server has; a missing required one is an error,
    a missing optional one is returned (to be listed as not carried)."""
    missing = []
    for ext in schema.extensions:
        available = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = %s)",
                                 (ext,)).fetchone()[0]
        if available:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
        elif ext in schema.required_extensions:
            raise PgPrerequisite(f"extension {ext} is not installed on the PostgreSQL server; "
                                 "the embedding columns need it")
        else:
            missing.append(f"extension {ext} (not available on the target server; no column uses it)")
    return missing


def create_section(conn: psycopg.Connection, statements: Iterable[str]) -> None:
    for statement in statements:
        conn.execute(statement)  # type: ignore[arg-type]  # schema text we generated


def copy_table(sconn: sqlite3.Connection, conn: psycopg.Connection, table: Table,
               target: Optional[str] = None, progress: Callable[[int], None] | None = None) -> int:
    """COPY every row of SQLite ``table`` into PostgreSQL ``target`` (default: same name)."""
    present = {r[1] for r in sconn.execute(f"PRAGMA table_info({quote_ident(table.name)})")}
    columns = [c for c in table.columns if c.name in present]
    convert = [converter(c) for c in columns]
    pk_at = [i for i, c in enumerate(columns) if c.name in table.primary_key]
    select = "SELECT " + ", ".join(quote_ident(c.name) for c in columns) + f" FROM {quote_ident(table.name)}"
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(target) if target else sql.SQL("public.") + sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
    )
    count = 0
    with conn.cursor() as cur, cur.copy(copy) as cp:
        batch: list[str] = []
        size = 0
        for row in sconn.execute(select):
            try:
                line = "\t".join("\\N" if v is None else f(v) for f, v in zip(convert, row)) + "\n"
            except CannotCarry as exc:
                key = ", ".join(str(row[i]) for i in pk_at) or f"#{count + 1}"
                raise CannotCarry(f"{table.name} row {key}: {exc}") from None
            batch.append(line)
            size += len(line)
            count += 1
            if size >= _BATCH_BYTES:
                cp.write("".join(batch).encode("utf-8"))
                if progress:
                    progress(size)
                batch, size = [], 0
        if batch:
            cp.write("".join(batch).encode("utf-8"))
            if progress:
                progress(size)
    return count


def load_sqlite_database(sqlite_path: str, conn: psycopg.Connection, *,
                         schema: PgSchema | None = None,
                         progress: Callable[[int], None] | None = None) -> LoadResult:
    """Create Mirix's PostgreSQL schema in ``conn``'s (empty) database and load every row.

    Runs in the caller's transaction; nothing is committed here.
    """
    sconn = open_sqlite_readonly(sqlite_path)
    try:
        schema = schema or pg_schema_from_sqlite(sconn)
        conn.execute("SET LOCAL TimeZone = 'UTC'")  # SQLite's naive timestamps are UTC
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        result = LoadResult(not_carried=list(schema.not_carried))
        result.not_carried += create_extensions(conn, schema)
        create_section(conn, schema.pre_data)
        for table in schema.tables:
            result.rows[table.name] = copy_table(sconn, conn, table, progress=progress)
        create_section(conn, schema.post_data)
        return result
    finally:
        sconn.close()
