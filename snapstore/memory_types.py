"""Which table holds which kind of memory (SPEC.md §3); configuration with Mirix's defaults.

An agent's ``mirix.yaml`` may override the mapping under ``snapstore.memory_tables``.
"""
from __future__ import annotations

from typing import Any, Mapping

from .errors import UsageError

DEFAULT_MEMORY_TABLES: dict[str, str] = {
    "core": "block",
    "episodic": "episodic_memory",
    "semantic": "semantic_memory",
    "procedural": "procedural_memory",
    "resource": "resource_memory",
    "knowledge_vault": "knowledge_vault",
}
CONVERSATION_TABLE = "messages"


def memory_tables(config: Mapping[str, Any] | None = None) -> dict[str, str]:
    override = ((config or {}).get("snapstore") or {}).get("memory_tables") or {}
    return {**DEFAULT_MEMORY_TABLES, **{str(k): str(v) for k, v in override.items()}}


def memory_file_name(memory_type: str) -> str:
    """``memories/<type>_memory.json``, except the vault, which is ``knowledge_vault.json``."""
    return "knowledge_vault.json" if memory_type == "knowledge_vault" else f"{memory_type}_memory.json"


def parse_memory_types(value: str | list[str] | None, tables: Mapping[str, str]) -> list[str]:
    if not value:
        return list(tables)
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [v.strip().removesuffix("_memory") for v in items if v.strip()]
    unknown = [n for n in names if n not in tables]
    if unknown:
        raise UsageError(f"unknown memory type {', '.join(unknown)}; known: {', '.join(tables)}")
    return names
