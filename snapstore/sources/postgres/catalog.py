"""What a capture asks the catalog, inside the shared snapshot: tables, sequences, extensions.

Objects that belong to an extension are left out: ``CREATE EXTENSION`` in the
schema section brings them back (as ``pg_dump`` does).
"""
from __future__ import annotations

import hashlib

import psycopg

from .layout import TableInfo, quote_ident

_USER_NAMESPACE = ("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%' "
                   "AND n.nspname NOT LIKE 'pg\\_temp%%'")
_NOT_EXTENSION_MEMBER = ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
                         "AND d.objid = c.oid AND d.deptype = 'e')")


def tables(conn: psycopg.Connection) -> list[TableInfo]:
    rows = conn.execute(f"""
        SELECT c.oid, n.nspname, c.relname,
               (SELECT array_agg(ARRAY[a.attname, format_type(a.atttypid, a.atttypmod)] ORDER BY a.attnum)
                  FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),
               (SELECT array_agg(a.attname ORDER BY k.ord)
                  FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = c.oid AND i.indisprimary)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND {_USER_NAMESPACE} AND {_NOT_EXTENSION_MEMBER}
         ORDER BY n.nspname, c.relname""").fetchall()
    return [TableInfo(schema, name, [tuple(c) for c in (cols or [])], list(pk or []))
            for _oid, schema, name, cols, pk in rows]


def sequences(conn: psycopg.Connection) -> dict[str, dict]:
    """``schema.name`` -> ``{"last_value", "is_called"}`` (what ``setval`` needs).

    Sequences are not transactional: like ``pg_dump`` this reads their current
    value, which is at least the value any row of the snapshot holds."""
    names = conn.execute(f"""
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'S' AND {_USER_NAMESPACE} AND {_NOT_EXTENSION_MEMBER}
         ORDER BY 1, 2""").fetchall()
    out = {}
    for schema, name in names:
        last, called = conn.execute(
            f"SELECT last_value, is_called FROM {quote_ident(schema)}.{quote_ident(name)}").fetchone()
        out[f"{schema}.{name}"] = {"last_value": int(last), "is_called": bool(called)}
    return out


def extensions(conn: psycopg.Connection) -> list[dict]:
    rows = conn.execute("""
        SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname <> 'plpgsql' ORDER BY 1""").fetchall()
    return [{"name": name, "version": version, "schema": schema} for name, version, schema in rows]


def server(conn: psycopg.Connection) -> dict:
    version, num, encoding, dbname = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
        "pg_encoding_to_char(encoding), datname FROM pg_database WHERE datname = current_database()").fetchone()
    return {"server_version": version, "server_version_num": num, "encoding": encoding, "database": dbname}


# Catalog rows pg_dump never dumps that other sessions create as a side effect: a backend's
# temporary namespaces appear with its first temporary table and stay.
_NOT_DUMPED = {"pg_namespace": r" WHERE nspname !~ '^pg_(toast_)?temp_'"}


def schema_fingerprint(conn: psycopg.Connection) -> str:
    """A digest that changes whenever the schema may have: the row versions (``xmin``,
    ``ctid``) of every database-local system catalog.  Any DDL inserts, updates or deletes
    catalog rows, each with a new ``xmin``; VACUUM and ANALYZE update ``pg_class`` in place
    (same ``xmin``) and write statistics (left out), and temporary namespaces are left out.  When it equals the parent's, the
    parent's schema sections are the schema, and ``pg_dump`` need not run (a false alarm —
    e.g. a temporary table of another session — only costs a dump)."""
    names = [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r' "
        "AND NOT c.relisshared AND c.relname NOT IN ('pg_statistic', 'pg_statistic_ext_data', 'pg_largeobject') "
        "ORDER BY 1")]
    parts = " UNION ALL ".join(
        f"SELECT {i}, count(*), sum(hashtextextended(xmin::text || ctid::text, {i})::numeric) FROM pg_catalog.{name}"
        + _NOT_DUMPED.get(name, "") for i, name in enumerate(names))
    rows = conn.execute(f"SELECT string_agg(concat_ws(':', n, c, s), ',' ORDER BY n) FROM ({parts}) t(n, c, s)"
                        ).fetchone()[0]
    version = conn.execute("SELECT current_setting('server_version_num')").fetchone()[0]
    return hashlib.blake2b(f"{version}|{','.join(names)}|{rows}".encode(), digest_size=16).hexdigest()
