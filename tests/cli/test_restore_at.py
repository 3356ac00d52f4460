"""``restore --at TIME``: the newest snapshot of the agent taken at or before TIME."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

from helpers import ok, run_cli


def _count(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        conn.close()


def _add_row(db) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO t VALUES (randomblob(100))")
    conn.close()


def test_restore_at_picks_the_newest_snapshot_at_or_before_the_time(tmp_path):
    agent = tmp_path / "agent"
    agent.mkdir()
    db = agent / "sqlite.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    times = []
    for _ in range(3):
        _add_row(db)
        snap = json.loads(ok(run_cli("backup", "--db", db, "--json", repo=repo)).stdout)
        times.append(datetime.fromisoformat(snap["time"]))
    between = times[1] + (times[2] - times[1]) / 2  # after the second snapshot, before the third
    target = tmp_path / "at.db"
    ok(run_cli("restore", "--at", between.isoformat(), "--to", target, repo=repo))
    assert _count(target) == 2
    exact = tmp_path / "exact.db"
    ok(run_cli("restore", "latest", "--at", times[0].isoformat(), "--to", exact, repo=repo))
    assert _count(exact) == 1
    # a naive time is the machine's local time; whole seconds, rounded up past the last snapshot
    # (all three may fall within one second)
    second = (times[2].astimezone() + timedelta(seconds=1)).replace(microsecond=0)
    local_target = tmp_path / "local.db"
    ok(run_cli("restore", "--at", second.replace(tzinfo=None).isoformat(sep=" "), "--to", local_target, repo=repo))
    assert _count(local_target) == sum(t <= second for t in times)

    early = datetime(2000, 1, 1, tzinfo=timezone.utc).isoformat()
    result = run_cli("restore", "--at", early, "--to", tmp_path / "none.db", repo=repo)
    assert result.returncode == 2 and "taken at or before 2000-01-01 00:00:00+00:00" in result.stderr
    result = run_cli("restore", "abcd1234", "--at", early, "--to", tmp_path / "none.db", repo=repo)
    assert result.returncode == 2 and "--at chooses the snapshot itself" in result.stderr
    result = run_cli("restore", "--at", "yesterday", "--to", tmp_path / "none.db", repo=repo)
    assert result.returncode == 2 and "invalid time 'yesterday'" in result.stderr
    result = run_cli("restore", "--to", tmp_path / "none.db", repo=repo)
    assert result.returncode == 2 and "give what to restore" in result.stderr
