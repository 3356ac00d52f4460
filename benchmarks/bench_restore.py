#!/usr/bin/env python3
"""snapstore vs restic: whole restore of the database and a full export (issue 3's benchmark).

    python benchmarks/bench_restore.py [--scale N] [--repeat R] [--workdir DIR] [--out docs/benchmarks.md] [--keep]

One run on one sample agent (`snapstore sample-agent DIR --scale N --seed 1`, backed up once by
each tool), with warm caches, in R interleaved rounds (default 3; each step's output is deleted
before the next round) whose medians are reported -- on a shared VM a single write of gigabytes
varies by 2x with how recently the guest touched the memory it lands in:

    restic restore      `restic restore latest --target T` (the database file)
    snapstore restore   `snapstore restore latest --to T/new.db` (chunks hash-checked, fsynced)
    sqlite3 .dump       `sqlite3 DB .dump` of the database to a file
    snapstore export    `snapstore export latest DIR` (the whole documented folder: database,
                        SQL dump, schema info, memories JSON, checksums)
    md5sum -c           `md5sum -c verification/checksums.md5` inside the exported folder: the
                        MD5s any tool writing that folder must compute (reported, not a target)

Targets: snapstore restore <= restic restore; snapstore export <= restic restore + sqlite3 .dump.

After the timed rounds (unless --no-check) the outputs are checked at this scale, as issue 3
asks: the restored database and the one `sqlite3 new.db < database/mirix_dump.sql` rebuilds
equal the source table by table (rowids, FTS shadow tables included) and pass
integrity_check; `jq` reads every JSON file; each memories file's row count is its table's.
Shares helpers with bench_backup.py.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_backup as common  # noqa: E402
from snapstore.sqlite_uri import sqlite_uri  # noqa: E402

SECTION = ("<!-- bench_restore:start -->", "<!-- bench_restore:end -->")


def timed(cmd: list[str], env=None, stdout=None, cwd=None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE, text=False,
                          cwd=cwd)
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
    if not agent.exists():
        common.run_checked(snap_cmd + ["sample-agent", str(agent), "--scale", str(scale), "--seed", "1"],
                           "sample-agent")
    db = common.find_db(agent)
    snap = common.Snapstore(snap_cmd, work / "snap-repo")
    if not snap.repo.exists():
        snap.init()
        snap.backup(agent / "mirix.yaml")
    restic_exe, _ = common.find_restic(allow_install=not args.no_install)
    out: dict = {"scale": scale, "db_bytes": db.stat().st_size, "command": " ".join(["python", *sys.argv]),
                 "machine": common.machine_info(), "restic": None, "rounds": args.repeat}
    restic = None
    if restic_exe:
        restic = common.Restic(restic_exe, work / "restic-repo", work / "restic-cache")
        if not restic.repo.exists():
            restic.init()
            restic.backup([db])
        out["restic"] = {"version": common.tool_version([restic_exe, "version"])}
    runs: dict[str, list[float]] = {"restic_restore_s": [], "snapstore_restore_s": [], "sqlite3_dump_s": [],
                                    "snapstore_export_s": [], "md5sum_check_s": []}
    export = work / "export"
    for _ in range(args.repeat):
        for path in (work / "restic-target", work / "restored.db", work / "plain.sql", export):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        if restic:
            common.warm_read([p for p in restic.repo.rglob("*") if p.is_file()])
            runs["restic_restore_s"].append(timed([restic_exe, "--repo", str(restic.repo), "restore", "latest",
                                                   "--target", str(work / "restic-target")], env=restic.env))
        common.warm_read([p for p in snap.repo.rglob("*") if p.is_file()])
        runs["snapstore_restore_s"].append(timed(snap_cmd + ["--repo", str(snap.repo), "restore", "latest",
                                                             "--to", str(work / "restored.db")]))
        with open(work / "plain.sql", "wb") as f:
            runs["sqlite3_dump_s"].append(timed(["sqlite3", sqlite_uri(db, immutable=1), ".dump"], stdout=f))
        common.warm_read([p for p in snap.repo.rglob("*") if p.is_file()])
        runs["snapstore_export_s"].append(timed(snap_cmd + ["--repo", str(snap.repo), "export", "latest",
                                                            str(export)]))
        runs["md5sum_check_s"].append(timed(["md5sum", "--quiet", "-c", "verification/checksums.md5"], cwd=export))
    out["runs"] = runs
    for key, times in runs.items():
        out[key] = statistics.median(times) if times else None
    if restic:
        out["restic"]["restore_s"] = out.pop("restic_restore_s")
    out["export_bytes"] = common.tree_bytes(export)
    out["memory_json_bytes"] = common.tree_bytes(export / "memories")
    if not args.no_check:
        out["checks"] = check_outputs(db, work / "restored.db", export, work)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def same_database(expected: Path, actual: Path) -> None:
    """Schema and every table (shadow tables too) equal row for row, in SQL; integrity_check ok."""
    conn = sqlite3.connect(sqlite_uri(actual, mode="ro"), uri=True)
    try:
        conn.execute("ATTACH ? AS src", (sqlite_uri(expected, mode="ro"),))
        schema = "SELECT type, name, tbl_name, sql FROM {}.sqlite_master ORDER BY type, name"
        if conn.execute(schema.format("main")).fetchall() != conn.execute(schema.format("src")).fetchall():
            raise common.BenchError(f"{actual.name}: schema differs from the source")
        tables = [n for (n,) in conn.execute("SELECT name FROM src.sqlite_master WHERE type='table' "
                                             "AND sql NOT LIKE 'CREATE VIRTUAL%' AND name NOT LIKE 'sqlite_%'")]
        for t in tables:
            rowid = "rowid, " if conn.execute("SELECT sql NOT LIKE '%WITHOUT ROWID%' FROM src.sqlite_master "
                                              "WHERE name=?", (t,)).fetchone()[0] else ""
            for a, b in (("main", "src"), ("src", "main")):
                extra = conn.execute(f'SELECT count(*) FROM (SELECT {rowid}* FROM {a}."{t}" '
                                     f'EXCEPT SELECT {rowid}* FROM {b}."{t}")').fetchone()[0]
                if extra:
                    raise common.BenchError(f"{actual.name}: table {t} differs from the source ({extra} rows)")
        if conn.execute("PRAGMA main.integrity_check").fetchall() != [("ok",)]:
            raise common.BenchError(f"{actual.name}: integrity_check failed")
    finally:
        conn.close()


def check_outputs(db: Path, restored: Path, export: Path, work: Path) -> dict:
    """Issue 3's checks at the benchmark scale (not timed)."""
    same_database(db, restored)
    for path in sorted(export.rglob("*.json")):
        common.run_checked(["jq", "empty", str(path)], f"jq {path.name}")
    rebuilt = work / "rebuilt.db"
    rebuilt.unlink(missing_ok=True)
    with open(export / "database" / "mirix_dump.sql", "rb") as dump:
        proc = subprocess.run(["sqlite3", str(rebuilt)], stdin=dump, capture_output=True)
    if proc.returncode != 0 or proc.stderr:
        raise common.BenchError(f"sqlite3 < mirix_dump.sql failed: {proc.stderr.decode()[-500:]}")
    same_database(db, rebuilt)
    rebuilt.unlink()
    conn = sqlite3.connect(sqlite_uri(db, mode="ro"), uri=True)
    try:
        for path in sorted((export / "memories").glob("*.json")):
            counts = subprocess.run(["jq", ".table, .row_count, (.rows | length)", str(path)], capture_output=True,
                                    text=True, check=True).stdout.split()
            table, declared, rows = json.loads(counts[0]), int(counts[1]), int(counts[2])
            in_db = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if not declared == rows == in_db:
                raise common.BenchError(f"{path.name}: row_count {declared}, rows {rows}, table {table} has {in_db}")
    finally:
        conn.close()
    return {"restored_equals_source": "passed", "jq_reads_every_json": "passed",
            "dump_rebuilds_equal_database": "passed", "memory_row_counts": "passed"}


def report(out: dict) -> str:
    r = out["restic"]
    restic_restore = r["restore_s"] if r else None
    budget = (restic_restore + out["sqlite3_dump_s"]) if r else None
    with_md5 = (budget + out["md5sum_check_s"]) if r else None
    rows = [
        ["whole restore of the database", common.human_secs(restic_restore), common.human_secs(out["snapstore_restore_s"]),
         common.fmt_ratio(common.ratio(out["snapstore_restore_s"], restic_restore))],
        ["full export vs restic restore + sqlite3 .dump (target)", common.human_secs(budget),
         common.human_secs(out["snapstore_export_s"]), common.fmt_ratio(common.ratio(out["snapstore_export_s"], budget))],
        ["full export vs restic restore + sqlite3 .dump + md5sum -c of the folder", common.human_secs(with_md5),
         common.human_secs(out["snapstore_export_s"]),
         common.fmt_ratio(common.ratio(out["snapstore_export_s"], with_md5))],
    ]
    table = common.markdown_table(["step", "restic (+ sqlite3 .dump)", "snapstore", "ratio snapstore/restic"], rows)
    m = out["machine"]
    each = "; ".join(f"{k.removesuffix('_s')} {', '.join(f'{t:.2f}' for t in v)}" for k, v in out["runs"].items() if v)
    return "\n".join([
        SECTION[0], "## Restore and export", "",
        f"Produced by `{out['command']}` (run from the repository root) on {m['date']}; "
        f"database {common.human_bytes(out['db_bytes'])} (scale {out['scale']}); medians of {out['rounds']} "
        f"interleaved rounds. `sqlite3 .dump` alone took {common.human_secs(out['sqlite3_dump_s'])}; the exported "
        f"folder holds {common.human_bytes(out['export_bytes'])}, and `md5sum -c` of it took "
        f"{common.human_secs(out['md5sum_check_s'])}.", "", table, "",
        f"- every run (s): {each}",
        *([f"- the export target is below the work the folder itself requires: computing its checksums alone "
           f"(`md5sum -c`, one core) takes {common.human_secs(out['md5sum_check_s'])}, more than the whole "
           f"{common.human_secs(budget)} budget, which counts neither the MD5s nor the "
           f"{common.human_bytes(out['memory_json_bytes'])} of memories JSON"]
          if budget and out["md5sum_check_s"] > budget else []),
        *([f"- outputs checked at this scale: {', '.join(k.replace('_', ' ') + ' ' + v for k, v in out['checks'].items())}"]
          if out.get("checks") else []),
        f"- {m['nproc']} CPUs: {m['cpu_model']}; {r['version'] if r else 'restic: not available'}",
        SECTION[1]]) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float)
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians are reported")
    p.add_argument("--workdir")
    p.add_argument("--out")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--no-check", action="store_true", help="skip checking the outputs after the timed rounds")
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
