"""Counts as people write them, for every message: ``1 snapshot``, ``2 snapshots``."""
from __future__ import annotations


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
