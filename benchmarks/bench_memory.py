#!/usr/bin/env python3
"""Peak RSS of every snapstore step on one sample agent (issue 14, part 3: bounded memory).

    python benchmarks/bench_memory.py --scale 200 --workdir DIR [--agent AGENT_DIR] [--snapstore CMD]

Creates the sample agent (``snapstore sample-agent DIR --scale N``, ~4.9 MB per unit) unless
``--agent`` names one, then runs, each as its own process: ``init``, ``backup`` (initial),
``backup`` (no change), ``export latest``, ``restore ID --to FILE``, ``verify --full`` and
``import`` of the export into a second repository.  Each step's peak RSS is ``os.wait4``'s
``ru_maxrss``: the step's process and every child it waited for (the sqlite3 shell, forked
workers).  This script stays small on purpose: Linux carries a process's peak RSS across exec,
so a child forked from a large parent would report the parent's peak.  Target: every step
under 300 MiB at 1 GB and at 4 GB.  Prints a Markdown table; ``--keep`` keeps the work dir.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

MiB = 1 << 20
TARGET = 300 * MiB


def run(cmd: list[str], env: dict) -> tuple[int, float, int, str]:
    """(exit code, wall seconds, peak RSS in bytes, stderr) of ``cmd``."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as null, subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=null,
                                                          stderr=subprocess.PIPE) as proc:
        err = proc.stderr.read().decode(errors="replace")
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
    return proc.returncode, time.perf_counter() - started, usage.ru_maxrss * 1024, err


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=200.0)
    ap.add_argument("--agent", type=Path, help="an existing agent directory (mirix.yaml inside)")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--snapstore", default=str(Path(sys.executable).with_name("snapstore")))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    exe = shlex.split(args.snapstore)
    work = args.workdir.resolve()
    if work.exists() and any(work.iterdir()):
        ap.error(f"{work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
    env["SNAPSTORE_CACHE_DIR"] = str(work / "cache")
    try:
        agent = args.agent.resolve() if args.agent else work / "agent"
        if not args.agent:
            subprocess.run([*exe, "sample-agent", str(agent), "--scale", str(args.scale)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        db_size = (agent / "sqlite.db").stat().st_size
        repo, repo2, export = work / "repo", work / "repo2", work / "export"
        rows = []

        def step(name: str, *cmd: str, repository: Path = repo) -> None:
            code, wall, peak, err = run([*exe, "--repo", str(repository), *cmd], env)
            if code:
                raise SystemExit(f"{name} failed ({code}): {err.strip()[-2000:]}")
            rows.append((name, wall, peak))
            print(f"{name:<22} {wall:8.1f} s {peak / MiB:8.1f} MiB", file=sys.stderr, flush=True)

        step("init", "init", "--insecure-no-encryption")
        step("backup (initial)", "backup", "--config", str(agent / "mirix.yaml"))
        step("backup (no change)", "backup", "--config", str(agent / "mirix.yaml"))
        listed = subprocess.run([*exe, "--repo", str(repo), "snapshots", "--json"], env=env, check=True,
                                capture_output=True, text=True).stdout
        doc = json.loads(listed)
        snap_id = (doc if isinstance(doc, list) else doc["snapshots"])[-1]["id"]
        step("export latest", "export", "latest", str(export))
        step("restore --to FILE", "restore", snap_id, "--to", str(work / "restored.db"))
        step("verify --full", "verify", "--full")
        step("init (second repo)", "init", "--insecure-no-encryption", repository=repo2)
        step("import", "import", str(export), repository=repo2)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"Database {db_size / MiB:.0f} MiB; peak RSS per step (os.wait4), target < {TARGET // MiB} MiB.\n")
    print("| step | wall time | peak RSS |\n|---|---:|---:|")
    for name, wall, peak in rows:
        print(f"| `{name}` | {wall:.1f} s | {peak / MiB:.0f} MiB{'' if peak < TARGET else ' (over)'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
