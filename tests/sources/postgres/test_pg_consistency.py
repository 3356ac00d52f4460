"""A PostgreSQL snapshot is one moment while the agent writes, and a killed backup harms nothing.

Another connection moves value between rows in a loop — between two rows of the first table
read and from it to the last table read — while backups run: in every snapshot the total is
the same.  A ``kill -9`` mid-way leaves the earlier snapshots whole and the next backup works.
"""
from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest

import pg_agent_schema as schema
from pg_agent_schema import cli_pg_env, server  # noqa: F401  (server: a fixture)
from helpers import kill_group, ok, popen_cli, run_cli
from snapstore.export.postgres_content import copy_field, copy_rows
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.sources.postgres.reader import open_pg_capture

pytestmark = pytest.mark.postgres

TOTAL = 20 * 1000 + 1000


def _balances(repo: Repository, snap, table: str) -> int:
    capture = open_pg_capture(repo, snap)
    return sum(int(copy_field(row[1])) for row in copy_rows(capture.copy_data(table)))


def _mover(dsn: str, stop: threading.Event, moved: list[int]) -> None:
    rng = random.Random(7)
    with psycopg.connect(dsn) as conn:
        while not stop.is_set():
            a, b = rng.sample(range(1, 21), 2)
            amount = rng.randint(1, 50)
            with conn.transaction():
                conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, f"acct-{a}"))
                if rng.random() < 0.5:
                    conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, f"acct-{b}"))
                else:
                    conn.execute("UPDATE zz_ledger SET balance = balance + %s", (amount,))
            moved[0] += 1


def test_every_snapshot_is_one_moment_while_value_moves(server, tmp_path):
    name = server.create_database()
    with psycopg.connect(server.dsn(name), autocommit=True) as conn:
        schema.create(conn, rows=600)
        conn.execute("CREATE TABLE zz_ledger (id text PRIMARY KEY, balance bigint)")
        conn.execute("INSERT INTO zz_ledger VALUES ('ledger', 1000)")
    repo_path = tmp_path / "repo"
    ok(run_cli("init", repo=repo_path))
    stop, moved = threading.Event(), [0]
    mover = threading.Thread(target=_mover, args=(server.dsn(name), stop, moved))
    mover.start()
    try:
        during = []
        for _ in range(4):
            before = moved[0]
            ok(run_cli("backup", "--db", server.url(name), "--read-all", repo=repo_path, env=cli_pg_env(server)))
            during.append(moved[0] - before)
    finally:
        stop.set()
        mover.join()
    assert sum(during) > 0, "no transfer happened while the backups ran"
    repo = Repository.open(repo_path)
    snaps = list_snapshots(repo)
    assert len(snaps) == 4
    for snap in snaps:
        assert _balances(repo, snap, "accounts") + _balances(repo, snap, "zz_ledger") == TOTAL


def test_kill_9_mid_backup_leaves_earlier_snapshots_whole(server, tmp_path):
    name = server.create_database()
    with psycopg.connect(server.dsn(name), autocommit=True) as conn:
        schema.create(conn, rows=200)
    repo_path = tmp_path / "repo"
    ok(run_cli("init", repo=repo_path))
    url = server.url(name)
    ok(run_cli("backup", "--db", url, repo=repo_path, env=cli_pg_env(server)))
    first = Repository.open(repo_path).snapshot_ids()
    with psycopg.connect(server.dsn(name), autocommit=True) as conn:
        # ~40 MB of new rows: the second backup is still writing packs when killed
        conn.execute("CREATE TABLE bulk (id bigint PRIMARY KEY, payload text)")
        conn.execute("INSERT INTO bulk SELECT i, string_agg(md5(random()::text), '') FROM generate_series(1, 8000) i, "
                     "generate_series(1, 150) GROUP BY i")
    proc = popen_cli("backup", "--db", url, repo=repo_path, env=cli_pg_env(server))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith("pack.tmp-") for p in (repo_path / "data").rglob("*")):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the backup ended before it could be killed"
    kill_group(proc)
    repo = Repository.open(repo_path)
    assert repo.snapshot_ids() == first
    ok(run_cli("verify", "--full", repo=repo_path))
    ok(run_cli("export", first[0], tmp_path / "first", repo=repo_path, env=cli_pg_env(server)))
    ok(run_cli("verify-folder", tmp_path / "first"))
    ok(run_cli("backup", "--db", url, repo=repo_path, env=cli_pg_env(server)))
    latest = open_pg_capture(Repository.open(repo_path), "latest")
    assert latest.table("bulk").row_count == 8000
    with psycopg.connect(server.dsn(name)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (name,)).fetchone()[0] == 0  # the killed backup's sessions are gone
