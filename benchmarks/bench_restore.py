#!/usr/bin/env python3
"""snapstore vs restic: whole restore of the database and a full export (issue 3's benchmark).

    python benchmarks/bench_restore.py [--scale N] [--workdir DIR] [--out docs/benchmarks.md] [--keep]

One run on one sample agent (`snapstore sample-agent DIR --scale N --seed 1`, backed up once by
each tool), with warm caches:

    restic restore      `restic restore latest --target T` (the database file)
    snapstore restore   `snapstore restore latest --to T/new.db` (chunks hash-checked,
                        then PRAGMA quick_check)
    sqlite3 .dump       `sqlite3 DB .dump` of the database to a file
    snapstore export    `snapstore export latest DIR` (the whole documented folder: database,
                        SQL dump, schema info, memories JSON, checksums)

Targets: snapstore restore <= restic restore; snapstore export <= restic restore + sqlite3 .dump.
Shares helpers with bench_backup.py.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_backup as common  # noqa: E402

SECTION = ("<!-- bench_restore:start -->", "<!-- bench_restore:end -->")


def timed(cmd: list[str], env=None, stdout=None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE, text=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise common.BenchError(f"{' '.join(cmd[:3])} failed: {proc.stderr.decode(errors='replace')[-1000:]}")
    return elapsed


def run(args) -> dict:
    snap_cmd = common.find_snapstore(None)
    scale = args.scale or common.default_scale(snap_cmd)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="snapstore-bench-restore-"))
    work.mkdir(parents=True, exist_ok=True)
    agent = work / "agent"
    common.run_checked(snap_cmd + ["sample-agent", str(agent), "--scale", str(scale), "--seed", "1"], "sample-agent")
    db = common.find_db(agent)
    snap = common.Snapstore(snap_cmd, work / "snap-repo")
    snap.init()
    snap.backup(agent / "mirix.yaml")
    restic_exe, _ = common.find_restic(allow_install=not args.no_install)
    out: dict = {"scale": scale, "db_bytes": db.stat().st_size, "command": " ".join(["python", *sys.argv]),
                 "machine": common.machine_info(), "restic": None}
    if restic_exe:
        restic = common.Restic(restic_exe, work / "restic-repo", work / "restic-cache")
        restic.init()
        restic.backup([db])
        common.warm_read([p for p in (work / "restic-repo").rglob("*") if p.is_file()])
        target = work / "restic-target"
        out["restic"] = {"version": common.tool_version([restic_exe, "version"]),
                         "restore_s": timed([restic_exe, "--repo", str(restic.repo), "restore", "latest",
                                             "--target", str(target)], env=restic.env)}
    common.warm_read([p for p in (work / "snap-repo").rglob("*") if p.is_file()])
    out["snapstore_restore_s"] = timed(snap_cmd + ["--repo", str(snap.repo), "restore", "latest",
                                                   "--to", str(work / "restored.db")])
    with open(work / "plain.sql", "wb") as f:
        out["sqlite3_dump_s"] = timed(["sqlite3", f"file:{db}?immutable=1", ".dump"], stdout=f)
    common.warm_read([p for p in (work / "snap-repo").rglob("*") if p.is_file()])
    out["snapstore_export_s"] = timed(snap_cmd + ["--repo", str(snap.repo), "export", "latest",
                                                  str(work / "export")])
    out["export_bytes"] = common.tree_bytes(work / "export")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def report(out: dict) -> str:
    r = out["restic"]
    restic_restore = r["restore_s"] if r else None
    budget = (restic_restore + out["sqlite3_dump_s"]) if r else None
    rows = [
        ["whole restore of the database", common.human_secs(restic_restore), common.human_secs(out["snapstore_restore_s"]),
         common.fmt_ratio(common.ratio(out["snapstore_restore_s"], restic_restore))],
        ["full export vs restic restore + sqlite3 .dump", common.human_secs(budget),
         common.human_secs(out["snapstore_export_s"]), common.fmt_ratio(common.ratio(out["snapstore_export_s"], budget))],
    ]
    table = common.markdown_table(["step", "restic (+ sqlite3 .dump)", "snapstore", "ratio snapstore/restic"], rows)
    m = out["machine"]
    return "\n".join([
        SECTION[0], "## Restore and export", "",
        f"Produced by `{out['command']}` (run from the repository root) on {m['date']}; "
        f"database {common.human_bytes(out['db_bytes'])} (scale {out['scale']}); `sqlite3 .dump` alone took "
        f"{common.human_secs(out['sqlite3_dump_s'])}; the exported folder holds "
        f"{common.human_bytes(out['export_bytes'])}.", "", table, "",
        f"- {m['nproc']} CPUs: {m['cpu_model']}; {r['version'] if r else 'restic: not available'}",
        SECTION[1]]) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float)
    p.add_argument("--workdir")
    p.add_argument("--out")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    try:
        out = run(args)
    except common.BenchError as exc:
        print(f"bench_restore: error: {exc}", file=sys.stderr)
        return 1
    section = report(out)
    print(json.dumps(out, indent=2) if args.json else section)
    if args.out:
        common.SECTION_START, common.SECTION_END = SECTION
        common.write_markdown(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
