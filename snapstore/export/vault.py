"""``export --redact-vault LEVEL``: the knowledge vault's secret values out of an exported folder.

Mirix's ``knowledge_vault`` rows carry a ``sensitivity`` (``low``, ``medium``,
``high``) and the ``secret_value`` itself (a password, an API key, a phone
number the agent was told).  Rows at or above LEVEL keep every column except
``secret_value``, which becomes the redaction marker, in every copy the folder
holds of the table: the SQLite database file, the SQL dump and
``memories/knowledge_vault.json`` (all three are written from the redacted rows).
A sensitivity that is not one of the known levels (NULL, a level another version
invented) is redacted too: a value is kept only when it is known to be below LEVEL.

SQLite: the rows are updated in the exported copy of the database with
``secure_delete`` on, then the file is vacuumed, so no freed page or cell of it
keeps an old value (the agent's own earlier edits left some there); FTS5 indexes
whose content is the vault table are rebuilt.  VACUUM keeps rowids (checked by the
tests) but costs a rewrite of the file: redaction is asked for, never the default.
PostgreSQL: the table's COPY rows are rewritten on their way into the dump and the
JSON file.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import UsageError
from ..sanitize import MARKER
from ..sources.postgres.layout import TableInfo
from .postgres_content import copy_field

LEVELS = ("low", "medium", "high")
SENSITIVITY = "sensitivity"
SECRET = "secret_value"


def parse_level(level: str | None) -> str | None:
    if level is None:
        return None
    value = str(level).strip().lower()
    if value not in LEVELS:
        raise UsageError(f"unknown knowledge vault sensitivity {level!r}; give one of {', '.join(LEVELS)}")
    return value


def redacts(sensitivity: str | None, level: str) -> bool:
    """Whether a row of this sensitivity loses its secret under ``level`` (unknown: yes)."""
    s = (sensitivity or "").strip().lower()
    return s not in LEVELS or LEVELS.index(s) >= LEVELS.index(level)


@dataclass
class VaultRedaction:
    level: str
    table: str
    redacted: int = 0   # rows whose secret_value was replaced
    kept: int = 0       # rows below the level

    def as_dict(self) -> dict:
        return {"level": self.level, "table": self.table, "redacted": self.redacted, "kept": self.kept}


def _missing_columns(table: str, columns: Iterable[str]) -> None:
    missing = [c for c in (SENSITIVITY, SECRET) if c not in set(columns)]
    if missing:
        raise UsageError(f"cannot redact the knowledge vault: table {table} has no {' or '.join(missing)} column")


def redact_sqlite(db_file: Path, table: str, level: str) -> VaultRedaction:
    """Redact the vault table of the (exported copy of the) database ``db_file`` in place."""
    result = VaultRedaction(level, table)
    conn = sqlite3.connect(str(db_file), isolation_level=None)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone():
            return result
        _missing_columns(table, [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')])
        conn.create_function("snapstore_redacts", 1, lambda s: redacts(s, level), deterministic=True)
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("BEGIN IMMEDIATE")
        result.redacted = conn.execute(
            f'UPDATE "{table}" SET "{SECRET}" = CASE WHEN "{SECRET}" IS NULL THEN NULL ELSE ? END '
            f'WHERE snapstore_redacts("{SENSITIVITY}")', (MARKER,)).rowcount
        result.kept = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] - result.redacted
        content = re.compile(rf"""content\s*=\s*['"]?{re.escape(table)}['"]?\s*[,)]""", re.I)
        for (fts, sql) in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table' "
                                       "AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'").fetchall():
            if content.search(sql):
                conn.execute(f'INSERT INTO "{fts}"("{fts}") VALUES (\'rebuild\')')
        conn.execute("COMMIT")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return result


def redact_copy_rows(table: TableInfo, blocks: Iterable[bytes], result: VaultRedaction) -> Iterator[bytes]:
    """The COPY TEXT data ``blocks`` of the vault table with secrets at or above the level
    replaced (blocks are re-cut at line ends; the marker needs no COPY escaping)."""
    names = [c for c, _ in table.columns]
    _missing_columns(table.name, names)
    si, vi, width = names.index(SENSITIVITY), names.index(SECRET), len(names)
    marker = MARKER.encode()

    def line_out(line: bytes) -> bytes:
        fields = line.split(b"\t")
        if len(fields) != width:  # not a row of this table (cannot happen in a capture): as it is
            return line
        if redacts(copy_field(fields[si]), result.level):
            result.redacted += 1
            if fields[vi] != b"\\N":
                fields[vi] = marker
            return b"\t".join(fields)
        result.kept += 1
        return line

    rest = b""
    for block in blocks:
        data = rest + block if rest else block
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield b"\n".join(line_out(line) for line in data[:cut - 1].split(b"\n")) + b"\n"
    if rest:
        yield line_out(rest)
