"""Writing a snapshot's database into an SQLite target: whole, or table by table.

Whole restore into a new path materialises the file next to it and renames it
into place.  Into an existing database it goes through SQLite's online-backup
API, so connections the agent still holds see either the old or the new
database, never a mix, and a stale ``-wal`` can never be replayed onto the new
file.  Selective restore attaches the snapshot's database and, in one
transaction, replaces the chosen tables' rows (rowids kept), so triggers keep
FTS indexes in step and every other table is left alone.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import SourceError
from ..sqlite_uri import sqlite_uri

BUSY_TIMEOUT_S = 30.0


def _connect(path: Path, **params: object) -> sqlite3.Connection:
    """The target, through a URI (so ATTACH takes URIs too and no character of the path is
    read as URI syntax)."""
    conn = sqlite3.connect(sqlite_uri(path, **params), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute("PRAGMA schema_version").fetchone()  # opening is lazy: fail here, not later
    return conn


def table_names(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    rows = conn.execute(f"SELECT name, sql FROM {schema}.sqlite_master WHERE type='table' "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    virtual = [n for n, s in rows if s and s.upper().startswith("CREATE VIRTUAL")]
    return [n for n, s in rows if n not in virtual and not any(n.startswith(v + "_") for v in virtual)]


def columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA {schema}.table_info("{table}")')]


MAX_COMPARED_COLUMNS = 200  # two terms per column in one OR: SQLite caps expression depth at 1000


def _count(conn: sqlite3.Connection, sql: str) -> int:
    return conn.execute(sql).fetchone()[0]


def _rowid_name(conn: sqlite3.Connection, t: str, taken: set[str]) -> str | None:
    """How to name ``t``'s rowid on both sides: ``rowid`` unless a column took that name; None
    for a WITHOUT ROWID table (or one whose columns took every alias)."""
    for name in ("rowid", "_rowid_", "oid"):
        if name in taken:
            continue
        try:
            conn.execute(f'SELECT {name} FROM main."{t}" LIMIT 0')
            conn.execute(f'SELECT {name} FROM snap."{t}" LIMIT 0')
        except sqlite3.OperationalError:
            return None
        return name
    return None


def _diff_table(conn: sqlite3.Connection, t: str) -> dict[str, int]:
    """Rows of ``t`` that would go and come.  A row is matched by rowid and compared column by
    column, byte for byte and type for type: rowid lookups, where a set difference of whole
    rows would sort every row of both tables, embeddings included."""
    main_cols, snap_cols = columns(conn, "main", t), columns(conn, "snap", t)
    cols = [c for c in main_cols if c in set(snap_cols)]
    rid = _rowid_name(conn, t, {c.lower() for c in main_cols + snap_cols})
    if rid is None or len(cols) > MAX_COMPARED_COLUMNS:
        col_sql = ", ".join(([rid] if rid else []) + [f'"{c}"' for c in cols])
        return {"deleted": _count(conn, f'SELECT count(*) FROM (SELECT {col_sql} FROM main."{t}" '
                                        f'EXCEPT SELECT {col_sql} FROM snap."{t}")'),
                "inserted": _count(conn, f'SELECT count(*) FROM (SELECT {col_sql} FROM snap."{t}" '
                                         f'EXCEPT SELECT {col_sql} FROM main."{t}")')}
    differs = " OR ".join(f'a."{c}" IS NOT b."{c}" COLLATE BINARY OR typeof(a."{c}") != typeof(b."{c}")'
                          for c in cols) or "0"
    changed = _count(conn, f'SELECT count(*) FROM main."{t}" a JOIN snap."{t}" b ON a.{rid} = b.{rid} '
                           f'WHERE {differs}')
    gone = _count(conn, f'SELECT count(*) FROM main."{t}" a WHERE NOT EXISTS '
                        f'(SELECT 1 FROM snap."{t}" b WHERE b.{rid} = a.{rid})')
    new = _count(conn, f'SELECT count(*) FROM snap."{t}" b WHERE NOT EXISTS '
                       f'(SELECT 1 FROM main."{t}" a WHERE a.{rid} = b.{rid})')
    return {"deleted": gone + changed, "inserted": new + changed}


def diff_tables(conn: sqlite3.Connection, tables: list[str]) -> dict[str, dict[str, int]]:
    """Rows each table would lose and gain (the snapshot is attached as ``snap``); a changed
    row counts as one lost and one gained."""
    out = {}
    snap_tables = set(table_names(conn, "snap"))
    main_tables = set(table_names(conn, "main"))
    for t in tables:
        if t not in snap_tables and t not in main_tables:
            continue
        if t not in snap_tables:
            out[t] = {"deleted": _count(conn, f'SELECT count(*) FROM main."{t}"'), "inserted": 0}
        elif t not in main_tables:
            out[t] = {"deleted": 0, "inserted": _count(conn, f'SELECT count(*) FROM snap."{t}"')}
        else:
            out[t] = _diff_table(conn, t)
    return out


def same_schema(conn: sqlite3.Connection, tables: list[str] | None) -> bool:
    """Whether target (``main``) and snapshot (``snap``) define ``tables`` (None: the whole
    database, ``user_version`` included) alike: equal rows alone do not make a restore a no-op."""
    def schema(name: str) -> list[tuple]:
        rows = conn.execute(f"SELECT type, name, tbl_name, sql FROM {name}.sqlite_master").fetchall()
        rows = [r for r in rows if tables is None or r[2] in tables]
        extra = [] if tables is not None else [conn.execute(f"PRAGMA {name}.user_version").fetchone()]
        return sorted(rows, key=repr) + extra
    return schema("main") == schema("snap")


def _on_read_only_media(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def attach_snapshot(target: Path, snapshot_db: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """The target with the snapshot's database attached as ``snap``.  ``read_only`` (dry runs)
    opens the target read-only, live ``-wal`` content included; only where SQLite cannot do
    that (a WAL database on read-only media without its ``-shm``) is it opened immutable."""
    try:
        try:
            conn = _connect(target, mode="ro") if read_only else _connect(target)
        except sqlite3.OperationalError:
            if not (read_only and _on_read_only_media(target)):
                raise
            conn = _connect(target, mode="ro", immutable=1)
        conn.execute("ATTACH DATABASE ? AS snap", (sqlite_uri(snapshot_db, immutable=1),))
    except sqlite3.Error as exc:
        raise SourceError(f"restore target {target} is not a usable SQLite database: {exc}") from None
    return conn


def replace_tables(target: Path, snapshot_db: Path, tables: list[str]) -> dict[str, dict[str, int]]:
    """Replace the rows of ``tables`` in ``target`` with the snapshot's, in one transaction."""
    conn = attach_snapshot(target, snapshot_db)
    try:
        missing = [t for t in tables if t not in table_names(conn, "main")]
        if missing:
            raise SourceError(f"restore target {target} has no table {', '.join(missing)}")
        conn.execute("BEGIN IMMEDIATE")
        changes = {}
        try:
            for t in tables:
                snap_cols = set(columns(conn, "snap", t)) if t in table_names(conn, "snap") else set()
                cols = [c for c in columns(conn, "main", t) if c in snap_cols]
                deleted = conn.execute(f'DELETE FROM main."{t}"').rowcount
                inserted = 0
                if cols:
                    col_sql = ", ".join(f'"{c}"' for c in cols)
                    inserted = conn.execute(f'INSERT INTO main."{t}" (rowid, {col_sql}) '
                                            f'SELECT rowid, {col_sql} FROM snap."{t}"').rowcount
                changes[t] = {"deleted": deleted, "inserted": inserted}
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return changes
    finally:
        conn.close()


def copy_database(source_db: Path, target: Path) -> None:
    """Overwrite ``target`` with ``source_db`` through SQLite's online-backup API."""
    src = sqlite3.connect(sqlite_uri(source_db, immutable=1), uri=True)
    dst = None
    try:
        dst = _connect(target)
        src.backup(dst)
    except sqlite3.Error as exc:
        raise SourceError(f"cannot write restore target {target}: {exc}") from None
    finally:
        src.close()
        if dst is not None:
            dst.close()


def integrity(path: Path, pragma: str = "quick_check") -> str:
    """SQLite's own structural check: ``quick_check`` (b-trees and pages, ~1 s per GB) by
    default, since every byte was already hash-checked against the snapshot."""
    conn = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True)
    try:
        rows = conn.execute(f"PRAGMA {pragma}").fetchall()
    finally:
        conn.close()
    return "ok" if rows == [("ok",)] else "; ".join(r[0] for r in rows[:5])
