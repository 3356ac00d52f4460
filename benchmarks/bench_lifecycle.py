#!/usr/bin/env python3
"""snapstore diff and forget + prune vs `sqlite3 .dump` and `restic forget --prune` (issue 12's benchmark).

    python benchmarks/bench_lifecycle.py [--scale N] [--days D] [--workdir DIR] [--out docs/benchmarks.md]
                                         [--no-restic] [--keep] [--reuse] [--json]

On the sample agent (`snapstore sample-agent DIR --scale N --seed 1`, ~1 GB at the default
benchmark scale 200), one history of D days (default 30) backed up by both tools:

    day 1      `snapstore backup` into an empty repository, then `snapstore diff DAY1 DAY1` (as
               yesterday's diff would have: the older index files' lookup tables are cached);
               `restic backup` of the agent folder
    day k      `snapstore sample-agent DIR --mutate 0.01 --seed k` (a 1% day), then both backups
    diff       after day 2: `snapstore diff DAY1 DAY2 --json` vs
               `sqlite3 DB ".output /dev/null" .dump` of the day-2 database, the best of RUNS
               alternated runs each (the machine may be shared)
    prune      after day D: `snapstore forget --keep-last K --prune` vs
               `restic forget --keep-last K --prune` with K = D/3 (keep the last 10 of 30,
               forget the 20 oldest); repository sizes before and after

Wall time and each command's own peak RSS (os.wait4 through a small launcher); the
database and the repositories are read once beforehand so every side starts from a warm
page cache.  snapstore runs as installed: its bytecode compiled (PYTHONDONTWRITEBYTECODE
dropped, the .pyc files kept in the work dir) and a local cache in the work dir.  With
--reuse (on a --keep work dir) only the diff of the repository's last two snapshots is
measured again.  Targets (issue 12): diff <= 0.2x the time of the .dump; forget + prune at
most 0.5x restic's time, and the repository after at most restic's size.
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
PRUNE_SECTION = ("<!-- bench_prune:start -->", "<!-- bench_prune:end -->")
TARGET = 0.2
RUNS = 3
PRUNE_TARGET = 0.5
RESTIC_PASSWORD = "bench-lifecycle"


def checked(result: common.Result, what: str) -> common.Result:
    if result.rc != 0:
        raise SystemExit(f"bench_lifecycle: {what} failed (exit {result.rc}): {result.stderr.strip()[-2000:]}")
    return result


class Restic:
    """restic on the same agent folder; repository without a password prompt, cache in the work dir."""

    def __init__(self, exe: str, work: Path):
        self.exe, self.repo = exe, work / "restic-repo"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "SNAPSTORE_"))}
        self.env |= {"RESTIC_PASSWORD": RESTIC_PASSWORD, "RESTIC_CACHE_DIR": str(work / "restic-cache")}

    def __call__(self, *args: str, what: str, timed: bool = False) -> common.Result:
        cmd = [self.exe, "--repo", str(self.repo), *args]
        return checked((measured if timed else common.run_measured)(cmd, env=self.env), what)


def run(args) -> dict:
    snapstore = common.find_snapstore(None)
    scale = args.scale or common.default_scale(snapstore)
    days = max(3, args.days)
    keep = max(1, days // 3)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-lifecycle-"))
    work.mkdir(parents=True, exist_ok=True)
    agent, repo = work / "agent", work / "repo"
    db = agent / "sqlite.db"
    env = common.cli_env() if hasattr(common, "cli_env") else {k: v for k, v in os.environ.items()
                                                               if not k.startswith("SNAPSTORE_")}
    # As installed: bytecode compiled once (kept in the work dir, not the source tree), a local cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= {"PYTHONPYCACHEPREFIX": str(work / "pycache"), "SNAPSTORE_CACHE_DIR": str(work / "cache")}
    ss = [*snapstore, "--repo", str(repo)]
    if args.reuse and (repo / "config").exists():
        out = {"scale": scale, "days": None, "db_bytes": db.stat().st_size, "machine": common.machine_info()}
        return out | measure_diff(ss, db, repo, env)
    for old in (agent, repo, work / "restic-repo", work / "restic-cache", work / "cache"):
        shutil.rmtree(old, ignore_errors=True)
    restic = None
    if not args.no_restic:
        exe, reason = common.find_restic(allow_install=False)
        if exe is None:
            common.progress(f"WARNING: {reason}; forget + prune is measured for snapstore only")
        else:
            restic = Restic(exe, work)
    common.progress(f"sample agent at scale {scale}")
    checked(common.run_measured([*snapstore, "sample-agent", str(agent), "--scale", str(scale), "--seed", "1"],
                                env=env), "sample-agent")
    checked(common.run_measured([*ss, "init"], env=env), "init")
    if restic:
        restic("init", what="restic init")
    out: dict = {"scale": scale, "days": days, "db_bytes": db.stat().st_size, "machine": common.machine_info()}
    for day in range(1, days + 1):
        common.progress(f"day {day} of {days}: {'a 1% day, ' if day > 1 else ''}backups")
        if day > 1:
            checked(common.run_measured([*snapstore, "sample-agent", str(agent), "--mutate", "0.01", "--seed",
                                         str(day)], env=env), "mutate")
        checked(common.run_measured([*ss, "backup", "--config", str(agent / "mirix.yaml")], env=env),
                f"backup day {day}")
        if restic:
            restic("backup", "--host", "bench", str(agent), what=f"restic backup day {day}")
        if day == 1:  # a user who diffs daily: yesterday's diff sorted the older index files
            day1 = json.loads(checked(common.run_measured([*ss, "snapshots", "--json"], env=env),
                                      "snapshots").stdout)[-1]["id"]
            checked(common.run_measured([*ss, "diff", day1, day1, "--json"], env=env), "diff day 1")
        if day == 2:
            out |= measure_diff(ss, db, repo, env)
    out["prune"] = measure_prune(ss, restic, repo, keep, days, db, env)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def measure_diff(ss: list[str], db: Path, repo: Path, env: dict) -> dict:
    """diff of the last two snapshots vs .dump of the database, the best of RUNS alternated runs."""
    snaps = json.loads(checked(common.run_measured([*ss, "snapshots", "--json"], env=env), "snapshots").stdout)
    a, b = snaps[-2]["id"], snaps[-1]["id"]
    common.warm_read([db, *(p for p in repo.rglob("*") if p.is_file())])
    diffs, dumps = [], []
    for run_no in range(RUNS):
        common.progress(f"snapstore diff, sqlite3 .dump ({run_no + 1}/{RUNS})")
        diffs.append(checked(measured([*ss, "diff", a, b, "--json"], env=env), "diff"))
        dumps.append(checked(measured(["sqlite3", str(db), ".output /dev/null", ".dump"], env=env), "sqlite3 .dump"))
    diff, dump = min(diffs, key=lambda r: r.wall_s), min(dumps, key=lambda r: r.wall_s)
    load = os.getloadavg()[0]  # other work on the machine stretches both, the short diff more
    doc = json.loads(diff.stdout)
    return {
        "diff": {"wall_s": diff.wall_s, "peak_rss": diff.peak_rss, "read": doc["read"],
                 "first_wall_s": diffs[0].wall_s, "cpu_s": diff.cpu_s,
                 "rows": {t: {k: v[k] for k in ("added", "removed", "changed")} for t, v in doc["tables"].items()}},
        "dump": {"wall_s": dump.wall_s, "peak_rss": dump.peak_rss, "cpu_s": dump.cpu_s},
        "ratio": diff.wall_s / dump.wall_s if dump.wall_s else None, "load_average": load,
    }


def measure_prune(ss: list[str], restic: Restic | None, repo: Path, keep: int, days: int, db: Path,
                  env: dict) -> dict:
    """forget of the oldest days - keep + prune, timed for both tools on warm repositories."""
    out: dict = {"keep_last": keep, "forgotten": days - keep}
    common.warm_read([db, *(p for p in repo.rglob("*") if p.is_file())])
    before = common.tree_bytes(repo)
    common.progress(f"snapstore forget --keep-last {keep} --prune")
    ours = checked(measured([*ss, "forget", "--keep-last", str(keep), "--prune", "--json"], env=env),
                   "snapstore forget --prune")
    doc = json.loads(ours.stdout)
    checked(common.run_measured([*ss, "verify"], env=env), "snapstore verify after prune")
    out["snapstore"] = {"wall_s": ours.wall_s, "peak_rss": ours.peak_rss, "repo_before": before,
                        "repo_after": common.tree_bytes(repo), "removed": doc["removed"],
                        "packs": doc["prune"]["packs"], "freed": doc["prune"]["bytes"]["freed"]}
    if restic is not None:
        common.warm_read([p for p in restic.repo.rglob("*") if p.is_file()])
        before = common.tree_bytes(restic.repo)
        common.progress(f"restic forget --keep-last {keep} --prune")
        theirs = restic("forget", "--keep-last", str(keep), "--prune", what="restic forget --prune", timed=True)
        out["restic"] = {"wall_s": theirs.wall_s, "peak_rss": theirs.peak_rss, "repo_before": before,
                         "repo_after": common.tree_bytes(restic.repo),
                         "version": common.tool_version([restic.exe, "version"])}
        out["ratio"] = ours.wall_s / theirs.wall_s if theirs.wall_s else None
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
        "(as for a user who diffs daily: the older index files' lookup tables and the older database's b-tree "
        "pages are in the local cache; the first of the runs parses the newer one's changed b-tree pages, "
        "which the later ones find cached).",
        "",
        "| step | wall time | peak RSS | notes |",
        "|---|---|---|---|",
        f"| `snapstore diff DAY1 DAY2 --json` | {common.human_secs(d['wall_s'])} | {common.human_bytes(d['peak_rss'])} | "
        f"{read.get('leaf_pages_decoded')} leaf pages decoded of {read.get('pages')} "
        f"({read.get('pages_differing')} pages differ), {read.get('overflow_pages_read')} overflow pages read; "
        f"{changed} rows added/removed/changed; first run {common.human_secs(d.get('first_wall_s', d['wall_s']))}; "
        f"CPU {common.human_secs(d.get('cpu_s') or 0)} |",
        f"| `sqlite3 DB .dump` (to /dev/null) | {common.human_secs(m['wall_s'])} | {common.human_bytes(m['peak_rss'])} | "
        f"day 2's database; CPU {common.human_secs(m.get('cpu_s') or 0)} |",
        "",
        f"diff / .dump time: **{out['ratio']:.3f}x** (target <= {TARGET}x: {verdict}).",
        SECTION[1],
    ]) + "\n"


def prune_report(out: dict) -> str:
    p = out["prune"]
    ours, theirs = p["snapstore"], p.get("restic")
    lines = [
        PRUNE_SECTION[0],
        "## Lifecycle: forget + prune vs restic",
        "",
        f"`python benchmarks/bench_lifecycle.py --scale {out['scale']} --days {out['days']}` — sample agent "
        f"({common.human_bytes(out['db_bytes'])} database at day 1), {out['days']} daily 1% days "
        f"(`sample-agent --mutate 0.01`) backed up by both tools; then `forget --keep-last {p['keep_last']} "
        f"--prune` (the {p['forgotten']} oldest go) on warm repositories; {out['machine']['nproc']} CPUs "
        f"({out['machine']['date']}).",
        "",
        "| tool | forget + prune | peak RSS | repository before | repository after |",
        "|---|---|---|---|---|",
        f"| snapstore | {common.human_secs(ours['wall_s'])} | {common.human_bytes(ours['peak_rss'])} | "
        f"{common.human_bytes(ours['repo_before'])} | {common.human_bytes(ours['repo_after'])} |",
    ]
    if theirs:
        version = (theirs["version"] or "restic").split(" compiled")[0]
        lines.append(f"| {version} | {common.human_secs(theirs['wall_s'])} | "
                     f"{common.human_bytes(theirs['peak_rss'])} | {common.human_bytes(theirs['repo_before'])} | "
                     f"{common.human_bytes(theirs['repo_after'])} |")
    packs = ours["packs"]
    lines += ["", f"snapstore deleted {packs['deleted']} packs and repacked {packs['repacked']} "
                  f"(`--max-unused 5%` per pack), freeing {common.human_bytes(ours['freed'])}."]
    if theirs:
        time_ok = p["ratio"] is not None and p["ratio"] <= PRUNE_TARGET
        size_ok = ours["repo_after"] <= theirs["repo_after"]
        lines.append(f"Time snapstore / restic: **{p['ratio']:.3f}x** (target <= {PRUNE_TARGET}x: "
                     f"{'met' if time_ok else 'NOT met'}); repository after: "
                     f"{ours['repo_after'] / theirs['repo_after']:.2f}x restic's "
                     f"(target <= 1x: {'met' if size_ok else 'NOT met'}).")
    else:
        lines.append("restic was not run (not installed or --no-restic).")
    lines.append(PRUNE_SECTION[1])
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str, markers: tuple[str, str] = SECTION) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if markers[0] in text and markers[1] in text:
        before, rest = text.split(markers[0], 1)
        text = before + section + rest.split(markers[1], 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float)
    p.add_argument("--days", type=int, default=30, help="Days of history (at least 3); the oldest 2/3 are forgotten.")
    p.add_argument("--no-restic", action="store_true", help="Measure snapstore's forget + prune only.")
    p.add_argument("--workdir")
    p.add_argument("--out", help="Markdown file whose lifecycle section is (re)written.")
    p.add_argument("--keep", action="store_true", help="Keep the work directory.")
    p.add_argument("--reuse", action="store_true",
                   help="Measure again on the agent and repository a --keep run left in --workdir.")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out = run(args)
    section = report(out)
    prune_section = prune_report(out) if "prune" in out else ""  # not with --reuse
    print(json.dumps(out, indent=2) if args.json else section + "\n" + prune_section)
    if args.out:
        write_section(Path(args.out), section)
        if prune_section:
            write_section(Path(args.out), prune_section, PRUNE_SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
