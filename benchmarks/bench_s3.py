#!/usr/bin/env python3
"""Local repository vs SeaweedFS on loopback vs restic to the same SeaweedFS (issue 11's benchmark).

    python benchmarks/bench_s3.py [--scale N] [--workdir DIR] [--no-restic] [--rounds N]

One sample agent (`--scale`, 200 is about 1 GB).  Steps, each for every target:
initial backup, a 1% day (`mutate_agent(0.01)`) and its backup, a backup with
no change; then `verify --full` (restic: `check --read-data`), a whole
restore of the database (restic: `restore latest`) and a dump of the database
file (restic: `dump latest PATH`).  Reported: wall time, bytes uploaded (the
growth of the bucket prefix / directory), for snapstore on S3 the bytes
downloaded by the no-change backup (its storage counts response bodies), and
the peak RSS of the largest process and the CPU time (user + sys, workers included)
of each read command (read commands run ``--rounds`` times, interleaved; the median
time is reported).  snapstore
backups run in this process (so the traffic counters can be read); everything
else is a subprocess.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from snapstore.backup import backup_agent
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source
from snapstore.storage.cache import CachedStorage
from snapstore.testing.seaweedfs import SeaweedS3

BUCKET = "bench"
RESTIC_PASSWORD = "snapstore-benchmark"


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bucket_bytes(client, prefix: str) -> int:
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        total += sum(o["Size"] for o in page.get("Contents", ()))
    return total


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def command(cmd: list[str], env: dict | None = None, stdout=subprocess.DEVNULL) -> tuple[float, float, float]:
    """Run a command to completion: wall seconds, the peak RSS of its largest process (MiB) and
    the CPU seconds (user + sys) of the command and its workers, as GNU time reports them (the
    command is started by ``/usr/bin/time``, a small process: a child forked from this
    benchmark would inherit its high-water mark).  On a shared machine the CPU time is the
    steadier figure: wall time also counts waiting for cores other processes hold."""
    with tempfile.NamedTemporaryFile("r", prefix="rss-") as rss:
        timer = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss.name] if os.path.exists("/usr/bin/time") else []
        start = time.perf_counter()
        subprocess.run(timer + cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, check=True)
        seconds = time.perf_counter() - start
        fields = rss.read().split()
    if len(fields) < 3:
        return seconds, 0.0, 0.0
    return seconds, int(fields[-3]) / 1024, float(fields[-2]) + float(fields[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=20)
    ap.add_argument("--workdir")
    ap.add_argument("--no-restic", action="store_true")
    ap.add_argument("--rounds", type=int, default=1, help="run the read commands this many times, interleaved "
                    "(the median is reported)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-s3-"))
    server = SeaweedS3(work / "weed").start()
    try:
        import boto3
        import botocore.config
        client = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=server.access_key,
                              aws_secret_access_key=server.secret_key, region_name="us-east-1",
                              config=botocore.config.Config(s3={"addressing_style": "path"}))
        client.create_bucket(Bucket=BUCKET)
        os.environ.update(server.env(), SNAPSTORE_CACHE_DIR=str(work / "cache"))
        restic = None if args.no_restic else shutil.which("restic")
        renv = dict(os.environ, RESTIC_PASSWORD=RESTIC_PASSWORD, RESTIC_CACHE_DIR=str(work / "restic-cache"))
        restic_repo = f"s3:{server.endpoint}/{BUCKET}/restic"
        local, s3url = work / "local-repo", f"s3:{server.endpoint}/{BUCKET}/snapstore"
        agent = create_sample_agent(work / "agent", scale=args.scale, seed=1)
        db = Path(agent.db_path)
        print(f"sample agent: {db.stat().st_size / 2**20:.1f} MiB database (scale {args.scale:g})", flush=True)
        Repository.init(local)
        Repository.init(s3url)
        if restic:
            subprocess.run([restic, "-r", restic_repo, "init"], env=renv, check=True, capture_output=True)
        size_of = {"local": lambda: dir_bytes(local), "s3": lambda: bucket_bytes(client, "snapstore/"),
                   "restic": lambda: bucket_bytes(client, "restic/")}
        rows = []

        def step(label: str) -> None:
            source = load_agent_source(agent.config_path)
            db.read_bytes()  # warm page cache for every target alike
            for target in ("local", "s3", "restic"):
                if target == "restic" and not restic:
                    continue
                before = size_of[target]()
                down = ""
                if target == "restic":
                    seconds, _ = timed(lambda: subprocess.run(
                        [restic, "-r", restic_repo, "backup", "--host", "bench", str(work / "agent")],
                        env=renv, check=True, capture_output=True))
                else:
                    repo = Repository.open(local if target == "local" else s3url)
                    seconds, _ = timed(lambda: backup_agent(repo, source))
                    repo.close()
                    if target == "s3":
                        inner = repo.storage.inner if isinstance(repo.storage, CachedStorage) else repo.storage
                        down = f"{inner.traffic.downloaded / 1024:.1f} KiB"
                rows.append((label, target, f"{seconds:.2f} s", "", f"{(size_of[target]() - before) / 2**20:.2f} MiB",
                             down, ""))
                print(" | ".join(rows[-1]), flush=True)

        step("initial")
        mutate_agent(work / "agent", fraction=0.01, seed=2)
        step("1% day")
        step("no change")
        snap = [str(Path(sys.executable).with_name("snapstore"))]
        db_rel = "database/sqlite.db"

        reads = []  # (label, target, command, env, output file or directory)
        for target, repo in (("local", str(local)), ("s3", s3url)):
            reads += [("verify --full", target, [*snap, "--repo", repo, "verify", "--full"], None, None),
                      ("restore", target, [*snap, "--repo", repo, "restore", "latest", "--to",
                                           str(work / f"restored-{target}.db")], None, work / f"restored-{target}.db"),
                      ("dump", target, [*snap, "--repo", repo, "dump", "latest", db_rel], None,
                       work / f"dump-{target}.db")]
        if restic:
            reads += [("verify --full", "restic", [restic, "-r", restic_repo, "check", "--read-data"], renv, None),
                      ("restore", "restic", [restic, "-r", restic_repo, "restore", "latest", "--target",
                                             str(work / "restic-restore")], renv, work / "restic-restore"),
                      ("dump", "restic", [restic, "-r", restic_repo, "dump", "latest", str(db)], renv,
                       work / "dump-restic.db")]
        order = ["local", "s3", "restic"]
        reads.sort(key=lambda r: (["verify --full", "restore", "dump"].index(r[0]), order.index(r[1])))
        times: dict[tuple[str, str], list[float]] = {}
        peak: dict[tuple[str, str], float] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for round_no in range(args.rounds):  # interleaved rounds: a busy machine slows every target alike
            for label, target, cmd, env, out in reads:
                if out is not None and out.is_dir():
                    shutil.rmtree(out)
                elif out is not None and label == "restore":
                    out.unlink(missing_ok=True)
                with open(out if label == "dump" else os.devnull, "wb") as f:
                    seconds, rss, cpu_s = command(cmd, env, stdout=f)
                times.setdefault((label, target), []).append(seconds)
                cpu.setdefault((label, target), []).append(cpu_s)
                peak[(label, target)] = max(peak.get((label, target), 0.0), rss)
                print(f"round {round_no + 1}: {label} | {target} | {seconds:.2f} s | CPU {cpu_s:.2f} s | {rss:.0f} MiB",
                      flush=True)
        def median(runs: list[float]) -> str:
            runs = sorted(runs)
            return f"{runs[len(runs) // 2]:.2f} s" + (f" (runs: {', '.join(f'{t:.2f}' for t in runs)})"
                                                      if len(runs) > 1 else "")

        for label, target, *_ in reads:
            rows.append((label, target, median(times[(label, target)]), median(cpu[(label, target)]), "", "",
                         f"{peak[(label, target)]:.0f} MiB"))
        for a, b in (("restored-local.db", "restored-s3.db"), ("dump-local.db", "dump-s3.db")):
            if (work / a).read_bytes() != (work / b).read_bytes():
                raise SystemExit(f"{b} differs from {a}")
        print("\n| step | target | time | CPU (user+sys) | uploaded | downloaded (snapstore S3) | peak RSS |\n"
              "|---|---|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return 0
    finally:
        server.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
