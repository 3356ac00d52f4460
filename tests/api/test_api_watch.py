"""``AgentWrapper.watch``: ``snapstore watch`` from the API, on the sample agent in a thread."""
from __future__ import annotations

import threading
from pathlib import Path

from api_helpers import db_execute, db_rows
from helpers import DB_PATH, ok, run_cli, wait_for
from snapstore import AgentWrapper

DB = Path("configs/sqlite.db")
CONFIG = Path("configs/mirix.yaml")


def test_watch_from_the_api_snapshots_changes_until_stopped(home):
    agent = AgentWrapper(CONFIG)
    ticks, stop = [], threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            agent.watch(stop, interval=0.05, on_tick=ticks.append)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(lambda: ticks or failure, timeout=300, what="the first snapshot")
        db_execute(DB, "DELETE FROM episodic_memory WHERE rowid % 2 = 0")
        wait_for(lambda: any(t.capture == "incremental" for t in ticks) or failure, timeout=300,
                 what="an incremental snapshot")
        expected = db_rows(DB, "episodic_memory")
    finally:
        stop.set()
        thread.join()
    assert not failure, failure
    first, changed, last = ticks[0], next(t for t in ticks if t.capture == "incremental"), ticks[-1]
    assert first.capture == "full" and last.final and last.backup is not None
    assert 0 < changed.pages_read < changed.page_count / 4
    assert all(t.backup is None for t in ticks[1:-1] if t is not changed)  # nothing else changed
    records = [t.backup.snapshot.database["watch"] for t in (first, changed, last)]
    assert len({r["run"] for r in records}) == 1 and records[0]["interval_s"] == 0.05
    dumped = home / "changed.db"
    ok(run_cli("dump", changed.backup.snapshot.id, DB_PATH, "--out", dumped, repo=agent.repository_path))
    assert db_rows(dumped, "episodic_memory") == expected
    assert [s.id for s in agent.snapshots()][-3:] == [first.backup.snapshot.id, changed.backup.snapshot.id,
                                                      last.backup.snapshot.id]


def test_watch_from_the_api_refuses_a_bad_interval(home):
    import pytest

    from snapstore.errors import UsageError

    with pytest.raises(UsageError, match="invalid interval"):
        AgentWrapper(CONFIG).watch(threading.Event(), interval="soon")
