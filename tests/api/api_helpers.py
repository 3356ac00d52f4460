"""Helpers of the Mirix-compatible API tests: database probes and running reference examples.

Import as ``from api_helpers import ...`` (``tests/api`` is on ``sys.path`` while its tests run).
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import snapstore
from mirix_reference_examples import EXAMPLES
from snapstore.sqlite_uri import sqlite_uri


def reference_namespace(**extra) -> dict:
    """Globals for a reference example: snapstore's public API plus the modules the page
    uses without importing them (``json``, ``os``) -- the import adaptation."""
    ns = {"__name__": "mirix_reference_example", "json": json, "os": os}
    ns.update({name: getattr(snapstore, name) for name in snapstore.__all__})
    ns.update(extra)
    return ns


def run_code(code: str, ns: dict, label: str = "example") -> dict:
    exec(compile(code, f"<reference {label}>", "exec"), ns)
    return ns


def run_example(name: str, ns: dict) -> dict:
    return run_code(EXAMPLES[name], ns, name)


def split_usage(name: str) -> tuple[str, str]:
    """(the helper's definition, its usage) of an example that defines a helper then uses it."""
    code = EXAMPLES[name]
    at = code.index("\n# Usage")
    return code[:at + 1], code[at + 1:]


def db_rows(db: Path, table: str) -> list[tuple]:
    conn = sqlite3.connect(sqlite_uri(db, mode="ro"), uri=True)
    try:
        return conn.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid').fetchall()
    finally:
        conn.close()


def _logical(value):
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def logical_rows(db: Path, table: str) -> list[tuple]:
    """Rows with JSON text parsed: what a restore from ``memories/*.json`` must bring back
    (the memory files keep JSON values, not their exact text: see the report of issue 5)."""
    return [tuple(_logical(v) for v in row) for row in db_rows(db, table)]


def db_count(db: Path, table: str) -> int:
    conn = sqlite3.connect(sqlite_uri(db, mode="ro"), uri=True)
    try:
        return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        conn.close()


def db_execute(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for statement in statements:
            conn.execute(statement)
        conn.execute("COMMIT")
    finally:
        conn.close()


def fts_matches(db: Path, table: str, word: str) -> int:
    conn = sqlite3.connect(sqlite_uri(db, mode="ro"), uri=True)
    try:
        return conn.execute(f'SELECT count(*) FROM "{table}_fts" WHERE "{table}_fts" MATCH ?', (word,)).fetchone()[0]
    finally:
        conn.close()


def fts_consistent(db: Path, table: str) -> bool:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(f'INSERT INTO "{table}_fts"("{table}_fts") VALUES (\'integrity-check\')')
        return True
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def default_repository() -> str:
    """Where the ``home`` agent's snapshots go: ``SNAPSTORE_REPO`` (the S3 run) or ./configs/.snapstore."""
    return os.environ.get("SNAPSTORE_REPO") or str(Path("configs/.snapstore").resolve())


def repository_yaml(local_dir: str) -> str:
    """Config lines that give another agent the repository of the agent whose default is
    ``local_dir``; none in the S3 run, where ``SNAPSTORE_REPO`` is already every agent's."""
    if os.environ.get("SNAPSTORE_REPO"):
        return ""
    return f"snapstore:\n  repository: {Path(local_dir).absolute()}\n"


def metadata(folder: Path) -> dict:
    return json.loads((Path(folder) / "metadata.json").read_text())


