"""Where a PostgreSQL capture lives in a snapshot, and its table of contents (``info.json``).

Files (paths in the manifest, format in docs/design.md "PostgreSQL snapshots"):

* ``database/postgresql/info.json`` — server version, extensions, sequences, and per table its
  columns, primary key, row count, data file and key ranges (what incremental capture compares);
* ``database/postgresql/pre-data.sql`` / ``post-data.sql`` — ``pg_dump`` schema sections;
* ``database/postgresql/clean.sql`` — the ``DROP … IF EXISTS`` statements ``pg_restore --clean
  --if-exists`` would run first (for dumps that load into an existing database);
* ``database/postgresql/data/<schema>.<table>.copy`` — the rows in COPY TEXT format, in key order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

PG_DIR = "database/postgresql"
INFO_PATH = f"{PG_DIR}/info.json"
PRE_DATA_PATH = f"{PG_DIR}/pre-data.sql"
POST_DATA_PATH = f"{PG_DIR}/post-data.sql"
CLEAN_PATH = f"{PG_DIR}/clean.sql"
DATA_DIR = f"{PG_DIR}/data"
FORMAT_VERSION = 1


def data_path(schema: str, name: str) -> str:
    """One file per table; the name is percent-encoded so no table name can form a path."""
    return f"{DATA_DIR}/{quote(schema, safe='')}.{quote(name, safe='')}.copy"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class TableInfo:
    schema: str
    name: str
    columns: list[tuple[str, str]]  # (name, format_type) in table order, generated columns left out
    primary_key: list[str]
    row_count: int = 0
    file: str = ""
    ranges: dict = field(default_factory=dict)  # see ranges.py: bounds, rows, fingerprints, chunks

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    def column_list(self) -> str:
        return ", ".join(quote_ident(c) for c, _ in self.columns)

    def to_doc(self) -> dict:
        return {"schema": self.schema, "name": self.name, "columns": [list(c) for c in self.columns],
                "primary_key": self.primary_key, "row_count": self.row_count, "file": self.file,
                "ranges": self.ranges}

    @classmethod
    def from_doc(cls, doc: dict) -> "TableInfo":
        return cls(doc["schema"], doc["name"], [tuple(c) for c in doc["columns"]], list(doc["primary_key"]),
                   doc.get("row_count", 0), doc.get("file", ""), doc.get("ranges") or {})
