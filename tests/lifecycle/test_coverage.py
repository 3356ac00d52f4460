"""``snapshots`` shows the time ranges ``restore --at`` reaches: watch runs and the gaps between."""
from __future__ import annotations

import json
import sqlite3

from helpers import ok, run_cli
from snapstore.repository import Repository
from snapstore.sources.agent import load_agent_source
from snapstore.watch import Watcher


def _db(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    return path


def _write(db):
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO t VALUES (randomblob(100))")
    conn.close()


def _run(repo_path, db, changes: int, interval_s, final: bool) -> list[str]:
    repo = Repository.open(repo_path)
    watcher = Watcher(repo, load_agent_source(db_path=db), interval_s=interval_s)
    try:
        ids = [watcher.tick().backup.snapshot.id]
        for n in range(changes):
            _write(db)
            ids.append(watcher.tick(final=final and n == changes - 1).backup.snapshot.id)
        assert watcher.tick().backup is None  # nothing changed: no snapshot, the run goes on
    finally:
        watcher.close()
        repo.close()
    return ids


def test_snapshots_show_watch_runs_and_the_gaps_between(tmp_path):
    db = _db(tmp_path / "agent.db")
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    before = json.loads(ok(run_cli("backup", "--db", db, "--json", repo=repo)).stdout)["snapshot_id"]
    first = _run(repo, db, 2, 60, final=True)
    _write(db)
    between = json.loads(ok(run_cli("backup", "--db", db, "--json", repo=repo)).stdout)["snapshot_id"]
    second = _run(repo, db, 1, None, final=False)

    rows = json.loads(ok(run_cli("snapshots", "--json", repo=repo)).stdout)
    runs = {r["id"]: r["watch"] and r["watch"]["run"] for r in rows}
    assert runs[before] is None and runs[between] is None
    assert len({runs[i] for i in first}) == 1 and len({runs[i] for i in second}) == 1
    assert runs[first[0]] != runs[second[0]]
    assert [rows[[r["id"] for r in rows].index(i)]["watch"]["seq"] for i in first] == [1, 2, 3]

    spans = json.loads(ok(run_cli("snapshots", "--coverage", "--json", repo=repo)).stdout)
    times = {r["id"]: r["time"] for r in rows}
    assert [(s["kind"], s["start"], s["end"], s["snapshots"]) for s in spans] == [
        ("gap", times[before], times[first[0]], 1),
        ("watch", times[first[0]], times[first[-1]], 3),
        ("gap", times[first[-1]], times[second[0]], 1),
        ("watch", times[second[0]], times[second[-1]], 2),
    ]
    assert spans[1]["granularity"] == "every 60 s" and spans[1]["stopped"] and spans[1]["notes"] == []
    assert spans[3]["interval_s"] is None and not spans[3]["stopped"]
    assert spans[3]["notes"] == ["no final snapshot: watch was killed or is still running"]

    text = ok(run_cli("snapshots", repo=repo)).stdout
    assert "Point in time (restore --at) reaches" in text
    assert f"watch run {runs[first[0]][:8]}: every 60 s, 3 snapshots, stopped" in text
    assert "gap: watch not running; 1 snapshot in it, each one moment" in text
    # inside a run, restore --at a time between two snapshots gives the earlier one
    middle = json.loads(ok(run_cli("restore", "--at", times[first[1]], "--to", tmp_path / "at.db", "--json",
                                   repo=repo)).stdout)
    assert middle["snapshot_id"] == first[1]


def test_a_repository_without_watch_lists_no_coverage_unless_asked(tmp_path):
    db = _db(tmp_path / "agent.db")
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    assert "no point in time" in ok(run_cli("snapshots", "--coverage", repo=repo)).stdout
    ok(run_cli("backup", "--db", db, repo=repo))
    assert "Point in time" not in ok(run_cli("snapshots", repo=repo)).stdout
    spans = json.loads(ok(run_cli("snapshots", "--coverage", "--json", repo=repo)).stdout)
    assert [(s["kind"], s["snapshots"], s["granularity"]) for s in spans] == [("gap", 1, "each snapshot")]
