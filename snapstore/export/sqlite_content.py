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
import math
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import orjson

from ..errors import SourceError
from ..folder.checksums import FollowingMD5
from ..sqlite_uri import sqlite_uri

JSON_COLUMNS = {"tree_path", "metadata_", "last_modify", "embedding_config", "llm_config", "tool_rules",
                "content", "tool_calls", "filter_tags"}


# No memory-mapped reads: every page of a mapped file a scan touches stays in the process's
# resident set, so an export of a 1 GB database peaked near 2 GB of RSS (this connection and
# the sqlite3 shell each mapping the whole file).  Reading through SQLite's own small page
# cache costs a pread per page and keeps RSS flat: measured on 1 GB, the ``.dump`` alone takes
# 0.2-0.45 s more system time, the whole export about 2 s more CPU time (+13%) for 2 GB less RSS.
MMAP_BYTES = 0


def open_readonly(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(sqlite_uri(db_path, immutable=1), uri=True)
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}").fetchall()
    return conn


def sqlite3_binary() -> str:
    path = shutil.which("sqlite3")
    if path is None:
        raise SourceError("the sqlite3 command is needed to write mirix_dump.sql; install it (apt-get install sqlite3)")
    return path


FOLLOW_POLL_S = 0.02


def write_sql_dump(db_path: Path, dest: Path, progress: Callable[[int], None] | None = None) -> str:
    """``sqlite3 .dump --preserve-rowids`` straight into the file ``dest``; returns its MD5.

    The MD5 follows the file as it grows (``FollowingMD5``), so hashing overlaps
    the dump, and no byte is copied through a pipe.  The shell exits 0 even when
    it met errors; it then ends the dump with ``ROLLBACK`` instead of ``COMMIT``,
    which is checked.
    """
    with open(dest, "w+b") as out, tempfile.TemporaryFile() as errors, FollowingMD5(dest) as md5:
        proc = subprocess.Popen([sqlite3_binary(), "-cmd", ".output /dev/null",
                                 "-cmd", f"PRAGMA mmap_size={MMAP_BYTES}", "-cmd", ".output",
                                 sqlite_uri(db_path, immutable=1), ".dump --preserve-rowids"],
                                stdout=out, stderr=errors)
        seen = 0
        try:
            while proc.poll() is None:
                size = os.fstat(out.fileno()).st_size
                md5.advance(size)
                if progress and size > seen:
                    progress(size - seen)
                seen = size
                time.sleep(FOLLOW_POLL_S)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        digest = md5.finish()
        size = os.fstat(out.fileno()).st_size
        if progress and size > seen:
            progress(size - seen)
        tail = os.pread(out.fileno(), 64, max(0, size - 64)) if size else b""
        errors.seek(0)
        err = errors.read().decode(errors="replace").strip()
    if proc.returncode != 0 or not tail.endswith(b"COMMIT;\n"):
        reason = err.splitlines()[-1] if err else (f"exit status {proc.returncode}" if proc.returncode
                                                     else "the database is damaged (the dump ends in ROLLBACK)")
        raise SourceError(f"sqlite3 .dump failed: {reason}")
    return digest


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
    """A column value as JSON, wrapped so that ``from_json_value`` gives back the very same value.

    A JSON column's text becomes ``{"$json": ...}`` only when re-serialising the
    parsed document reproduces the text exactly (which also rules out numbers a
    double cannot hold); anything else stays a string.
    """
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if column in JSON_COLUMNS and isinstance(value, str) and value[:1] in "[{":
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if json.dumps(doc) == value:
            return {"$json": doc}
    return value


def from_json_value(value: Any) -> Any:
    """Inverse of ``to_json_value``: what goes back into the column."""
    if isinstance(value, dict):
        if "$base64" in value:
            return base64.b64decode(value["$base64"])
        if "$json" in value:
            return json.dumps(value["$json"])
        if "$float" in value:
            return float(value["$float"])
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return value


WRAPPED_TYPES = (bytes, float)  # values to_json_value must see whatever the column


def iter_rows(conn: sqlite3.Connection, table: str) -> Iterator[dict[str, Any]]:
    """Rows as JSON-ready dicts with their keys sorted (stable files), in rowid order."""
    cur = conn.execute(f'SELECT rowid AS "$rowid", * FROM "{table}" ORDER BY rowid')
    names = [d[0] for d in cur.description]
    order = sorted(range(len(names)), key=names.__getitem__)
    sorted_names = [names[i] for i in order]
    for row in cur:
        yield {n: (to_json_value(n, v) if type(v) in WRAPPED_TYPES or (n in JSON_COLUMNS and type(v) is str) else v)
               for n, v in zip(sorted_names, (row[i] for i in order))}



def _encode_row(row: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(row)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard encoder takes any size
        return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()


def write_memory_json(conn: sqlite3.Connection, memory_type: str, table: str, out: BinaryIO,
                      progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """``{"memory_type", "table", "row_count", "rows": [...]}``, streamed; returns (rows, md5).

    Rows hold embeddings and run to hundreds of megabytes: orjson writes each row
    as UTF-8 in one pass, straight to the MD5 and the file.
    """
    md5 = hashlib.md5()

    def emit(data: bytes) -> None:
        md5.update(data)
        out.write(data)
        if progress:
            progress(len(data))

    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] if exists else 0
    emit(("{\n" + f'  "memory_type": {json.dumps(memory_type)},\n  "table": {json.dumps(table)},\n'
          f'  "row_count": {count},\n  "rows": [').encode())
    n = 0
    if exists:
        for row in iter_rows(conn, table):
            emit((b",\n    " if n else b"\n    ") + _encode_row(row))
            n += 1
    emit((b"\n  ]" if n else b"]") + b"\n}\n")
    return n, md5.hexdigest()


def integrity_check(conn: sqlite3.Connection) -> str:
    """``PRAGMA quick_check``: page and b-tree structure at half the cost of the full check.

    Every byte was already hash-checked against the snapshot; the full
    ``integrity_check`` (indexes against tables) runs in ``verify_backup``.
    """
    result = conn.execute("PRAGMA quick_check").fetchall()
    return "ok" if result == [("ok",)] else "; ".join(r[0] for r in result[:5])
