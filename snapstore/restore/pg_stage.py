"""Replace some tables' rows in a live PostgreSQL database: stage, delete, upsert -- one transaction.

The snapshot's rows are COPYed into temporary tables first; then, per table, rows
whose key is not staged are deleted and staged rows are upserted (``ON CONFLICT
… DO UPDATE … WHERE … IS DISTINCT FROM``), so unchanged rows are not even
rewritten.  DELETE and INSERT take only ROW EXCLUSIVE on the tables and locks on
the rows they touch: the agent's other tables, and readers of these, carry on.
Nothing is TRUNCATEd; a cascade from a deleted row happens only where the
schema says ON DELETE CASCADE, as it would for the application.
Deletes run children first, upserts parents first (foreign-key order).
"""
from __future__ import annotations

from typing import Protocol

import psycopg
from psycopg import sql

from ..mirix_schema.postgres import Column, Table


class StagedRows(Protocol):
    def column_names(self, table: str) -> list[str]: ...

    def copy_into(self, conn: psycopg.Connection, table: Table, stage: str, columns: list[str]) -> int: ...


def introspect(conn: psycopg.Connection) -> dict[str, Table]:
    """The ordinary tables of schema public with their columns' types and primary keys."""
    rows = conn.execute("""
        SELECT c.relname,
               (SELECT array_agg(ARRAY[a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text]
                                 ORDER BY a.attnum)
                  FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
               (SELECT array_agg(a.attname ORDER BY k.ord)
                  FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = c.oid AND i.indisprimary)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                           AND d.objid = c.oid AND d.deptype = 'e')""").fetchall()
    return {name: Table(name, [Column(n, t, nn == "true", "") for n, t, nn in (cols or [])], list(pk or []))
            for name, cols, pk in rows}


def fk_order(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """``tables`` with every referenced table before the tables referencing it."""
    edges = conn.execute("""
        SELECT src.relname, dst.relname FROM pg_constraint k
          JOIN pg_class src ON src.oid = k.conrelid JOIN pg_class dst ON dst.oid = k.confrelid
          JOIN pg_namespace n ON n.oid = src.relnamespace
         WHERE k.contype = 'f' AND n.nspname = 'public'""").fetchall()
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in edges:
        if child in parents and parent in parents and child != parent:
            parents[child].add(parent)
    ordered: list[str] = []
    while parents:
        ready = sorted(t for t, ps in parents.items() if not ps - set(ordered))
        if not ready:  # a cycle: keep the given order for the rest
            ready = [t for t in tables if t in parents]
        for t in ready:
            ordered.append(t)
            del parents[t]
    return ordered


def _ids(names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _comparable(column: Column, alias: str) -> sql.Composable:
    """json has no equality operator; its text is kept verbatim, so compare the text."""
    ref = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column.name))
    return sql.SQL("{}::text").format(ref) if column.pg_type == "json" else ref


def stage(conn: psycopg.Connection, table: Table, number: int) -> str:
    name = f"snapstore_stage_{number}"
    conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE public.{} INCLUDING DEFAULTS) ON COMMIT DROP").format(
        sql.Identifier(name), sql.Identifier(table.name)))
    return name


def delete_missing(conn: psycopg.Connection, table: Table, stage_name: str) -> int:
    """Delete the rows whose key the snapshot does not have (all rows of a table without a key)."""
    target = sql.SQL("public.{}").format(sql.Identifier(table.name))
    if not table.primary_key:
        return conn.execute(sql.SQL("DELETE FROM {}").format(target)).rowcount
    pk = table.primary_key
    match = sql.SQL(" AND ").join(
        sql.SQL("s.{0} = t.{0}").format(sql.Identifier(c)) for c in pk)
    return conn.execute(sql.SQL("DELETE FROM {} AS t WHERE NOT EXISTS (SELECT 1 FROM {} AS s WHERE {})").format(
        target, sql.Identifier(stage_name), match)).rowcount


def upsert(conn: psycopg.Connection, table: Table, stage_name: str, columns: list[str]) -> tuple[int, int]:
    """(inserted, updated): staged rows in; a row already equal is left alone."""
    target = sql.SQL("public.{}").format(sql.Identifier(table.name))
    cols = _ids(columns)
    if not table.primary_key:
        n = conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            target, cols, cols, sql.Identifier(stage_name))).rowcount
        return n, 0
    others = [table.column(c) for c in columns if c not in table.primary_key]
    if others:
        assign = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in others)
        old = sql.SQL(", ").join(_comparable(c, "t") for c in others)
        new = sql.SQL(", ").join(_comparable(c, "excluded") for c in others)
        action = sql.SQL("DO UPDATE SET {} WHERE ROW({}) IS DISTINCT FROM ROW({})").format(assign, old, new)
    else:
        action = sql.SQL("DO NOTHING")
    query = sql.SQL(
        "WITH done AS (INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) {} RETURNING (xmax = 0) AS new) "
        "SELECT count(*) FILTER (WHERE new), count(*) FILTER (WHERE NOT new) FROM done").format(
        target, cols, cols, sql.Identifier(stage_name), _ids(table.primary_key), action)
    inserted, updated = conn.execute(query).fetchone()
    return inserted, updated


def replace_rows(conn: psycopg.Connection, source: StagedRows, tables: dict[str, Table],
                 names: list[str]) -> dict[str, dict[str, int]]:
    """Make ``names`` hold exactly the source's rows, in the caller's transaction.

    Counts follow the SQLite restore's: a changed row is one deleted and one inserted."""
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    staged: dict[str, tuple[str, list[str]]] = {}
    for number, name in enumerate(names):
        columns = source.column_names(name)
        stage_name = stage(conn, tables[name], number)
        source.copy_into(conn, tables[name], stage_name, columns)
        staged[name] = (stage_name, columns)
    order = fk_order(conn, names)
    counts = {name: {"deleted": 0, "inserted": 0} for name in names}
    for name in reversed(order):
        counts[name]["deleted"] = delete_missing(conn, tables[name], staged[name][0])
    for name in order:
        inserted, updated = upsert(conn, tables[name], *staged[name])
        counts[name]["deleted"] += updated
        counts[name]["inserted"] = inserted + updated
    return counts
