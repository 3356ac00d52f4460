"""A snapshot taken while a writer process keeps committing is one consistent database.

A separate writer process commits transactions that each insert one message and
one episodic memory and bump ``agent_stats.writes`` (the sample agent's
invariant: ``count(messages) - messages_at_create == count(episodic_memory) -
episodic_at_create == writes`` in every committed state).  While it runs, the
``snapstore backup`` command is run several times; every snapshot, dumped with
the CLI, must pass ``PRAGMA integrity_check`` and FTS5's own integrity check and
satisfy the invariant exactly, i.e. hold the row counts of one single moment,
and that moment must lie within the backup's run.

Cases: WAL with SQLite's default auto-checkpoint (checkpoints happen while we
read), WAL with auto-checkpoint off (nearly all data lives in the ``-wal`` file),
WAL with a second process running PASSIVE/FULL/RESTART/TRUNCATE checkpoints in a
loop, and a rollback-journal (``journal_mode=DELETE``) database.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import (DB_PATH, fts_integrity_check, integrity_check, ok, run_cli, wait_for, write_counts)
from snapstore import sample_agent

BACKUPS = 4
PAUSE_S = "0.01"  # writer's pause between commits: keeps the database growing only a few MB per second

# argv: db stop-file mode seed pause.  mode "sample": batches of the library's
# write_transactions (a new connection per batch, default auto-checkpoint);
# otherwise mode is the wal_autocheckpoint value of one long-lived connection.
WRITER = r"""
import random, sys, time
from datetime import datetime, timedelta
from pathlib import Path

db, stop, mode, seed, pause = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
if mode == "sample":
    from snapstore.sample_agent import write_transactions
    batch = 0
    while not stop.exists():
        write_transactions(db, 3, seed=seed * 1_000_000 + batch)
        batch += 1
        time.sleep(pause)
else:
    from snapstore.sample_agent.activity import connect, transaction
    from snapstore.sample_agent.rows import Owner, episodic_row, insert_rows, message_row

    rng = random.Random(seed)
    conn = connect(db)
    conn.execute(f"PRAGMA wal_autocheckpoint={int(mode)}")
    owner = Owner.load(conn)
    moment = datetime(2031, 1, 1)
    while not stop.exists():
        moment += timedelta(seconds=rng.uniform(1, 30))
        with transaction(conn):
            insert_rows(conn, "messages", [message_row(rng, owner, moment)])
            insert_rows(conn, "episodic_memory", [episodic_row(rng, owner, moment)])
            conn.execute("UPDATE agent_stats SET value = value + 1 WHERE name = 'writes'")
        time.sleep(pause)
    conn.close()
"""

# argv: db stop-file stats-out.  Cycles through every checkpoint mode; writes what happened.
CHECKPOINTER = r"""
import json, sqlite3, sys, time
from pathlib import Path

db, stop, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
conn = sqlite3.connect(db, timeout=0.2, isolation_level=None)
modes = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"]
stats = {m: {"runs": 0, "busy": 0, "copied": 0} for m in modes}
i = 0
while not stop.exists():
    mode = modes[i % len(modes)]
    i += 1
    stats[mode]["runs"] += 1
    try:
        busy, log, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    except sqlite3.OperationalError:
        busy, copied = 1, 0
    if busy:
        stats[mode]["busy"] += 1
    elif copied > 0:
        stats[mode]["copied"] += 1
    time.sleep(0.005)
conn.close()
out.write_text(json.dumps(stats))
"""


def writes(db: Path) -> int:
    return write_counts(db)[2]["writes"]


def start(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_all(stop_file: Path, procs: list[subprocess.Popen]) -> None:
    stop_file.touch()
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        assert proc.returncode == 0, f"helper process failed:\n{err}"


# Regression: POSIX (fcntl) locks belong to the process and closing ANY descriptor
# of a file drops them all.  An earlier capture opened and closed the database and
# -shm files in the process holding the read transaction, so writers committed and
# checkpoints copied newer frames into the file mid-read; these cases caught it.
@pytest.mark.parametrize("case", [
    "wal-autocheckpoint", "wal-no-checkpoint", "wal-concurrent-checkpoint", "rollback-journal",
])
def test_snapshot_while_writing_is_one_consistent_moment(tmp_path, case):
    seed = {"wal-autocheckpoint": 1, "wal-no-checkpoint": 2, "wal-concurrent-checkpoint": 3,
            "rollback-journal": 4}[case]
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=1, seed=seed)
    db, config = Path(agent.db_path), agent.config_path
    if case == "rollback-journal":
        conn = sqlite3.connect(db, isolation_level=None)
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
        conn.close()
        assert not Path(f"{db}-wal").exists()
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    assert writes(db) == 0 and sample_agent.check_write_invariant(db)

    stop_file = tmp_path / "stop"
    writer_mode = {"wal-autocheckpoint": "sample", "wal-no-checkpoint": "0",
                   "wal-concurrent-checkpoint": "0", "rollback-journal": "1000"}[case]
    procs = [start(WRITER, db, stop_file, writer_mode, seed, PAUSE_S)]
    ckpt_stats = tmp_path / "checkpoints.json"
    if case == "wal-concurrent-checkpoint":
        procs.append(start(CHECKPOINTER, db, stop_file, ckpt_stats))

    taken = []  # (snapshot id, writes seen before the backup, writes seen after it)
    wal_sizes = []
    try:
        wait_for(lambda: writes(db) >= 30, what="the writer to commit")
        for _ in range(BACKUPS):
            before = writes(db)
            wal_sizes.append(os.path.getsize(f"{db}-wal") if Path(f"{db}-wal").exists() else 0)
            result = ok(run_cli("backup", "--config", config, "--json", repo=repo))
            after = writes(db)
            taken.append((json.loads(result.stdout)["snapshot_id"], before, after))
            # Let the writer move on before the next backup, so every snapshot is a new moment.
            wait_for(lambda: writes(db) >= after + 10, what="the writer to continue")
    finally:
        stop_all(stop_file, procs)

    assert sample_agent.check_write_invariant(db)
    seen = []
    for n, (sid, before, after) in enumerate(taken):
        out = tmp_path / f"snapshot{n}.db"
        ok(run_cli("dump", sid, DB_PATH, "--out", out, repo=repo))
        assert integrity_check(out) == "ok", f"snapshot {n} ({case})"
        fts_integrity_check(out)
        messages, episodes, stats = write_counts(out)
        w = stats["writes"]
        assert messages - stats["messages_at_create"] == w, f"snapshot {n}: messages do not match writes"
        assert episodes - stats["episodic_at_create"] == w, f"snapshot {n}: episodic rows do not match writes"
        assert before <= w <= after, f"snapshot {n} holds writes={w}, outside its backup's run [{before}, {after}]"
        seen.append(w)
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen

    if case == "wal-no-checkpoint":
        # Nearly everything the snapshots hold past the initial load was only in the WAL.
        assert min(wal_sizes) > 1_000_000, wal_sizes
    if case == "wal-concurrent-checkpoint":
        stats = json.loads(ckpt_stats.read_text())
        assert sum(s["copied"] for s in stats.values()) > 0, stats
        assert stats["RESTART"]["runs"] + stats["TRUNCATE"]["runs"] > 0, stats
    if case == "rollback-journal":
        conn = sqlite3.connect(out, isolation_level=None)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        conn.close()
