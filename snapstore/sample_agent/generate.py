"""create_sample_agent: write a complete Mirix-style agent directory."""
from __future__ import annotations

import math
import random
import sqlite3
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from . import files
from . import text as t
from .rows import AGENT_NAMES, EMBEDDING_CONFIG, ROW_BUILDERS, Owner, insert_rows
from .schema import TABLES, create_schema

ROWS_PER_SCALE: dict[str, int] = {
    "episodic_memory": 42,
    "semantic_memory": 21,
    "procedural_memory": 10,
    "resource_memory": 12,
    "knowledge_vault": 15,
    "messages": 300,
}
"""Rows per unit of scale; the relative weights also drive mutate_agent."""

HISTORY_DAYS = 90
"""Rows are spread over this many days, inserted day by day and interleaved
across tables, so pages of different tables mix in the file as in real use."""

BENCHMARK_SCALE = 200
"""The scale giving a database of about 1 GB (measured: 0.98 GB; scale 1 is
about 5 MB and size is linear in scale)."""


@dataclass(frozen=True)
class SampleAgentInfo:
    directory: str
    config_path: str
    db_path: str
    scale: float
    seed: int
    rows: dict[str, int]
    size_bytes: int

    def as_dict(self) -> dict:
        return asdict(self)


def create_sample_agent(directory: str | Path, scale: float = 1, seed: int = 0) -> SampleAgentInfo:
    """Write mirix.yaml, .env, logs/ and a WAL-mode sqlite.db into ``directory``.

    Size grows linearly with ``scale`` (about 5 MB per unit); the same seed and
    scale always give the same logical content.
    """
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    root = Path(directory)
    _refuse_existing(root)
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / files.CONFIG_NAME
    files.write_config(config_path, random.Random(f"{seed}:config"))
    files.write_env(root / files.ENV_NAME, random.Random(f"{seed}:env"))
    files.write_logs(root / "logs", random.Random(f"{seed}:logs"), scale)
    db_path = root / files.DB_NAME
    rows = _build_database(db_path, scale, random.Random(f"{seed}:db"))
    return SampleAgentInfo(
        directory=str(root), config_path=str(config_path), db_path=str(db_path),
        scale=scale, seed=seed, rows=rows, size_bytes=db_path.stat().st_size,
    )


def _refuse_existing(root: Path) -> None:
    """Never overwrite an agent: any file we would write must be absent (or an empty db)."""
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory")
    db = root / files.DB_NAME
    if db.exists() and db.stat().st_size > 0:
        raise FileExistsError(f"{db} already exists and is not empty; refusing to overwrite an agent")
    others = [files.CONFIG_NAME, files.ENV_NAME, f"{files.DB_NAME}-wal", f"{files.DB_NAME}-journal",
              *(f"logs/{name}" for name in files.LOG_NAMES)]
    for name in others:
        if (root / name).exists():
            raise FileExistsError(f"{root / name} already exists; refusing to overwrite an agent")


def _build_database(path: Path, scale: float, rng: random.Random) -> dict[str, int]:
    """Bulk load with the journal in memory and no fsync, then settle into WAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=MEMORY")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-131072")
        counts = {table: max(1, round(n * scale)) for table, n in ROWS_PER_SCALE.items()}
        conn.execute("BEGIN")
        create_schema(conn)
        owner = _insert_owner(conn, rng)
        conn.execute("COMMIT")
        _insert_history(conn, rng, owner, counts)
        conn.executemany("INSERT INTO agent_stats (name, value) VALUES (?, ?)", [
            ("writes", 0),
            ("messages_at_create", counts["messages"]),
            ("episodic_at_create", counts["episodic_memory"]),
        ])
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
    finally:
        conn.close()


def _insert_owner(conn: sqlite3.Connection, rng: random.Random) -> Owner:
    """Organisation, user, Mirix's memory agents and the two core-memory blocks."""
    when = t.HISTORY_START
    org_id, user_id = t.new_id(rng, "org"), t.new_id(rng, "user")
    audit = {"created_at": t.db_time(when), "updated_at": t.db_time(when), "is_deleted": 0,
             "_created_by_id": None, "_last_updated_by_id": None}
    insert_rows(conn, "organizations", [{"id": org_id, "name": "Sample Org", **audit}])
    insert_rows(conn, "users", [{"id": user_id, "organization_id": org_id, "name": "Sample User",
                                 "status": "active", "timezone": "America/New_York", **audit}])
    agents = {name: t.new_id(rng, "agent") for name in AGENT_NAMES}
    insert_rows(conn, "agents", [_agent_row(rng, name, agent_id, org_id, audit)
                                 for name, agent_id in agents.items()])
    blocks = [
        ("human", f"The user is called Sample User. {t.paragraph(rng, 4, 8)}"),
        ("persona", f"I am Mirix, a helpful personal assistant with memory. {t.paragraph(rng, 3, 6)}"),
    ]
    block_rows = [{"id": t.new_id(rng, "block"), "organization_id": org_id, "user_id": user_id,
                   "label": label, "value": value, "limit": 5000, "template_name": None,
                   "is_template": 0, "description": f"Core memory: {label}",
                   "metadata_": t.to_json({}), **audit} for label, value in blocks]
    insert_rows(conn, "block", block_rows)
    insert_rows(conn, "blocks_agents", [
        {"agent_id": agents[name], "block_id": b["id"], "block_label": b["label"]}
        for name in ("chat_agent", "core_memory_agent") for b in block_rows
    ])
    return Owner(org_id, user_id, agents)


def _agent_row(rng: random.Random, name: str, agent_id: str, org_id: str, audit: dict) -> dict:
    llm_config = {"model": "gemini-2.0-flash", "model_endpoint_type": "google_ai",
                  "model_endpoint": "https://generativelanguage.googleapis.com",
                  "context_window": 1000000, "temperature": 0.7}
    return {
        "id": agent_id, "organization_id": org_id, "name": name,
        "agent_type": name, "description": f"Mirix {name.replace('_', ' ')}",
        "system": f"You are the {name.replace('_', ' ')} of Mirix. {t.paragraph(rng, 8, 14)}",
        "llm_config": t.to_json(llm_config), "embedding_config": EMBEDDING_CONFIG,
        "message_ids": t.to_json([]), "tool_rules": t.to_json([]),
        "metadata_": t.to_json({"sample": True}), **audit,
    }


def _insert_history(conn: sqlite3.Connection, rng: random.Random, owner: Owner,
                    counts: dict[str, int]) -> None:
    """One transaction per simulated day; within a day rows are in time order."""
    for day in range(HISTORY_DAYS):
        day_start = t.HISTORY_START + timedelta(days=day, hours=1)
        conn.execute("BEGIN")
        for table, total in counts.items():
            n = total * (day + 1) // HISTORY_DAYS - total * day // HISTORY_DAYS
            offsets = sorted(rng.uniform(0, 14 * 3600) for _ in range(n))
            build = ROW_BUILDERS[table]
            insert_rows(conn, table, [build(rng, owner, day_start + timedelta(seconds=s)) for s in offsets])
        conn.execute("COMMIT")
