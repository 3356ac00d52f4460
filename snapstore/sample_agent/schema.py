"""The Mirix SQLite schema the sample agent uses.

Column names and types follow Mirix's SQLAlchemy models (VARCHAR primary keys,
so every table is a rowid table with an autoindex on ``id``; JSON and DATETIME
declared types), FTS5 external-content tables kept by triggers, as Mirix's
SQLite migration creates them.
"""
from __future__ import annotations

import sqlite3

_AUDIT = """
    created_at DATETIME DEFAULT (CURRENT_TIMESTAMP),
    updated_at DATETIME DEFAULT (CURRENT_TIMESTAMP),
    is_deleted BOOLEAN NOT NULL DEFAULT 0,
    _created_by_id VARCHAR,
    _last_updated_by_id VARCHAR"""

_OWNED = """
    organization_id VARCHAR NOT NULL REFERENCES organizations (id),
    user_id VARCHAR NOT NULL REFERENCES users (id),
    agent_id VARCHAR REFERENCES agents (id) ON DELETE CASCADE,"""

_MEMORY_COMMON = """
    metadata_ JSON,
    last_modify JSON NOT NULL,
    embedding_config JSON,"""

TABLES: dict[str, str] = {
    "organizations": f"""
    id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,{_AUDIT},
    PRIMARY KEY (id)""",
    "users": f"""
    id VARCHAR NOT NULL,
    organization_id VARCHAR NOT NULL REFERENCES organizations (id),
    name VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    timezone VARCHAR NOT NULL,{_AUDIT},
    PRIMARY KEY (id)""",
    "agents": f"""
    id VARCHAR NOT NULL,
    organization_id VARCHAR NOT NULL REFERENCES organizations (id),
    name VARCHAR,
    agent_type VARCHAR,
    description VARCHAR,
    system VARCHAR,
    llm_config JSON,
    embedding_config JSON,
    message_ids JSON,
    tool_rules JSON,
    metadata_ JSON,{_AUDIT},
    PRIMARY KEY (id)""",
    "block": f"""
    id VARCHAR NOT NULL,
    organization_id VARCHAR NOT NULL REFERENCES organizations (id),
    user_id VARCHAR NOT NULL REFERENCES users (id),
    label VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    "limit" INTEGER NOT NULL,
    template_name VARCHAR,
    is_template BOOLEAN NOT NULL DEFAULT 0,
    description VARCHAR,
    metadata_ JSON,{_AUDIT},
    PRIMARY KEY (id),
    CONSTRAINT unique_block_id_label UNIQUE (id, label)""",
    "blocks_agents": """
    agent_id VARCHAR NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    block_id VARCHAR NOT NULL,
    block_label VARCHAR NOT NULL,
    PRIMARY KEY (agent_id, block_id),
    FOREIGN KEY (block_id, block_label) REFERENCES block (id, label)""",
    "episodic_memory": f"""
    id VARCHAR NOT NULL,{_OWNED}
    occurred_at DATETIME NOT NULL,
    actor VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    summary VARCHAR NOT NULL,
    details VARCHAR NOT NULL,
    tree_path JSON NOT NULL,{_MEMORY_COMMON}
    details_embedding TEXT,
    summary_embedding TEXT,{_AUDIT},
    PRIMARY KEY (id)""",
    "semantic_memory": f"""
    id VARCHAR NOT NULL,{_OWNED}
    name VARCHAR NOT NULL,
    summary VARCHAR NOT NULL,
    details VARCHAR NOT NULL,
    source VARCHAR,
    tree_path JSON NOT NULL,{_MEMORY_COMMON}
    details_embedding TEXT,
    name_embedding TEXT,
    summary_embedding TEXT,{_AUDIT},
    PRIMARY KEY (id)""",
    "procedural_memory": f"""
    id VARCHAR NOT NULL,{_OWNED}
    entry_type VARCHAR NOT NULL,
    summary VARCHAR NOT NULL,
    steps JSON NOT NULL,
    tree_path JSON NOT NULL,{_MEMORY_COMMON}
    summary_embedding TEXT,
    steps_embedding TEXT,{_AUDIT},
    PRIMARY KEY (id)""",
    "resource_memory": f"""
    id VARCHAR NOT NULL,{_OWNED}
    title VARCHAR NOT NULL,
    summary VARCHAR NOT NULL,
    resource_type VARCHAR NOT NULL,
    content VARCHAR NOT NULL,
    tree_path JSON NOT NULL,{_MEMORY_COMMON}
    summary_embedding TEXT,{_AUDIT},
    PRIMARY KEY (id)""",
    "knowledge_vault": f"""
    id VARCHAR NOT NULL,{_OWNED}
    entry_type VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    sensitivity VARCHAR NOT NULL,
    secret_value VARCHAR NOT NULL,
    caption VARCHAR NOT NULL,{_MEMORY_COMMON}
    caption_embedding TEXT,{_AUDIT},
    PRIMARY KEY (id)""",
    "messages": f"""
    id VARCHAR NOT NULL,{_OWNED}
    role VARCHAR NOT NULL,
    text VARCHAR,
    content JSON,
    model VARCHAR,
    name VARCHAR,
    tool_calls JSON,
    tool_call_id VARCHAR,
    step_id VARCHAR,
    otid VARCHAR,
    tool_returns JSON,
    group_id VARCHAR,
    sender_id VARCHAR,{_AUDIT},
    PRIMARY KEY (id)""",
    "agent_stats": """
    name VARCHAR NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name)""",
}

MEMORY_TABLES = ("episodic_memory", "semantic_memory", "procedural_memory", "resource_memory", "knowledge_vault")

EMBEDDING_COLUMNS: dict[str, tuple[str, ...]] = {
    "episodic_memory": ("details_embedding", "summary_embedding"),
    "semantic_memory": ("details_embedding", "name_embedding", "summary_embedding"),
    "procedural_memory": ("summary_embedding", "steps_embedding"),
    "resource_memory": ("summary_embedding",),
    "knowledge_vault": ("caption_embedding",),
}

FTS_COLUMNS: dict[str, tuple[str, ...]] = {
    "episodic_memory": ("summary", "details"),
    "semantic_memory": ("name", "summary", "details"),
    "procedural_memory": ("summary", "steps"),
    "resource_memory": ("title", "summary", "content"),
    "knowledge_vault": ("caption",),
    "messages": ("text",),
}

INDEXES = [
    "CREATE INDEX ix_messages_agent_created_at ON messages (agent_id, created_at)",
    "CREATE INDEX ix_messages_created_at ON messages (created_at, id)",
    "CREATE INDEX ix_messages_user_id ON messages (user_id)",
    "CREATE UNIQUE INDEX idx_block_id_label ON block (id, label)",
    *(f"CREATE INDEX ix_{t}_organization_id_sqlite ON {t} (organization_id)" for t in MEMORY_TABLES),
    *(f"CREATE INDEX ix_{t}_user_created_at ON {t} (user_id, created_at)" for t in MEMORY_TABLES),
    "CREATE INDEX ix_episodic_memory_occurred_at ON episodic_memory (occurred_at)",
]


def fts_statements(table: str, columns: tuple[str, ...]) -> list[str]:
    """External-content FTS5 table plus the three triggers that keep it in sync."""
    fts = f"{table}_fts"
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete_old = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old});"
    insert_new = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new});"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', "
        "content_rowid='rowid', tokenize='porter unicode61')",
        f"CREATE TRIGGER {table}_fts_ai AFTER INSERT ON {table} BEGIN {insert_new} END",
        f"CREATE TRIGGER {table}_fts_ad AFTER DELETE ON {table} BEGIN {delete_old} END",
        f"CREATE TRIGGER {table}_fts_au AFTER UPDATE ON {table} BEGIN {delete_old} {insert_new} END",
    ]


def create_schema(conn: sqlite3.Connection) -> None:
    for table, body in TABLES.items():
        conn.execute(f"CREATE TABLE {table} ({body}\n)")
    for statement in INDEXES:
        conn.execute(statement)
    for table, columns in FTS_COLUMNS.items():
        for statement in fts_statements(table, columns):
            conn.execute(statement)
