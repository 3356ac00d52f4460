"""Row builders for every sample-agent table.

Each builder returns a dict (column -> value) so the same code serves bulk
creation, "a day of use" mutations and the concurrent writer.
"""
from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from . import text as t

EMBEDDING_CONFIG = t.to_json({
    "embedding_endpoint_type": "google_ai",
    "embedding_endpoint": "https://generativelanguage.googleapis.com",
    "embedding_model": "text-embedding-004",
    "embedding_dim": t.ACTIVE_DIM,
    "embedding_chunk_size": 300,
    "handle": None,
    "azure_endpoint": None,
    "azure_version": None,
    "azure_deployment": None,
})

AGENT_NAMES = (
    "chat_agent", "meta_memory_agent", "core_memory_agent", "episodic_memory_agent",
    "semantic_memory_agent", "procedural_memory_agent", "resource_memory_agent",
    "knowledge_vault_agent", "reflexion_agent", "background_agent",
)

_TABLE_AGENT = {
    "episodic_memory": "episodic_memory_agent",
    "semantic_memory": "semantic_memory_agent",
    "procedural_memory": "procedural_memory_agent",
    "resource_memory": "resource_memory_agent",
    "knowledge_vault": "knowledge_vault_agent",
}

_TREE_ROOTS = ["work", "personal", "health", "finance", "learning", "travel", "hobbies", "family"]
_TOOLS = [
    "episodic_memory_insert", "semantic_memory_update", "search_in_memory",
    "core_memory_append", "resource_memory_insert", "send_message", "trigger_memory_update",
]


@dataclass(frozen=True)
class Owner:
    """The organisation, user and agents every memory row points at."""

    organization_id: str
    user_id: str
    agents: dict[str, str]

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> "Owner":
        org = conn.execute("SELECT id FROM organizations ORDER BY rowid LIMIT 1").fetchone()
        user = conn.execute("SELECT id FROM users ORDER BY rowid LIMIT 1").fetchone()
        if org is None or user is None:
            raise ValueError("not a sample agent database: no organization or user row")
        agents = dict(conn.execute("SELECT name, id FROM agents"))
        return cls(org[0], user[0], agents)


def _audit(owner: Owner, when: datetime) -> dict:
    stamp = t.db_time(when)
    return {
        "created_at": stamp, "updated_at": stamp, "is_deleted": 0,
        "_created_by_id": owner.user_id, "_last_updated_by_id": owner.user_id,
    }


def _owned(owner: Owner, table: str) -> dict:
    return {
        "organization_id": owner.organization_id,
        "user_id": owner.user_id,
        "agent_id": owner.agents.get(_TABLE_AGENT.get(table, "chat_agent")),
    }


def _tree_path(rng: random.Random) -> str:
    depth = rng.randint(1, 3)
    return t.to_json([rng.choice(_TREE_ROOTS)] + [rng.choice(t.NOUNS) for _ in range(depth - 1)])


def _memory_common(rng: random.Random, when: datetime) -> dict:
    return {
        "metadata_": t.to_json({
            "source": rng.choice(["chat", "screen", "email", "voice", "document"]),
            "importance": round(rng.random(), 3),
            "access_count": 0,
        }),
        "last_modify": t.to_json({"timestamp": t.iso_utc(when), "operation": "created"}),
        "embedding_config": EMBEDDING_CONFIG,
    }


def episodic_row(rng: random.Random, owner: Owner, when: datetime) -> dict:
    return {
        "id": t.new_id(rng, "ep_mem"), **_owned(owner, "episodic_memory"),
        "occurred_at": t.db_time(when - timedelta(minutes=rng.randint(0, 600))),
        "actor": rng.choice(["user", "assistant"]),
        "event_type": rng.choice(["activity", "conversation", "observation", "task", "reminder"]),
        "summary": t.sentence(rng), "details": t.paragraph(rng, 3, 8),
        "tree_path": _tree_path(rng), **_memory_common(rng, when),
        "details_embedding": t.embedding(rng), "summary_embedding": t.embedding(rng),
        **_audit(owner, when),
    }


def semantic_row(rng: random.Random, owner: Owner, when: datetime) -> dict:
    return {
        "id": t.new_id(rng, "sem_item"), **_owned(owner, "semantic_memory"),
        "name": rng.choice(t.TOPICS + t.PEOPLE).title(),
        "summary": t.sentence(rng), "details": t.paragraph(rng, 2, 6),
        "source": rng.choice(["conversation", "article", "book", "web page", "user"]),
        "tree_path": _tree_path(rng), **_memory_common(rng, when),
        "details_embedding": t.embedding(rng), "name_embedding": t.embedding(rng),
        "summary_embedding": t.embedding(rng), **_audit(owner, when),
    }


def procedural_row(rng: random.Random, owner: Owner, when: datetime) -> dict:
    steps = [f"{i + 1}. {t.sentence(rng)}" for i in range(rng.randint(3, 7))]
    return {
        "id": t.new_id(rng, "proc_item"), **_owned(owner, "procedural_memory"),
        "entry_type": rng.choice(["workflow", "guide", "script", "habit"]),
        "summary": f"How to {rng.choice(t.VERBS_BASE)} the {rng.choice(t.NOUNS)}",
        "steps": t.to_json(steps), "tree_path": _tree_path(rng), **_memory_common(rng, when),
        "summary_embedding": t.embedding(rng), "steps_embedding": t.embedding(rng),
        **_audit(owner, when),
    }


def resource_row(rng: random.Random, owner: Owner, when: datetime) -> dict:
    kind = rng.choice(["doc", "markdown", "pdf_text", "spreadsheet", "code"])
    content = "\n\n".join(t.paragraph(rng, 3, 6) for _ in range(rng.randint(2, 5)))
    return {
        "id": t.new_id(rng, "res_item"), **_owned(owner, "resource_memory"),
        "title": t.title(rng), "summary": t.sentence(rng), "resource_type": kind,
        "content": content, "tree_path": _tree_path(rng), **_memory_common(rng, when),
        "summary_embedding": t.embedding(rng), **_audit(owner, when),
    }


def knowledge_row(rng: random.Random, owner: Owner, when: datetime) -> dict:
    kind = rng.choice(["credential", "bookmark", "contact", "address", "api_key"])
    secret = {
        "credential": f"pw-sample-{rng.getrandbits(48):012x}",
        "bookmark": f"https://example.org/{rng.choice(t.NOUNS).replace(' ', '-')}",
        "contact": f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        "address": f"{rng.randint(1, 999)} Sample Street, Springfield",
        "api_key": f"sk-sample-{rng.getrandbits(96):024x}",
    }[kind]
    return {
        "id": t.new_id(rng, "kv_item"), **_owned(owner, "knowledge_vault"),
        "entry_type": kind, "source": f"user-provided on {when:%Y-%m-%d}",
        "sensitivity": rng.choice(["low", "medium", "high"]), "secret_value": secret,
        "caption": t.sentence(rng), **_memory_common(rng, when),
        "caption_embedding": t.embedding(rng), **_audit(owner, when),
    }


def message_row(rng: random.Random, owner: Owner, when: datetime) -> dict:
    """A user, assistant or tool message, shaped like Mirix's (OpenAI-style) rows."""
    role = rng.choices(["user", "assistant", "tool"], weights=[4, 4, 2])[0]
    body = t.paragraph(rng, 1, 4)
    tool_calls = []
    if role == "assistant" and rng.random() < 0.4:
        args = t.to_json({"summary": t.sentence(rng), "request_heartbeat": rng.random() < 0.5})
        tool_calls = [{
            "id": f"call_{rng.getrandbits(96):024x}", "type": "function",
            "function": {"name": rng.choice(_TOOLS), "arguments": args},
        }]
    return {
        "id": t.new_id(rng, "message"), **_owned(owner, "messages"), "role": role,
        "text": body, "content": t.to_json([{"type": "text", "text": body}]),
        "model": None if role == "user" else "gemini-2.0-flash",
        "name": rng.choice(_TOOLS) if role == "tool" else None,
        "tool_calls": t.to_json(tool_calls),
        "tool_call_id": f"call_{rng.getrandbits(96):024x}" if role == "tool" else None,
        "step_id": None, "otid": None, "tool_returns": t.to_json([]),
        "group_id": None, "sender_id": owner.user_id if role == "user" else None,
        **_audit(owner, when),
    }


ROW_BUILDERS: dict[str, Callable[[random.Random, Owner, datetime], dict]] = {
    "episodic_memory": episodic_row,
    "semantic_memory": semantic_row,
    "procedural_memory": procedural_row,
    "resource_memory": resource_row,
    "knowledge_vault": knowledge_row,
    "messages": message_row,
}


def row_bytes(row: dict) -> int:
    """Approximate stored size of a row: the length of its values."""
    return sum(len(v) if isinstance(v, str) else 8 for v in row.values())


def insert_rows(conn: sqlite3.Connection, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    sql = (f"INSERT INTO {table} ({', '.join(_quote(c) for c in columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    conn.executemany(sql, [tuple(r[c] for c in columns) for r in rows])


def _quote(column: str) -> str:
    return f'"{column}"'
