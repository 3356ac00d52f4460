"""diff of PostgreSQL snapshots and of a snapshot against the live database: counts equal to
a row-by-row comparison of the two database states read with plain SELECTs."""
import json
from collections import Counter

import psycopg
import pytest

import pg_agent_schema as schema
from pg_agent import copy_database
from pg_agent_schema import cli_pg_env, server  # noqa: F401  (server: a fixture)
from helpers import ok, run_cli

pytestmark = pytest.mark.postgres

KEYS = {"agents": ["id"], "memories": ["id"], "accounts": ["id"], "tools_agents": ["agent_id", "tool_id"],
        "event_log": None}


def state(dsn: str) -> dict:
    """Per table: primary key -> row text (a Counter of row texts for a table without one)."""
    out = {}
    with psycopg.connect(dsn) as conn:
        for table, key in KEYS.items():
            rows = conn.execute(f"SELECT {', '.join(key) if key else 'NULL'}, t::text FROM {table} t").fetchall()
            out[table] = Counter(r[-1] for r in rows) if key is None else {tuple(r[:-1]): r[-1] for r in rows}
    return out


def expected_diff(old: dict, new: dict) -> dict:
    out = {}
    for table, key in KEYS.items():
        a, b = old[table], new[table]
        if key is None:
            out[table] = {"added": sum((b - a).values()), "removed": sum((a - b).values()), "changed": 0}
        else:
            out[table] = {"added": len(b.keys() - a.keys()), "removed": len(a.keys() - b.keys()),
                          "changed": sum(1 for k in a.keys() & b.keys() if a[k] != b[k])}
    return out


def a_day(conn: psycopg.Connection, seed: int) -> None:
    schema.one_percent_day(conn, seed=seed)
    conn.execute("UPDATE accounts SET balance = balance + 5 WHERE id IN ('acct-1', 'acct-2')")
    conn.execute("UPDATE accounts SET balance = balance WHERE id = 'acct-3'")  # a new row version, same content
    conn.execute("DELETE FROM event_log WHERE what = 'event 7'")
    conn.execute("INSERT INTO event_log (what) VALUES ('tab\there'), ('new\nline')")
    conn.execute("DELETE FROM tools_agents WHERE tool_id = 'tool-b'")
    conn.execute("INSERT INTO tools_agents VALUES ('agent-2', %s)", (f"tool-{seed}",))


def counts(doc: dict) -> dict:
    return {t: {k: v[k] for k in ("added", "removed", "changed")} for t, v in doc["tables"].items()}


def test_pg_diff_between_snapshots_and_against_live(server, repo_url):
    db = server.create_database()
    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        schema.create(conn, rows=1500)
    repo, env = repo_url, cli_pg_env(server)
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--db", server.url(db), repo=repo, env=env))
    before = copy_database(server, db)
    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        a_day(conn, seed=4)
    ok(run_cli("backup", "--db", server.url(db), repo=repo, env=env))
    after = copy_database(server, db)
    snaps = json.loads(ok(run_cli("snapshots", "--json", repo=repo)).stdout)
    doc = json.loads(ok(run_cli("diff", snaps[0]["id"], snaps[1]["id"], "--json", repo=repo, env=env)).stdout)
    expected = expected_diff(state(server.dsn(before)), state(server.dsn(after)))
    assert counts(doc) == expected
    assert expected["memories"]["changed"] and expected["memories"]["added"] and expected["memories"]["removed"]
    assert expected["accounts"]["changed"] == 2  # the no-op update is not a change
    assert doc["read"]["ranges_read"] < doc["read"]["ranges"] / 3
    text = ok(run_cli("diff", snaps[0]["id"], snaps[1]["id"], repo=repo, env=env)).stdout
    assert "memories" in text and "(postgresql)" in text
    # live: another day on the server, compared with the latest snapshot
    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        a_day(conn, seed=5)
    live = json.loads(ok(run_cli("diff", "latest", "--live", "--db", server.url(db), "--json",
                                 repo=repo, env=env)).stdout)
    assert counts(live) == expected_diff(state(server.dsn(after)), state(server.dsn(db)))
    assert live["read"]["ranges_read"] < live["read"]["ranges"] / 3
    server.drop_database(before)
    server.drop_database(after)
