"""Write a PostgreSQL agent's rows (COPY text) into a new SQLite database in Mirix's SQLite form.

Known Mirix tables get Mirix's SQLite schema (the sample agent's DDL: FTS5
tables and their triggers, so full-text search is rebuilt as rows go in);
columns the PostgreSQL table has beyond it are added, and any other table is
created from its PostgreSQL columns.  Values become what Mirix's ORM writes on
SQLite: base64 float32 embeddings, naive-UTC timestamp text, JSON text as stored,
0/1 booleans.  What SQLite cannot hold -- extensions, GIN and expression
indexes, sequences, tables outside schema ``public`` -- is returned as a list,
never dropped silently.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from ..mirix_schema.postgres import quote_ident
from ..sample_agent import schema as mirix_sqlite
from ..export.postgres_content import copy_field, copy_rows
from .values import CannotCarry, encode_sqlite_embedding, parse_vector_text, sqlite_timestamp

_BATCH_ROWS = 2000


class PgTable(Protocol):
    schema: str
    name: str
    columns: list[tuple[str, str]]
    primary_key: list[str]


@dataclass
class ConvertResult:
    rows: dict[str, int] = field(default_factory=dict)
    not_carried: list[str] = field(default_factory=list)


def sqlite_type_for(pg_type: str) -> str:
    t = pg_type.lower()
    if t.startswith("vector"):
        return "TEXT"  # Mirix's CommonVector: base64 float32
    if t in ("json", "jsonb"):
        return "JSON"
    if t.startswith("timestamp"):
        return "DATETIME"
    if t == "boolean":
        return "BOOLEAN"
    if t in ("integer", "smallint"):
        return "INTEGER"
    if t == "bigint":
        return "BIGINT"
    if t in ("double precision", "real"):
        return "FLOAT"
    if t == "bytea":
        return "BLOB"
    return "VARCHAR"


def _value_converter(pg_type: str) -> Callable[[str], object]:
    t = pg_type.lower()
    if t.startswith("vector"):
        return lambda v: encode_sqlite_embedding(parse_vector_text(v))
    if t.startswith("timestamp"):
        zoned = "with time zone" in t
        return lambda v: sqlite_timestamp(v, zoned)
    if t == "boolean":
        return lambda v: 1 if v == "t" else 0
    if t in ("integer", "smallint", "bigint"):
        return int
    if t in ("double precision", "real"):
        return float
    if t == "bytea":
        return lambda v: bytes.fromhex(v[2:]) if v.startswith("\\x") else v.encode("utf-8")
    return lambda v: v


_NATIVE_TEXT = re.compile(r"(character varying|character|text|json|jsonb|date|uuid|numeric)(\([\d, ]+\))?")


def _create_mirix_table(conn: sqlite3.Connection, table: PgTable) -> bool:
    """Mirix's own SQLite DDL for a known table whose every column the PostgreSQL table has."""
    body = mirix_sqlite.TABLES.get(table.name)
    if body is None:
        return False
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute(f"CREATE TABLE {quote_ident(table.name)} ({body})")
        wanted = [r[1] for r in probe.execute(f"PRAGMA table_info({quote_ident(table.name)})")]
    finally:
        probe.close()
    present = {c for c, _ in table.columns}
    if not set(wanted) <= present:
        return False
    conn.execute(f"CREATE TABLE {quote_ident(table.name)} ({body}\n)")
    for column, pg_type in table.columns:
        if column not in wanted:
            conn.execute(f"ALTER TABLE {quote_ident(table.name)} ADD COLUMN {quote_ident(column)} "
                         f"{sqlite_type_for(pg_type)}")
    return True


def _create_generic_table(conn: sqlite3.Connection, table: PgTable) -> None:
    cols = [f"{quote_ident(c)} {sqlite_type_for(t)}" for c, t in table.columns]
    if table.primary_key:
        cols.append(f"PRIMARY KEY ({', '.join(quote_ident(c) for c in table.primary_key)})")
    conn.execute(f"CREATE TABLE {quote_ident(table.name)} ({', '.join(cols)})")


def _mirix_extras(conn: sqlite3.Connection, names: set[str]) -> None:
    """Mirix's SQLite indexes and FTS5 tables (with their triggers) for the tables present."""
    for statement in mirix_sqlite.INDEXES:
        table = re.search(r" ON (\w+) ", statement).group(1)
        if table in names:
            conn.execute(statement)
    for table, columns in mirix_sqlite.FTS_COLUMNS.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({quote_ident(table)})")}
        if table in names and set(columns) <= have:
            for statement in mirix_sqlite.fts_statements(table, columns):
                conn.execute(statement)


def _insert_rows(conn: sqlite3.Connection, table: PgTable, blocks: Iterable[bytes]) -> int:
    convert = [_value_converter(t) for _, t in table.columns]
    cols = ", ".join(quote_ident(c) for c, _ in table.columns)
    insert = f"INSERT INTO {quote_ident(table.name)} ({cols}) VALUES ({', '.join('?' * len(table.columns))})"
    pk_at = [i for i, (c, _) in enumerate(table.columns) if c in table.primary_key]
    count, batch = 0, []
    for raw in copy_rows(iter(blocks)):
        fields = [copy_field(f) for f in raw]
        if len(fields) != len(convert):
            raise CannotCarry(f"{table.name}: a row has {len(fields)} fields, the table {len(convert)} columns")
        try:
            batch.append([None if v is None else f(v) for f, v in zip(convert, fields)])
        except (CannotCarry, ValueError) as exc:
            key = ", ".join(str(fields[i]) for i in pk_at) or f"#{count + 1}"
            raise CannotCarry(f"{table.name} row {key}: {exc}") from None
        count += 1
        if len(batch) >= _BATCH_ROWS:
            conn.executemany(insert, batch)
            batch = []
    if batch:
        conn.executemany(insert, batch)
    return count


def _metered(blocks: Iterable[bytes], progress: Callable[[int], None] | None) -> Iterable[bytes]:
    for block in blocks:
        if progress:
            progress(len(block))
        yield block


def pg_only_objects(post_data_sql: str, extensions: Iterable[str], sequences: Iterable[str]) -> list[str]:
    """What a PostgreSQL schema has that SQLite cannot hold, one line each."""
    out = [f"extension {e}" + (" (embeddings are kept as base64 float32 text)" if e == "vector" else "")
           for e in extensions if e != "plpgsql"]
    for name, how in re.findall(r"CREATE (?:UNIQUE )?INDEX (\S+) ON \S+ USING (\w+) \(", post_data_sql):
        expression = re.search(rf"INDEX {re.escape(name)} ON \S+ USING \w+ \(\(", post_data_sql)
        if how != "btree" or expression:
            out.append(f"index {name} ({how}{', on an expression' if expression else ''})")
    out += [f"sequence {s}" for s in sequences]
    return out


def write_sqlite(dest: Path, tables: list[PgTable], copy_data: Callable[[PgTable], Iterable[bytes]],
                 progress: Callable[[int], None] | None = None) -> ConvertResult:
    """A new SQLite database at ``dest`` holding every ``public`` table's rows."""
    result = ConvertResult()
    conn = sqlite3.connect(dest, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN")
        public = [t for t in tables if t.schema == "public"]
        result.not_carried += [f"table {t.schema}.{t.name} (outside schema public)" for t in tables
                               if t.schema != "public"]
        for table in public:
            if not _create_mirix_table(conn, table):
                _create_generic_table(conn, table)
            odd = [f"{c} {t}" for c, t in table.columns if sqlite_type_for(t) == "VARCHAR" and not _NATIVE_TEXT.fullmatch(t)]
            result.not_carried += [f"column {table.name}.{o}: kept as its PostgreSQL text" for o in odd]
        _mirix_extras(conn, {t.name for t in public})
        for table in public:
            result.rows[table.name] = _insert_rows(conn, table, _metered(copy_data(table), progress))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return result
