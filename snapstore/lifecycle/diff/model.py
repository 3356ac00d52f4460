"""What a memory-level diff finds: per table the rows added, removed and changed, with a few samples."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ...memory_types import CONVERSATION_TABLE, DEFAULT_MEMORY_TABLES

SUMMARY_COLUMNS = ("summary", "caption", "title", "name", "label", "text", "value", "details", "content")
SUMMARY_CHARS = 100


def summarize(columns: list[str], values: list) -> str:
    """A short human line for a row: its most descriptive text column."""
    row = dict(zip(columns, values))
    for name in SUMMARY_COLUMNS:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"
    return ""


@dataclass
class TableChanges:
    added: int = 0
    removed: int = 0
    changed: int = 0
    samples: dict[str, list[dict]] = field(default_factory=lambda: {"added": [], "removed": [], "changed": []})

    def note(self, kind: str, key, summary: Callable[[], str], limit: int) -> None:
        """Count a row; its summary is made (decoded) only for the few rows shown."""
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.samples[kind]) < limit:
            self.samples[kind].append({"key": _plain(key), "summary": summary()})

    @property
    def total(self) -> int:
        return self.added + self.removed + self.changed

    def as_dict(self, with_samples: bool) -> dict:
        doc = {"added": self.added, "removed": self.removed, "changed": self.changed}
        if with_samples:
            doc["samples"] = self.samples
        return doc


def _plain(key):
    key = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    return key.hex() if isinstance(key, bytes) else list(key) if isinstance(key, tuple) else key


@dataclass
class DiffResult:
    engine: str
    tables: dict[str, TableChanges] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=lambda: {"added": [], "removed": [], "changed": []})
    read: dict = field(default_factory=dict)   # what the diff had to decode: pages or ranges, of how many

    def ordered_tables(self) -> list[str]:
        """Memory tables first (in the documented order), then conversations, then the rest."""
        first = [t for t in (*DEFAULT_MEMORY_TABLES.values(), CONVERSATION_TABLE) if t in self.tables]
        return first + sorted(t for t in self.tables if t not in first)

    def as_dict(self, with_samples: bool = False) -> dict:
        return {"engine": self.engine,
                "tables": {t: self.tables[t].as_dict(with_samples) for t in self.ordered_tables()},
                "files": self.files, "read": self.read}
