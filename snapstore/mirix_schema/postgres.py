"""Mirix's PostgreSQL schema, derived from an SQLite agent's own tables.

Mirix creates its PostgreSQL tables with ``Base.metadata.create_all`` from the same
ORM classes it uses on SQLite; only the column types differ (``mirix/orm/*.py``):
``String`` is ``character varying``, ``JSON`` is ``json`` (not ``jsonb``: the text
is kept verbatim), embeddings are pgvector ``vector(4096)`` instead of base64
float32 text, ``created_at``/``updated_at`` are ``timestamptz`` and other
``DateTime`` columns are ``timestamp``.  Deriving the PostgreSQL tables from the
SQLite ones keeps table and column names identical by construction, for the
sample agent and for any agent's database a snapshot holds.

On top of the columns, Mirix's PostgreSQL-only parts: the ``filter_tags json``
column of memory tables, blocks and messages, the ``vector``/``pg_trgm``
(and ``uuid-ossp`` when the server has it) extensions, and the ORM's indexes:
GIN on ``(filter_tags::jsonb)``, B-trees on organization and time, and episodic
memory's three ``to_tsvector('english', …)`` GIN indexes that replace SQLite's
FTS5 tables.  The schema comes in pg_dump's sections: ``pre_data`` (extensions,
tables, primary keys) before the rows, ``post_data`` (unique constraints,
foreign keys, indexes) after them, which is how a load stays fast.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

MAX_EMBEDDING_DIM = 4096
"""Mirix's ``MAX_EMBEDDING_DIM``: every vector is zero-padded to this length."""

MIRIX_EXTENSIONS = ("vector", "pg_trgm", "uuid-ossp")
"""Mirix's init.sql.  Only ``vector`` is needed (by the embedding columns); the other two are
created where the server has them (no column, default or index of Mirix's uses them)."""

FILTER_TAG_TABLES = (
    "episodic_memory", "semantic_memory", "procedural_memory", "resource_memory",
    "knowledge_vault", "block", "messages",
)
"""Tables whose Mirix ORM class has ``filter_tags = mapped_column(JSON)``."""

_ORG_TIME_COLUMN = {
    "episodic_memory": "occurred_at", "semantic_memory": "created_at",
    "procedural_memory": "created_at", "resource_memory": "created_at",
    "knowledge_vault": "created_at",
}
_EPISODIC_FTS = (
    ("ix_episodic_memory_summary_fts", "to_tsvector('english', summary)", "summary IS NOT NULL"),
    ("ix_episodic_memory_details_fts", "to_tsvector('english', details)", "details IS NOT NULL"),
    ("ix_episodic_memory_combined_fts",
     "to_tsvector('english', coalesce(summary, '') || ' ' || coalesce(details, ''))", None),
)
_MESSAGE_INDEXES = (
    ("ix_messages_agent_created_at", ("agent_id", "created_at")),
    ("ix_messages_created_at", ("created_at", "id")),
    ("ix_messages_client_user", ("client_id", "user_id")),
    ("ix_messages_agent_client_user", ("agent_id", "client_id", "user_id")),
    ("ix_messages_agent_user_created_at", ("agent_id", "user_id", "created_at", "id")),
)
_TZ_COLUMNS = ("created_at", "updated_at")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    not_null: bool
    sqlite_type: str
    default: str | None = None

    @property
    def is_vector(self) -> bool:
        return self.pg_type.startswith("vector")


@dataclass
class Table:
    name: str
    columns: list[Column]
    primary_key: list[str]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class PgSchema:
    """A Mirix PostgreSQL schema in pg_dump's sections, plus what SQLite had that it lacks."""

    tables: list[Table]
    extensions: list[str] = field(default_factory=list)
    required_extensions: list[str] = field(default_factory=list)
    pre_data: list[str] = field(default_factory=list)
    post_data: list[str] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    def sql(self) -> str:
        """The whole schema as one script (extensions first, then tables, then indexes)."""
        extensions = [f"CREATE EXTENSION IF NOT EXISTS {quote_ident(e)}" for e in self.extensions]
        return "".join(s + ";\n" for s in extensions + self.pre_data + self.post_data)


def pg_type_for(column: str, sqlite_type: str) -> str:
    """The PostgreSQL type Mirix's ORM gives a column that SQLite declares as ``sqlite_type``."""
    declared = sqlite_type.upper()
    if column.endswith("_embedding"):
        return f"vector({MAX_EMBEDDING_DIM})"
    if declared == "JSON":
        return "json"
    if declared in ("DATETIME", "TIMESTAMP"):
        return "timestamp with time zone" if column in _TZ_COLUMNS else "timestamp without time zone"
    if declared == "BOOLEAN":
        return "boolean"
    if declared == "BIGINT":
        return "bigint"
    if "INT" in declared:
        return "integer"
    if declared in ("FLOAT", "REAL", "DOUBLE", "DOUBLE PRECISION"):
        return "double precision"
    if declared in ("BLOB", "BINARY"):
        return "bytea"
    if declared == "DATE":
        return "date"
    return "character varying"


def _sqlite_tables(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """(ordinary tables, SQLite-only objects left behind: FTS tables and triggers)."""
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY rowid"
    ).fetchall()
    virtual = {name for kind, name, sql in rows if kind == "table" and sql and sql.upper().startswith("CREATE VIRTUAL")}
    shadow = {name for kind, name, _ in rows if kind == "table" and any(name.startswith(v + "_") for v in virtual)}
    tables = [name for kind, name, _ in rows if kind == "table" and name not in virtual | shadow]
    left = [f"SQLite full-text table {v} (PostgreSQL uses to_tsvector indexes instead)" for v in sorted(virtual)]
    left += [f"SQLite trigger {name}" for kind, name, _ in rows
             if kind == "trigger" and not any(name.startswith(v + "_") for v in virtual)]
    return tables, left


def _table_from_sqlite(conn: sqlite3.Connection, name: str) -> Table:
    info = conn.execute(f"PRAGMA table_info({quote_ident(name)})").fetchall()
    columns = []
    for _, col, declared, not_null, default, pk in info:
        pg_type = pg_type_for(col, declared or "")
        columns.append(Column(col, pg_type, bool(not_null) or pk > 0, declared or "", _pg_default(default, pg_type)))
    pk = [c[1] for c in sorted((c for c in info if c[5] > 0), key=lambda c: c[5])]
    if name in FILTER_TAG_TABLES and not any(c.name == "filter_tags" for c in columns):
        columns.append(Column("filter_tags", "json", False, "JSON"))
    return Table(name, columns, pk)


def _pg_default(sqlite_default: str | None, pg_type: str) -> str | None:
    """Mirix's server defaults: ``now()`` for timestamps, ``false`` for flags, literals as they are."""
    if sqlite_default is None:
        return None
    d = sqlite_default.strip().strip("()").strip()
    if d.upper() in ("CURRENT_TIMESTAMP", "DATETIME('NOW')"):
        return "now()"
    if pg_type == "boolean" and d in ("0", "1"):
        return "false" if d == "0" else "true"
    if re.fullmatch(r"-?\d+(\.\d+)?|'(?:[^']|'')*'", d):
        return d
    return None


def _column_sql(c: Column) -> str:
    default = f" DEFAULT {c.default}" if c.default else ""
    return f"    {quote_ident(c.name)} {c.pg_type}{default}{' NOT NULL' if c.not_null else ''}"


def _create_table(table: Table) -> str:
    lines = [_column_sql(c) for c in table.columns]
    if table.primary_key:
        cols = ", ".join(quote_ident(c) for c in table.primary_key)
        lines.append(f"    CONSTRAINT {quote_ident(table.name + '_pkey')} PRIMARY KEY ({cols})")
    return f"CREATE TABLE public.{quote_ident(table.name)} (\n" + ",\n".join(lines) + "\n)"


def _constraints(conn: sqlite3.Connection, table: Table) -> list[str]:
    """Unique constraints and foreign keys, as ALTER TABLE statements (post-data)."""
    out: list[str] = []
    q = quote_ident
    for _, index_name, unique, origin, _partial in conn.execute(f"PRAGMA index_list({q(table.name)})"):
        if unique and origin == "u":
            cols = [r[2] for r in conn.execute(f"PRAGMA index_info({q(index_name)})")]
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table.name,)).fetchone()[0]
            m = re.search(r"CONSTRAINT\s+(\w+)\s+UNIQUE\s*\(([^)]*)\)", sql, re.I)
            name = m.group(1) if m else f"{table.name}_{'_'.join(cols)}_key"
            out.append(f"ALTER TABLE public.{q(table.name)} ADD CONSTRAINT {q(name)} "
                       f"UNIQUE ({', '.join(q(c) for c in cols)})")
    fks: dict[int, list] = {}
    for row in conn.execute(f"PRAGMA foreign_key_list({q(table.name)})"):
        fks.setdefault(row[0], []).append(row)
    for fk_id, rows in sorted(fks.items()):
        parent = rows[0][2]
        src = [r[3] for r in rows]
        dst = [r[4] for r in rows]
        on_delete = rows[0][6]
        name = f"{table.name}_{'_'.join(src)}_fkey"
        clause = f" ON DELETE {on_delete}" if on_delete and on_delete != "NO ACTION" else ""
        out.append(
            f"ALTER TABLE public.{q(table.name)} ADD CONSTRAINT {q(name)} FOREIGN KEY "
            f"({', '.join(q(c) for c in src)}) REFERENCES public.{q(parent)} "
            f"({', '.join(q(c) for c in dst)}){clause}"
        )
    return out


def _sqlite_indexes(conn: sqlite3.Connection, table: Table) -> list[str]:
    """Plain column indexes the SQLite agent has (names kept), skipping Mirix's *_sqlite ones."""
    out = []
    for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT NULL", (table.name,)
    ):
        if name.endswith("_sqlite"):
            continue
        m = re.match(r"CREATE\s+(UNIQUE\s+)?INDEX\s+\S+\s+ON\s+\S+\s*\((.*)\)\s*$", sql, re.I | re.S)
        if not m:
            continue
        cols = [c.strip().strip('"') for c in m.group(2).split(",")]
        if not all(table.column(c) for c in cols):
            continue
        unique = "UNIQUE " if m.group(1) else ""
        out.append(f"CREATE {unique}INDEX {quote_ident(name)} ON public.{quote_ident(table.name)} "
                   f"USING btree ({', '.join(quote_ident(c) for c in cols)})")
    return out


def _mirix_indexes(table: Table) -> list[str]:
    """The PostgreSQL-only indexes of Mirix's ORM ``__table_args__`` whose columns exist."""
    t, q = table.name, quote_ident
    qt = f"public.{q(t)}"
    has = table.column
    out: list[str] = []
    if t in _ORG_TIME_COLUMN and has("organization_id"):
        out.append(f"CREATE INDEX {q('ix_' + t + '_organization_id')} ON {qt} USING btree (organization_id)")
        when = _ORG_TIME_COLUMN[t]
        if has(when):
            short = "occurred_at" if when == "occurred_at" else "created_at"
            out.append(f"CREATE INDEX {q('ix_' + t + '_org_' + short)} ON {qt} USING btree (organization_id, {when})")
    if t in FILTER_TAG_TABLES and t != "messages" and has("filter_tags"):
        out.append(f"CREATE INDEX {q('ix_' + t + '_filter_tags_gin')} ON {qt} USING gin (((filter_tags)::jsonb))")
        if has("organization_id"):
            out.append(f"CREATE INDEX {q('ix_' + t + '_org_filter_scope')} ON {qt} "
                       "USING btree (organization_id, ((filter_tags ->> 'scope'::text)))")
    if t == "episodic_memory":
        for name, expr, where in _EPISODIC_FTS:
            cols = re.findall(r"\b(summary|details)\b", expr)
            if all(has(c) for c in cols):
                out.append(f"CREATE INDEX {q(name)} ON {qt} USING gin ({expr})" + (f" WHERE {where}" if where else ""))
    if t == "messages":
        for name, cols in _MESSAGE_INDEXES:
            if all(has(c) for c in cols):
                out.append(f"CREATE INDEX {q(name)} ON {qt} USING btree ({', '.join(cols)})")
    return out


def _dedupe_indexes(statements: list[str]) -> list[str]:
    """Mirix's own index wins over an SQLite index of the same name."""
    seen: dict[str, str] = {}
    for s in statements:
        m = re.match(r'CREATE (?:UNIQUE )?INDEX ("(?:[^"]|"")+"|\S+)', s)
        seen[m.group(1) if m else s] = s
    return list(seen.values())


def pg_schema_from_sqlite(conn: sqlite3.Connection) -> PgSchema:
    """The Mirix PostgreSQL schema for the tables of an SQLite agent database."""
    names, left = _sqlite_tables(conn)
    tables = [_table_from_sqlite(conn, n) for n in names]
    schema = PgSchema(tables, not_carried=left, extensions=list(MIRIX_EXTENSIONS))
    if any(c.is_vector for t in tables for c in t.columns):
        schema.required_extensions = ["vector"]
    schema.pre_data = [_create_table(t) for t in tables]
    for t in tables:
        schema.post_data += _constraints(conn, t)
    indexes: list[str] = []
    for t in tables:
        indexes += _sqlite_indexes(conn, t) + _mirix_indexes(t)
    schema.post_data += _dedupe_indexes(indexes)
    return schema


def sample_agent_schema() -> PgSchema:
    """The PostgreSQL schema of the sample agent (``snapstore sample-agent``)."""
    from snapstore.sample_agent.schema import create_schema

    conn = sqlite3.connect(":memory:")
    try:
        create_schema(conn)
        return pg_schema_from_sqlite(conn)
    finally:
        conn.close()
