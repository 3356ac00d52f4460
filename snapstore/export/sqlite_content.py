"""What an export derives from an SQLite database: the SQL dump, schema info, memory rows.

The database is opened ``immutable`` so reading the exported file never creates
``-wal``/``-shm`` files inside the folder.  The dump comes from the real
``sqlite3`` shell with ``--preserve-rowids``: FTS5 external-content tables point
at rowids, and a dump that renumbers rows would leave search indexes that no
longer match their tables.
"""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from ..errors import SourceError

JSON_COLUMNS = {"tree_path", "metadata_", "last_modify", "embedding_config", "llm_config", "tool_rules",
                "content", "tool_calls", "filter_tags"}


def open_readonly(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path}?immutable=1", uri=True)


def sqlite3_binary() -> str:
    path = shutil.which("sqlite3")
    if path is None:
        raise SourceError("the sqlite3 command is needed to write mirix_dump.sql; install it (apt-get install sqlite3)")
    return path


def write_sql_dump(db_path: Path, out: BinaryIO) -> str:
    """Stream ``sqlite3 .dump --preserve-rowids`` into ``out``; returns its MD5."""
    md5 = hashlib.md5()
    proc = subprocess.Popen([sqlite3_binary(), f"file:{db_path}?immutable=1", ".dump --preserve-rowids"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    while block := proc.stdout.read(1 << 20):
        md5.update(block)
        out.write(block)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.wait() != 0:
        raise SourceError(f"sqlite3 .dump failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    return md5.hexdigest()


def user_tables(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, sql) of tables a user would recognise, shadow tables of virtual tables excluded."""
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                        "ORDER BY name").fetchall()
    virtual = [name for name, sql in rows if sql and sql.upper().startswith("CREATE VIRTUAL")]
    return [(n, s) for n, s in rows if not any(n.startswith(v + "_") for v in virtual)]


def schema_info(conn: sqlite3.Connection) -> dict[str, Any]:
    tables = {}
    for name, sql in user_tables(conn):
        columns = [{"name": c[1], "type": c[2], "notnull": bool(c[3]), "default": c[4], "primary_key": bool(c[5])}
                   for c in conn.execute(f'PRAGMA table_xinfo("{name}")') if c[6] == 0]
        count = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        tables[name] = {"columns": columns, "row_count": count, "virtual": sql.upper().startswith("CREATE VIRTUAL"),
                        "sql": sql}
    def objects(kind: str) -> list[dict]:
        return [{"name": n, "table": t, "sql": s} for n, t, s in conn.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type=? AND sql IS NOT NULL ORDER BY name", (kind,))]
    return {"database_type": "sqlite", "tables": tables, "indexes": objects("index"),
            "triggers": objects("trigger"), "views": objects("view"),
            "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
            "user_version": conn.execute("PRAGMA user_version").fetchone()[0]}


def to_json_value(column: str, value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if column in JSON_COLUMNS and isinstance(value, str) and value[:1] in "[{":
        try:
            return {"$json": json.loads(value)}
        except ValueError:
            return value
    return value


def from_json_value(value: Any) -> Any:
    """Inverse of ``to_json_value``: what goes back into the column."""
    if isinstance(value, dict):
        if "$base64" in value:
            return base64.b64decode(value["$base64"])
        if "$json" in value:
            return json.dumps(value["$json"], ensure_ascii=False)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return value


def iter_rows(conn: sqlite3.Connection, table: str) -> Iterator[dict[str, Any]]:
    """Rows as JSON-ready dicts with their keys sorted (stable files), in rowid order."""
    cur = conn.execute(f'SELECT rowid AS "$rowid", * FROM "{table}" ORDER BY rowid')
    names = [d[0] for d in cur.description]
    order = sorted(range(len(names)), key=names.__getitem__)
    sorted_names = [names[i] for i in order]
    for row in cur:
        yield {n: (to_json_value(n, v) if isinstance(v, bytes) or (n in JSON_COLUMNS and isinstance(v, str)) else v)
               for n, v in zip(sorted_names, (row[i] for i in order))}


def write_memory_json(conn: sqlite3.Connection, memory_type: str, table: str, out: BinaryIO) -> tuple[int, str]:
    """``{"memory_type", "table", "row_count", "rows": [...]}``, streamed; returns (rows, md5)."""
    md5 = hashlib.md5()
    pending: list[str] = []
    pending_len = 0

    def emit(text: str, flush: bool = False) -> None:
        nonlocal pending_len
        pending.append(text)
        pending_len += len(text)
        if flush or pending_len >= 4 << 20:  # hash and write in large blocks: far fewer calls
            data = "".join(pending).encode()
            md5.update(data)
            out.write(data)
            pending.clear()
            pending_len = 0

    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] if exists else 0
    emit("{\n" + f'  "memory_type": {json.dumps(memory_type)},\n  "table": {json.dumps(table)},\n'
         f'  "row_count": {count},\n  "rows": [')
    n = 0
    if exists:
        encode = json.JSONEncoder(ensure_ascii=False).encode
        for row in iter_rows(conn, table):
            emit(("\n    " if n == 0 else ",\n    ") + encode(row))
            n += 1
    emit(("\n  ]" if n else "]") + "\n}\n", flush=True)
    return n, md5.hexdigest()


def integrity_check(conn: sqlite3.Connection) -> str:
    """``PRAGMA quick_check``: page and b-tree structure at half the cost of the full check.

    Every byte was already hash-checked against the snapshot; the full
    ``integrity_check`` (indexes against tables) runs in ``verify_backup``.
    """
    result = conn.execute("PRAGMA quick_check").fetchall()
    return "ok" if result == [("ok",)] else "; ".join(r[0] for r in result[:5])
