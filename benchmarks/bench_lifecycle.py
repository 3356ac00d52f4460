#!/usr/bin/env python3
"""snapstore diff of two consecutive days vs a full `sqlite3 .dump` (issue 12's benchmark, diff part).

    python benchmarks/bench_lifecycle.py [--scale N] [--workdir DIR] [--out docs/benchmarks.md] [--keep] [--reuse]

On the sample agent (`snapstore sample-agent DIR --scale N --seed 1`, ~1 GB at the default
benchmark scale 200):

    day 1      `snapstore backup` into an empty repository, then `snapstore diff DAY1 DAY1`
    day 2      `snapstore sample-agent DIR --mutate 0.01 --seed 2`, then `snapstore backup`
    diff       `snapstore diff DAY1 DAY2 --json` (the figure the target is about)
    .dump      `sqlite3 DB ".output /dev/null" .dump` of the day-2 database

Wall time and each command's own peak RSS (os.wait4 through a small launcher), the best of
RUNS alternated runs; the database and the repository are read once beforehand so both
sides start from a warm page cache.  snapstore runs as installed: its bytecode compiled
(PYTHONDONTWRITEBYTECODE dropped, the .pyc files kept in the work dir) and a local cache
(in the work dir) that day 1's diff filled, as yesterday's diff would have.  Target (issue 12): diff <= 0.2x the time of the .dump.  forget + prune against
restic is not measured here: prune does not exist yet.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_backup as common  # noqa: E402
from bench_postgres import measured  # noqa: E402

SECTION = ("<!-- bench_lifecycle:start -->", "<!-- bench_lifecycle:end -->")
TARGET = 0.2
RUNS = 3


def checked(result: common.Result, what: str) -> common.Result:
    if result.rc != 0:
        raise SystemExit(f"bench_lifecycle: {what} failed (exit {result.rc}): {result.stderr.strip()[-2000:]}")
    return result


def build_days(snapstore: list[str], scale: float, agent: Path, repo: Path, env: dict) -> None:
    """Day 1 (agent, backup, a diff as yesterday's), a 1% day, day 2's backup."""
    shutil.rmtree(agent, ignore_errors=True)
    shutil.rmtree(repo, ignore_errors=True)
    common.progress(f"sample agent at scale {scale}")
    checked(common.run_measured([*snapstore, "sample-agent", str(agent), "--scale", str(scale), "--seed", "1"],
                                env=env), "sample-agent")
    checked(common.run_measured([*snapstore, "--repo", str(repo), "init"], env=env), "init")
    common.progress("backup, day 1")
    checked(common.run_measured([*snapstore, "--repo", str(repo), "backup", "--config", str(agent / "mirix.yaml")],
                                env=env), "backup day 1")
    # A user who diffs daily: yesterday's diff compiled the modules and sorted the older index files.
    day1 = json.loads(checked(common.run_measured([*snapstore, "--repo", str(repo), "snapshots", "--json"], env=env),
                              "snapshots").stdout)[-1]["id"]
    checked(common.run_measured([*snapstore, "--repo", str(repo), "diff", day1, day1, "--json"], env=env), "diff day 1")
    common.progress("a 1% day, backup, day 2")
    checked(common.run_measured([*snapstore, "sample-agent", str(agent), "--mutate", "0.01", "--seed", "2"],
                                env=env), "mutate")
    checked(common.run_measured([*snapstore, "--repo", str(repo), "backup", "--config", str(agent / "mirix.yaml")],
                                env=env), "backup day 2")


def run(args) -> dict:
    snapstore = common.find_snapstore(None)
    scale = args.scale or common.default_scale(snapstore)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-lifecycle-"))
    work.mkdir(parents=True, exist_ok=True)
    agent, repo = work / "agent", work / "repo"
    db = agent / "sqlite.db"
    env = common.cli_env() if hasattr(common, "cli_env") else {k: v for k, v in os.environ.items()
                                                               if not k.startswith("SNAPSTORE_")}
    # As installed: bytecode compiled once (kept in the work dir, not the source tree), a local cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= {"PYTHONPYCACHEPREFIX": str(work / "pycache"), "SNAPSTORE_CACHE_DIR": str(work / "cache")}
    if not (args.reuse and (repo / "config").exists()):
        build_days(snapstore, scale, agent, repo, env)
    snaps = json.loads(checked(common.run_measured([*snapstore, "--repo", str(repo), "snapshots", "--json"], env=env),
                               "snapshots").stdout)
    a, b = snaps[-2]["id"], snaps[-1]["id"]
    common.warm_read([db, *(p for p in repo.rglob("*") if p.is_file())])
    diffs, dumps = [], []
    for run_no in range(RUNS):  # alternated, the best of each: the machine may be shared
        common.progress(f"snapstore diff, sqlite3 .dump ({run_no + 1}/{RUNS})")
        diffs.append(checked(measured([*snapstore, "--repo", str(repo), "diff", a, b, "--json"], env=env), "diff"))
        dumps.append(checked(measured(["sqlite3", str(db), ".output /dev/null", ".dump"], env=env), "sqlite3 .dump"))
    diff, dump = min(diffs, key=lambda r: r.wall_s), min(dumps, key=lambda r: r.wall_s)
    load = os.getloadavg()[0]  # other work on the machine stretches both, the short diff more
    doc = json.loads(diff.stdout)
    out = {
        "scale": scale, "db_bytes": db.stat().st_size, "machine": common.machine_info(),
        "diff": {"wall_s": diff.wall_s, "peak_rss": diff.peak_rss, "read": doc["read"],
                 "rows": {t: {k: v[k] for k in ("added", "removed", "changed")} for t, v in doc["tables"].items()}},
        "dump": {"wall_s": dump.wall_s, "peak_rss": dump.peak_rss},
        "ratio": diff.wall_s / dump.wall_s if dump.wall_s else None, "load_average": load,
    }
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def report(out: dict) -> str:
    d, m, read = out["diff"], out["dump"], out["diff"]["read"]
    changed = sum(v["added"] + v["removed"] + v["changed"] for v in d["rows"].values())
    verdict = "met" if out["ratio"] is not None and out["ratio"] <= TARGET else "NOT met"
    return "\n".join([
        SECTION[0],
        "## Lifecycle: memory-level diff",
        "",
        f"`python benchmarks/bench_lifecycle.py` — sample agent at scale {out['scale']} "
        f"({common.human_bytes(out['db_bytes'])} database), two backups a 1% day apart "
        f"(`sample-agent --mutate 0.01`); {out['machine']['nproc']} CPUs ({out['machine']['date']}, load average "
        f"{out.get('load_average', 0):.1f} after the runs), warm page cache, "
        f"best of {RUNS} alternated runs each; snapstore's bytecode compiled and a `diff` run once before day 2 "
        "(as for a user who diffs daily: the older index files' lookup tables are in the local cache).",
        "",
        "| step | wall time | peak RSS | notes |",
        "|---|---|---|---|",
        f"| `snapstore diff DAY1 DAY2 --json` | {common.human_secs(d['wall_s'])} | {common.human_bytes(d['peak_rss'])} | "
        f"{read.get('leaf_pages_decoded')} leaf pages decoded of {read.get('pages')} "
        f"({read.get('pages_differing')} pages differ), {read.get('overflow_pages_read')} overflow pages read; "
        f"{changed} rows added/removed/changed |",
        f"| `sqlite3 DB .dump` (to /dev/null) | {common.human_secs(m['wall_s'])} | {common.human_bytes(m['peak_rss'])} | "
        f"day 2's database |",
        "",
        f"diff / .dump time: **{out['ratio']:.3f}x** (target <= {TARGET}x: {verdict}).",
        SECTION[1],
    ]) + "\n"


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION[0] in text and SECTION[1] in text:
        before, rest = text.split(SECTION[0], 1)
        text = before + section + rest.split(SECTION[1], 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float)
    p.add_argument("--workdir")
    p.add_argument("--out", help="Markdown file whose lifecycle section is (re)written.")
    p.add_argument("--keep", action="store_true", help="Keep the work directory.")
    p.add_argument("--reuse", action="store_true",
                   help="Measure again on the agent and repository a --keep run left in --workdir.")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out = run(args)
    section = report(out)
    print(json.dumps(out, indent=2) if args.json else section)
    if args.out:
        write_section(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
