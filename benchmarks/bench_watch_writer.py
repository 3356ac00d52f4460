#!/usr/bin/env python3
"""What `snapstore watch` costs an agent's writer (issue 14: a few ms per checkpoint).

    python benchmarks/bench_watch_writer.py [--rounds 2] [--commits 3000] [--every 100]
                                            [--busy-ms 5000] [--interval 2s] [--workdir DIR]

A writer process (the agent) commits `--commits` small transactions (an insert and an
update, 2 ms apart) into a WAL-mode database of ~6 MB, and every `--every` commits runs its
own `wal_checkpoint(TRUNCATE)` with a busy timeout of `--busy-ms`.  Each round runs the
writer twice, interleaved: without watch, then with `snapstore watch --interval` running
on the database.  Per run, measured inside the writer: the TRUNCATE checkpoints' wall
time (median, max) and how many came back busy, the commits' wall time (median, p99,
max), the writer's own CPU time (getrusage), and the largest -wal file seen after a
commit.  A third run per round, "no checkpoints", sets `wal_autocheckpoint=0` and never
checkpoints: with watch running the WAL must stay bounded (watch checkpoints it).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITER = r"""
import json, os, resource, sqlite3, sys, time
db, commits, every, busy_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
conn = sqlite3.connect(db, timeout=busy_ms / 1000, isolation_level=None)
if every == 0:
    conn.execute("PRAGMA wal_autocheckpoint=0")
ckpt, busy, commit_s, wal_max = [], 0, [], 0
for n in range(1, commits + 1):
    t = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO log (pad) VALUES (randomblob(200))")
    conn.execute("UPDATE slots SET pad = randomblob(300) WHERE k = ?", (n * 7919 % 2000,))
    conn.execute("COMMIT")
    commit_s.append(time.perf_counter() - t)
    if every and n % every == 0:
        t = time.perf_counter()
        busy += conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        ckpt.append(time.perf_counter() - t)
    if n % 50 == 0:
        wal_max = max(wal_max, os.path.getsize(db + "-wal"))
    time.sleep(0.002)
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"ckpt": ckpt, "busy": busy, "commit": commit_s, "wal_max": wal_max,
                  "cpu_s": ru.ru_utime + ru.ru_stime}))
"""


def make_db(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript("""
        CREATE TABLE bulk (id INTEGER PRIMARY KEY, pad BLOB);
        CREATE TABLE log (n INTEGER PRIMARY KEY, pad BLOB);
        CREATE TABLE slots (k INTEGER PRIMARY KEY, pad BLOB);
        WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x + 1 < 6000)
        INSERT INTO bulk SELECT x, randomblob(900) FROM i;
        WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x + 1 < 2000)
        INSERT INTO slots SELECT x, randomblob(300) FROM i;
    """)
    conn.close()


SNAPSTORE: list[str] = []


def snapstore_cmd() -> list[str]:
    if SNAPSTORE:
        return SNAPSTORE
    exe = Path(sys.executable).with_name("snapstore")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snapstore.cli.main"]


def run(work: Path, tag: str, watch: bool, args, every: int) -> dict:
    db = work / f"{tag}.db"
    make_db(db)
    repo = work / f"{tag}.repo"
    subprocess.run(snapstore_cmd() + ["--repo", str(repo), "init"], check=True, capture_output=True)
    watcher = None
    if watch:
        watcher = subprocess.Popen(snapstore_cmd() + ["--repo", str(repo), "watch", "--db", str(db),
                                                      "--interval", args.interval, "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watcher.stdout.readline()  # the first (full) snapshot is taken: watch holds its reader
    try:
        done = subprocess.run([sys.executable, "-c", WRITER, str(db), str(args.commits), str(every),
                               str(args.busy_ms)], check=True, capture_output=True, text=True)
    finally:
        if watcher is not None:
            watcher.send_signal(signal.SIGTERM)
            out, err = watcher.communicate()
            if watcher.returncode != 0:
                raise SystemExit(f"watch failed: {err}")
    doc = json.loads(done.stdout)
    commits = sorted(doc["commit"])
    ckpt = sorted(doc["ckpt"])
    return {"run": tag, "watch": watch, "checkpoints": len(ckpt), "busy": doc["busy"],
            "ckpt_median_ms": round(statistics.median(ckpt) * 1000, 2) if ckpt else None,
            "ckpt_max_ms": round(ckpt[-1] * 1000, 2) if ckpt else None,
            "commit_median_ms": round(statistics.median(commits) * 1000, 3),
            "commit_p99_ms": round(commits[int(len(commits) * 0.99)] * 1000, 3),
            "commit_max_ms": round(commits[-1] * 1000, 2), "writer_cpu_s": round(doc["cpu_s"], 3),
            "wal_max_kib": doc["wal_max"] // 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--commits", type=int, default=3000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--busy-ms", type=int, default=5000)
    ap.add_argument("--interval", default="2s")
    ap.add_argument("--workdir")
    ap.add_argument("--snapstore", help="The command to run snapstore (default: the one beside this Python).")
    ap.add_argument("--no-plain", action="store_true", help="Skip the runs without checkpoints.")
    args = ap.parse_args()
    if args.snapstore:
        SNAPSTORE.extend(args.snapstore.split())
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-watch-writer-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    for r in range(args.rounds):
        for watch in (False, True):
            print(json.dumps(run(work, f"r{r}-ckpt-{'watch' if watch else 'alone'}", watch, args, args.every)),
                  flush=True)
        for watch in () if args.no_plain else (False, True):
            print(json.dumps(run(work, f"r{r}-nockpt-{'watch' if watch else 'alone'}", watch, args, 0)),
                  flush=True)
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
