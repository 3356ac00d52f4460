"""``snapstore watch``: every snapshot it writes is one committed state, and incremental
ticks read only the pages committed since the previous one.

A writer process commits continuously into a WAL-mode database: commit ``n`` inserts
row ``n`` into ``log`` and sets slot ``n*7919 % SLOTS`` of ``slots`` to ``n``.  A
database holding commits ``1..N`` exactly has log rows ``1..N`` with no gap and every
slot at the newest ``n <= N`` that maps to it -- any mix of two moments breaks one of
these.  Ticks are forced with SIGUSR1 (no wall-clock waits).
"""
from __future__ import annotations

import json
import select
import signal
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import pytest

from helpers import DB_PATH, integrity_check, kill_group, ok, popen_cli, run_cli, table_checksums, wait_for
from snapstore.repository import Repository
from snapstore.sources.agent import load_agent_source
from snapstore.watch import Watcher

SLOTS = 2000
BULK_ROWS = 6000  # ~1600 pages nobody changes: incremental ticks must not read them

WRITER = r"""
import json, sqlite3, sys, time
from pathlib import Path

db, stop, out, truncate_every = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
busy_ms = int(sys.argv[5]) if len(sys.argv) > 5 else 50  # the checkpoints' busy timeout
conn = sqlite3.connect(db, timeout=30, isolation_level=None)
if len(sys.argv) > 6 and sys.argv[6] == "no-autocheckpoint":
    conn.execute("PRAGMA wal_autocheckpoint=0")
n = conn.execute("SELECT coalesce(max(n), 0) FROM log").fetchone()[0]
checkpoints = {"runs": 0, "busy": 0, "max_s": 0.0}
wal_max = 0
while not stop.exists():
    n += 1
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO log VALUES (?, randomblob(200))", (n,))
    conn.execute("UPDATE slots SET n = ?, pad = randomblob(300) WHERE k = ?", (n, n * 7919 %% %(slots)d))
    conn.execute("COMMIT")
    if truncate_every and n %% truncate_every == 0:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        started = time.monotonic()
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        checkpoints["max_s"] = max(checkpoints["max_s"], time.monotonic() - started)
        conn.execute("PRAGMA busy_timeout = 30000")
        checkpoints["runs"] += 1
        checkpoints["busy"] += busy
    if n %% 20 == 0:
        wal_max = max(wal_max, Path(db + "-wal").stat().st_size)
    time.sleep(0.002)
conn.close()
out.write_text(json.dumps({"last": n, "checkpoints": checkpoints, "wal_max": wal_max}))
""" % {"slots": SLOTS}


def make_db(path: Path, bulk_rows: int = BULK_ROWS) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.executescript(f"""
        CREATE TABLE bulk (id INTEGER PRIMARY KEY, pad BLOB);
        CREATE TABLE log (n INTEGER PRIMARY KEY, pad BLOB);
        CREATE TABLE slots (k INTEGER PRIMARY KEY, n INTEGER NOT NULL, pad BLOB);
        WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x + 1 < {bulk_rows})
        INSERT INTO bulk SELECT x, randomblob(900) FROM i;
        WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x + 1 < {SLOTS})
        INSERT INTO slots SELECT x, 0, randomblob(300) FROM i;
    """)
    conn.close()
    return path


def committed_state(db: Path) -> int:
    """N if ``db`` holds exactly commits 1..N (fails otherwise)."""
    assert integrity_check(db) == "ok"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")
        ns = [n for (n,) in conn.execute("SELECT n FROM log ORDER BY n")]
        slots = dict(conn.execute("SELECT k, n FROM slots"))
        bulk = conn.execute("SELECT count(*) FROM bulk").fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    last = len(ns)
    assert ns == list(range(1, last + 1)), "log rows are not a gapless prefix of the commits"
    expected = {k: 0 for k in range(SLOTS)}
    for n in range(1, last + 1):
        expected[n * 7919 % SLOTS] = n
    assert slots == expected, f"slots do not match commit {last}: a mix of moments"
    assert bulk == BULK_ROWS
    return last


def logged(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        return conn.execute("SELECT coalesce(max(n), 0) FROM log").fetchone()[0]
    finally:
        conn.close()


@contextmanager
def writer_stopped_after(writer: subprocess.Popen, stop: Path, running_watch: Callable[[], "WatchProc"]):
    """Kill the watch running now if the block fails (no process left behind); either way tell
    the writer to stop and wait for it (the caller then checks its exit code)."""
    try:
        yield
    except BaseException:
        kill_group(running_watch().proc)
        raise
    finally:
        stop.touch()
        writer.wait()


class WatchProc:
    def __init__(self, db: Path, repo: Path):
        self.proc = popen_cli("watch", "--db", db, "--interval", "1h", "--json", repo=repo)

    def line(self) -> dict:
        # The guard only catches a hang (a watch stuck leaving its worker pool once did).
        poller = select.poll()  # not select(): the test process may hold descriptors past 1024
        poller.register(self.proc.stdout, select.POLLIN | select.POLLHUP)
        assert poller.poll(300_000), "watch printed nothing for 300 s: hung"
        text = self.proc.stdout.readline()
        assert text, f"watch ended: {self.proc.stderr.read()}"
        return json.loads(text)

    def tick(self) -> dict:
        self.proc.send_signal(signal.SIGUSR1)
        return self.line()


def test_watch_snapshots_are_committed_states_across_kill_and_truncate(tmp_path):
    db = make_db(tmp_path / "agent.db")
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    stop, out = tmp_path / "stop", tmp_path / "writer.json"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(stop), str(out), "40"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ticks = []
    watch = WatchProc(db, repo)
    with writer_stopped_after(writer, stop, lambda: watch):
        wait_for(lambda: logged(db) >= 20, what="the writer to commit")
        ticks.append(watch.line())
        for i in range(4):
            seen = logged(db)
            wait_for(lambda: logged(db) >= seen + 30, what="the writer to continue")
            if i == 2:  # a plain backup at the same time: both hold the repository lock shared
                backup = json.loads(ok(run_cli("backup", "--db", db, "--json", repo=repo)).stdout)
                ticks.append(backup | {"capture": "backup"})
            ticks.append(watch.tick())
        kill_group(watch.proc)  # kill -9: no last snapshot, no reader held
        seen = logged(db)
        wait_for(lambda: logged(db) >= seen + 100, what="the writer to continue without watch")
        watch = WatchProc(db, repo)
        restarted = watch.line()
        ticks.append(restarted)
        for _ in range(2):
            seen = logged(db)
            wait_for(lambda: logged(db) >= seen + 30, what="the writer to continue")
            ticks.append(watch.tick())
    assert writer.returncode == 0, writer.stderr.read()
    result = json.loads(out.read_text())
    # The agent checkpoints with TRUNCATE while watch runs; then the final tick and exit.
    conn = sqlite3.connect(db, timeout=0.05, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    conn.close()
    ticks.append(watch.tick())
    watch.proc.send_signal(signal.SIGTERM)
    ticks.append(watch.line())
    assert watch.proc.wait() == 0, watch.proc.stderr.read()

    captures = [t["capture"] for t in ticks]
    assert captures[0] == "full" and restarted["capture"] == "full", captures
    assert "started" in restarted["full_reason"]
    incremental = [t for t in ticks if t["capture"] == "incremental"]
    assert len(incremental) >= 5, captures
    assert captures[captures.index("backup") + 1] == "incremental", captures
    for t in incremental:  # only changed pages, never the bulk (the final one records the run's end)
        assert 0 < t["pages_read"] < t["page_count"] / 4 or (t["final"] and t["pages_read"] == 0), t
    assert ticks[-1]["final"] and not any(t.get("final") for t in ticks[:-1])
    states = []
    for n, t in enumerate(ticks):
        if t["snapshot_id"] is None:
            continue
        dumped = tmp_path / f"snap{n}.db"
        ok(run_cli("dump", t["snapshot_id"], DB_PATH, "--out", dumped, repo=repo))
        states.append(committed_state(dumped))
    assert states == sorted(states) and len(states) >= 9, states
    assert states[-1] == result["last"] == committed_state(db)
    print("writer checkpoints:", result["checkpoints"])


def _dump_equals_live(tmp_path: Path, repo: Path, snapshot_id: str, db: Path, name: str) -> None:
    dumped = tmp_path / f"{name}.db"
    ok(run_cli("dump", snapshot_id, DB_PATH, "--out", dumped, repo=repo))
    assert integrity_check(dumped) == "ok"
    assert table_checksums(dumped) == table_checksums(db), name


def test_watch_follows_a_wal_restart_past_a_mark0_reader_and_rebases_lists(tmp_path):
    db = make_db(tmp_path / "agent.db")
    repo_path = tmp_path / "repo"
    ok(run_cli("init", repo=repo_path))
    repo = Repository.open(repo_path)
    watcher = Watcher(repo, load_agent_source(db_path=db))
    agent = sqlite3.connect(db, timeout=0.05, isolation_level=None)
    try:
        first = watcher.tick()
        assert first.capture == "full"
        agent.execute("UPDATE slots SET n = 1 WHERE k < 10")
        step = watcher.tick()
        assert step.capture == "incremental" and 0 < step.pages_read < 20
        _dump_equals_live(tmp_path, repo_path, step.backup.snapshot.id, db, "step")
        # Everything checkpointed, then a tick with no change: the held reader now has read mark 0.
        agent.execute("PRAGMA wal_checkpoint(PASSIVE)")
        assert watcher.tick().capture == "unchanged"
        assert watcher.follower.held.mark.mark0
        # The agent's TRUNCATE succeeds past a mark-0 reader; the WAL starts a new generation.
        assert agent.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        agent.execute("UPDATE slots SET n = 2 WHERE k < 10")
        after = watcher.tick()
        assert after.capture == "incremental", after.reason
        _dump_equals_live(tmp_path, repo_path, after.backup.snapshot.id, db, "after-restart")
        # A change over more than 1/16 of the pages writes a new base; shrinking the file too.
        agent.execute("UPDATE bulk SET pad = randomblob(900) WHERE id % 3 = 0")
        big = watcher.tick()
        assert big.capture == "incremental" and "patch" not in big.backup.snapshot.file(DB_PATH).chunks.to_doc()
        _dump_equals_live(tmp_path, repo_path, big.backup.snapshot.id, db, "rebased")
        agent.execute("DELETE FROM bulk WHERE id > 100")
        agent.execute("VACUUM")
        small = watcher.tick()
        assert small.capture == "incremental" and small.page_count < first.page_count
        _dump_equals_live(tmp_path, repo_path, small.backup.snapshot.id, db, "vacuumed")
        # A prune between ticks replaces the index files: the next tick reloads the index.
        ok(run_cli("forget", first.backup.snapshot.id, step.backup.snapshot.id, "--prune", repo=repo_path))
        agent.execute("UPDATE slots SET n = 3 WHERE k < 10")
        pruned = watcher.tick()
        assert pruned.capture == "incremental"
        _dump_equals_live(tmp_path, repo_path, pruned.backup.snapshot.id, db, "after-prune")
        # The snapshot watch patches removed (its chunks may be gone): read everything again.
        ok(run_cli("forget", pruned.backup.snapshot.id, "--prune", repo=repo_path))
        agent.execute("UPDATE slots SET n = 4 WHERE k < 10")
        again = watcher.tick()
        assert again.capture == "full" and again.reason == "the previous snapshot was removed"
        _dump_equals_live(tmp_path, repo_path, again.backup.snapshot.id, db, "after-forget")
        ok(run_cli("verify", "--full", repo=repo_path))
        # One run (one Watcher): the full read inside it loses no coverage and is noted.
        spans = json.loads(ok(run_cli("snapshots", "--coverage", "--json", repo=repo_path)).stdout)
        assert [s["kind"] for s in spans] == ["watch"] and spans[0]["run"] == watcher.record["run"]
        assert spans[0]["notes"] == [f"full read at {again.backup.snapshot.time}: the previous snapshot was removed",
                                     "no final snapshot: watch was killed or is still running"]
    finally:
        agent.close()
        watcher.close()
        repo.close()


def test_watch_refuses_a_rollback_journal_database(tmp_path):
    db = tmp_path / "agent.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    ok(run_cli("init", repo=tmp_path / "repo"))
    result = run_cli("watch", "--db", db, repo=tmp_path / "repo")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"snapstore: watch needs WAL mode; {db} uses journal_mode=delete "
        "(switch with PRAGMA journal_mode=WAL, or take snapshots with 'snapstore backup')"]


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_watch_takes_a_last_snapshot_before_exit(tmp_path, signal_name):
    # Over 8192 pages: the full read runs in several forked workers, which must not keep
    # watch's SIGTERM handler (leaving the pool terminates them with SIGTERM; a benchmark run
    # hung there once -- this test did not reproduce that race, it only exercises the path).
    db = make_db(tmp_path / "agent.db", bulk_rows=40_000)
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    watch = WatchProc(db, repo)
    try:
        assert watch.line()["capture"] == "full"
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("INSERT INTO log VALUES (1, x'00')")
        conn.close()
        watch.proc.send_signal(getattr(signal, signal_name))
        last = watch.line()
        assert watch.proc.wait() == 0
    except BaseException:
        kill_group(watch.proc)
        raise
    assert last["capture"] == "incremental"
    _dump_equals_live(tmp_path, repo, last["snapshot_id"], db, "last")


def _watch_a_writer(tmp_path: Path, writer_args: list[str], commits: int) -> tuple[dict, list[dict], Path, Path]:
    """A writer committing while watch runs between SIGUSR1 ticks; (writer's result, ticks, db, repo)."""
    db = make_db(tmp_path / "agent.db")
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    stop, out = tmp_path / "stop", tmp_path / "writer.json"
    watch = WatchProc(db, repo)
    ticks = [watch.line()]  # the full read is done: watch holds its reader before the writer starts
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(stop), str(out), *writer_args],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with writer_stopped_after(writer, stop, lambda: watch):
        for part in (1, 2, 3):
            wait_for(lambda: logged(db) >= commits * part // 3, timeout=600, what="the writer to commit")
            ticks.append(watch.tick())
    assert writer.returncode == 0, writer.stderr.read()
    watch.proc.send_signal(signal.SIGTERM)
    ticks.append(watch.line())
    assert watch.proc.wait() == 0, watch.proc.stderr.read()
    return json.loads(out.read_text()), ticks, db, repo


def _states(tmp_path: Path, repo: Path, ticks: list[dict]) -> list[int]:
    states = []
    for n, t in enumerate(ticks):
        dumped = tmp_path / f"snap{n}.db"
        ok(run_cli("dump", t["snapshot_id"], DB_PATH, "--out", dumped, repo=repo))
        states.append(committed_state(dumped))
    return states


def test_the_agents_truncate_checkpoints_go_through_while_watch_runs(tmp_path):
    """Watch lets go of the WAL when the agent checkpoints: with a 5 s busy timeout not one
    of the agent's TRUNCATE checkpoints comes back busy (before, every one did, after 5 s),
    and every snapshot still equals what the writer committed."""
    result, ticks, db, repo = _watch_a_writer(tmp_path, ["25", "5000"], commits=600)
    checkpoints = result["checkpoints"]
    assert checkpoints["runs"] >= 20 and checkpoints["busy"] == 0, checkpoints
    assert [t["capture"] for t in ticks[1:]] == ["incremental"] * 4, ticks
    states = _states(tmp_path, repo, ticks)
    assert states == sorted(states) and states[-1] == result["last"] == committed_state(db)
    print("writer checkpoints:", checkpoints)


def test_watch_checkpoints_the_wal_of_an_agent_that_never_does(tmp_path):
    """An agent with auto-checkpoint off: alone its WAL holds every frame it ever wrote; with
    watch running it is restarted once it passes CHECKPOINT_FRAMES (watch checkpoints it)."""
    from snapstore.sources.sqlite_follow import CHECKPOINT_FRAMES

    commits = 3000  # at least two frames each: 6000 frames, 24 MB, without watch
    result, ticks, db, repo = _watch_a_writer(tmp_path, ["0", "50", "no-autocheckpoint"], commits=commits)
    page = 4096 + 24
    assert result["wal_max"] < commits * page, result["wal_max"]  # a third of what the writer wrote
    assert result["wal_max"] > CHECKPOINT_FRAMES * page  # it did grow to the threshold first
    assert [t["capture"] for t in ticks[1:]] == ["incremental"] * 4, ticks
    states = _states(tmp_path, repo, ticks)
    assert states == sorted(states) and states[-1] == result["last"] == committed_state(db)
