"""The generated sample agent: schema, content, determinism, mutation, concurrent writes."""
from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from snapstore.sample_agent import (
    ACTIVE_DIM,
    EMBEDDING_COLUMNS,
    EMBEDDING_DIM,
    FTS_COLUMNS,
    MEMORY_TABLES,
    check_write_invariant,
    create_sample_agent,
    decode_embedding,
    mutate_agent,
    write_transactions,
)
from snapstore.sample_agent.schema import TABLES

MIRIX_TABLES = ("organizations", "users", "agents", "block", *MEMORY_TABLES, "messages")


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    """One scale-1 agent shared by the read-only tests."""
    return create_sample_agent(tmp_path_factory.mktemp("agent") / "mirix", scale=1, seed=0)


def _connect(path) -> closing[sqlite3.Connection]:
    """Autocommit connection that is closed (not just committed) by ``with``."""
    return closing(sqlite3.connect(path, isolation_level=None))


def _counts(db) -> dict[str, int]:
    with _connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _assert_healthy(db) -> None:
    """integrity_check plus FTS5's own check; rank=1 compares the index with the content table."""
    with _connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        for table in FTS_COLUMNS:
            fts = f"{table}_fts"
            conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)")


def _content(db) -> dict[str, list[tuple]]:
    with _connect(db) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}


def test_directory_layout_and_fake_secrets(agent):
    root = Path(agent.directory)
    config = yaml.safe_load(Path(agent.config_path).read_text())
    assert "database_url: sqlite:///sqlite.db" in Path(agent.config_path).read_text()
    assert config["agent_name"] and config["model_name"] and config["embedding_model"]
    assert config["llm_config"]["api_key"].startswith("sk-sample-")
    env = dict(line.split("=", 1) for line in (root / ".env").read_text().splitlines())
    assert env["OPENAI_API_KEY"].startswith("sk-")
    assert {"GEMINI_API_KEY", "MIRIX_PG_PASSWORD"} <= env.keys()
    assert env["MIRIX_LOG_LEVEL"] == "INFO"
    for name in ("agent.log", "security.log"):
        assert len((root / "logs" / name).read_text().splitlines()) >= 200
    assert Path(agent.db_path) == root / "sqlite.db"


def test_every_table_has_rows(agent):
    counts = _counts(agent.db_path)
    assert counts == agent.rows
    assert all(counts[t] > 0 for t in MIRIX_TABLES)


def test_database_is_healthy_wal_and_sized(agent):
    _assert_healthy(agent.db_path)
    with _connect(agent.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA page_size").fetchone() == (4096,)
    assert 4_000_000 <= agent.size_bytes <= 6_000_000
    assert agent.as_dict()["rows"] == agent.rows


def test_ids_are_prefixed_uuids(agent):
    prefixes = {"episodic_memory": "ep_mem", "semantic_memory": "sem_item", "procedural_memory": "proc_item",
                "resource_memory": "res_item", "knowledge_vault": "kv_item", "messages": "message"}
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    with _connect(agent.db_path) as conn:
        for table, prefix in prefixes.items():
            ids = [r[0] for r in conn.execute(f"SELECT id FROM {table}")]
            assert all(re.fullmatch(f"{prefix}-{uuid4}", i) for i in ids)


def test_embeddings_are_padded_float32_base64(agent):
    with _connect(agent.db_path) as conn:
        for table, columns in EMBEDDING_COLUMNS.items():
            for column in columns:
                value = conn.execute(f"SELECT {column} FROM {table} LIMIT 1").fetchone()[0]
                vector = decode_embedding(value)
                assert len(vector) == EMBEDDING_DIM
                assert any(vector[:ACTIVE_DIM])
                assert not any(vector[ACTIVE_DIM:])


def test_embeddings_dominate_the_file(agent):
    with _connect(agent.db_path) as conn:
        total = sum(
            conn.execute(f"SELECT sum(length({c})) FROM {table}").fetchone()[0]
            for table, columns in EMBEDDING_COLUMNS.items() for c in columns
        )
    assert total / agent.size_bytes > 0.75  # about 85 % at large scales, fixed overhead at scale 1


def test_fts_finds_a_row_by_one_of_its_words(agent):
    with _connect(agent.db_path) as conn:
        for table, columns in FTS_COLUMNS.items():
            row_id, text = conn.execute(f"SELECT id, {columns[0]} FROM {table} ORDER BY rowid LIMIT 1").fetchone()
            word = max(re.findall(r"[A-Za-z]+", text), key=len)
            found = [r[0] for r in conn.execute(
                f"SELECT {table}.id FROM {table}_fts JOIN {table} ON {table}.rowid = {table}_fts.rowid "
                f"WHERE {table}_fts MATCH ?", (f'"{word}"',))]
            assert row_id in found


def test_same_seed_same_content(tmp_path):
    first = create_sample_agent(tmp_path / "a", scale=0.2, seed=7)
    second = create_sample_agent(tmp_path / "b", scale=0.2, seed=7)
    other = create_sample_agent(tmp_path / "c", scale=0.2, seed=8)
    assert _content(first.db_path) == _content(second.db_path)
    assert _content(first.db_path) != _content(other.db_path)
    for name in ("mirix.yaml", ".env", "logs/agent.log", "logs/security.log"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_size_grows_linearly_with_scale(tmp_path):
    half = create_sample_agent(tmp_path / "half", scale=0.5)
    one = create_sample_agent(tmp_path / "one", scale=1)
    assert 1.7 < one.size_bytes / half.size_bytes < 2.1
    assert one.rows["episodic_memory"] == 2 * half.rows["episodic_memory"]


def test_mutate_changes_rows_as_reported(tmp_path):
    info = create_sample_agent(tmp_path / "agent", scale=0.5, seed=1)
    before = _counts(info.db_path)
    stats = mutate_agent(info.directory, fraction=0.05, seed=2)
    after = _counts(info.db_path)
    for table in (*MEMORY_TABLES, "messages"):
        assert after[table] == before[table] + stats.inserted[table] - stats.deleted.get(table, 0)
    assert sum(stats.inserted.values()) > 0 and sum(stats.deleted.values()) > 0
    memory_updates = sum(stats.updated[t] for t in MEMORY_TABLES)
    assert memory_updates == sum(stats.inserted[t] for t in MEMORY_TABLES)
    with _connect(info.db_path) as conn:
        touched = sum(conn.execute(
            f"SELECT count(*) FROM {t} WHERE json_extract(last_modify, '$.operation') = 'updated'").fetchone()[0]
            for t in MEMORY_TABLES)
    assert memory_updates - sum(stats.deleted[t] for t in MEMORY_TABLES) <= touched <= memory_updates
    growth = stats.bytes_after - stats.bytes_before
    assert 0.03 * stats.bytes_before < growth < 0.1 * stats.bytes_before
    _assert_healthy(info.db_path)
    assert check_write_invariant(info.db_path)


def test_mutate_is_deterministic_with_a_seed(tmp_path):
    dirs = [create_sample_agent(tmp_path / name, scale=0.2, seed=3).directory for name in ("a", "b")]
    stats = [mutate_agent(d, fraction=0.05, seed=4) for d in dirs]
    assert stats[0] == stats[1]
    assert _content(Path(dirs[0]) / "sqlite.db") == _content(Path(dirs[1]) / "sqlite.db")


def test_mutate_works_while_another_connection_reads(tmp_path):
    info = create_sample_agent(tmp_path / "agent", scale=0.2)
    with _connect(info.db_path) as reader:
        reader.execute("BEGIN")
        seen = reader.execute("SELECT count(*) FROM messages").fetchone()[0]
        stats = mutate_agent(info.directory, fraction=0.05, seed=1)
        assert reader.execute("SELECT count(*) FROM messages").fetchone()[0] == seen
        reader.execute("COMMIT")
        now = reader.execute("SELECT count(*) FROM messages").fetchone()[0]
        assert now == seen + stats.inserted["messages"] - stats.deleted["messages"]
    _assert_healthy(info.db_path)


def test_write_transactions_keep_the_invariant(tmp_path):
    info = create_sample_agent(tmp_path / "agent", scale=0.2)
    assert check_write_invariant(info.db_path)
    before = _counts(info.db_path)
    assert write_transactions(info.db_path, 25, seed=1) == 25
    after = _counts(info.db_path)
    assert after["messages"] == before["messages"] + 25
    assert after["episodic_memory"] == before["episodic_memory"] + 25
    with _connect(info.db_path) as conn:
        assert conn.execute("SELECT value FROM agent_stats WHERE name = 'writes'").fetchone() == (25,)
    mutate_agent(info.directory, fraction=0.05, seed=2)
    assert check_write_invariant(info.db_path)
    _assert_healthy(info.db_path)


def test_snapshots_taken_during_writes_are_consistent(tmp_path):
    info = create_sample_agent(tmp_path / "agent", scale=0.2)
    writer = threading.Thread(target=write_transactions, args=(info.db_path, 150), kwargs={"seed": 5})
    writer.start()
    copies = 0
    while writer.is_alive() or copies == 0:
        copy = tmp_path / f"copy{copies}.db"
        with closing(sqlite3.connect(info.db_path, timeout=60)) as source, \
                closing(sqlite3.connect(copy)) as target:
            source.backup(target)
        assert check_write_invariant(copy)
        copies += 1
    writer.join()
    assert check_write_invariant(info.db_path)


def test_refuses_to_overwrite_an_agent(agent, tmp_path):
    with pytest.raises(FileExistsError):
        create_sample_agent(agent.directory)
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only" / "mirix.yaml").write_text("agent_name: mine\n")
    with pytest.raises(FileExistsError):
        create_sample_agent(tmp_path / "config_only")
    (tmp_path / "empty_db").mkdir()
    (tmp_path / "empty_db" / "sqlite.db").touch()
    assert create_sample_agent(tmp_path / "empty_db", scale=0.05).rows["messages"] > 0


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_rejects_bad_scale(tmp_path, scale):
    with pytest.raises(ValueError):
        create_sample_agent(tmp_path / "agent", scale=scale)


def test_mutate_rejects_missing_agent_and_bad_fraction(tmp_path):
    with pytest.raises(FileNotFoundError):
        mutate_agent(tmp_path / "nothing")
    info = create_sample_agent(tmp_path / "agent", scale=0.05)
    with pytest.raises(ValueError):
        mutate_agent(info.directory, fraction=0)
