#!/usr/bin/env python3
"""Verify benchmark (issue 4): snapstore verify vs restic check, the floor, and quick-verify scaling.

    python benchmarks/bench_verify.py [--scale N] [--snapshots 10] [--many 1000] [--workdir DIR]
                                      [--out docs/benchmarks.md] [--no-restic] [--json] [--keep]

Part 1, full check on the same backups, three interleaved rounds (--repeat), medians reported:
  `snapstore sample-agent DIR --scale N --seed 1` (about 1 GB at BENCHMARK_SCALE), then 10 snapshots
  with `snapstore sample-agent DIR --mutate 0.01 --seed i` between them, each taken by snapstore
  (`snapstore backup --config DIR/mirix.yaml`) and by restic (`restic backup DIR/sqlite.db`).
  Timed, with every repository file read once beforehand (warm page cache for all three):
    snapstore --repo R verify --full
    restic --repo R check --read-data
    the floor: read every snapstore pack file and BLAKE3-hash the decompressed contents of its
    blobs with the fastest library calls (one read per pack, zstandard's multi_decompress_to_buffer
    on all its frames, one blake3 call over the result), the faster of: one process with
    threads=-1 / max_threads=AUTO, or one forked process per core; `floor_read_hash` below.
Part 2, quick-verify scaling: a scale-1 agent backed up 1,000 times through the library in this
  process, one small transaction (sample_agent.write_transactions) between backups; `snapstore
  verify` (CLI wall time, and verify_repository in this process) after 10 and after 1,000 snapshots.

--out FILE writes or replaces this benchmark's section (`## Verify`, between
<!-- bench_verify:start --> and <!-- bench_verify:end -->) and leaves the rest of the file alone.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import blake3
import zstandard

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
RESTIC_PASSWORD = "snapstore-benchmark"
SECTION_START = "<!-- bench_verify:start -->"
SECTION_END = "<!-- bench_verify:end -->"
TARGET_RESTIC_RATIO = 2.0  # verify --full at least 2x faster than restic check --read-data
TARGET_FLOOR_RATIO = 2.0  # and within 2x of the floor
TARGET_SCALING_RATIO = 3.0  # 1,000 snapshots verify in at most 3x the time of 10

_json_mode = False


def say(msg: str = "") -> None:
    print(msg, file=sys.stderr if _json_mode else sys.stdout, flush=True)


class BenchError(Exception):
    pass


# -- running things ------------------------------------------------------------------------------

def run_measured(cmd: list[str], env: Optional[dict] = None) -> dict[str, Any]:
    """Run ``cmd``; wall time around the child and its peak RSS (from os.wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, stdin=subprocess.DEVNULL)
        _pid, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"cmd": cmd, "rc": proc.returncode, "wall_s": wall, "peak_rss": rusage.ru_maxrss * 1024,
                "stdout": out.read(), "stderr": err.read()}


def run_checked(cmd: list[str], what: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise BenchError(f"{what} failed ({result.returncode}): {shlex.join(cmd)}\n{result.stderr[-2000:]}")
    return result


def find_snapstore(explicit: Optional[str]) -> list[str]:
    if explicit:
        return shlex.split(explicit)
    for candidate in (Path(sys.executable).with_name("snapstore"), REPO_ROOT / ".venv" / "bin" / "snapstore"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("snapstore")
    if found:
        return [found]
    raise BenchError("snapstore command not found (pip install -e . first)")


def warm(paths: list[Path]) -> int:
    """Read files once so every timed command starts from the same warm page cache."""
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while True:
                data = f.read(16 << 20)
                if not data:
                    break
                total += len(data)
    return total


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        mem = 0
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_bytes": mem, "os": platform.platform(),
            "python": platform.python_version(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


# -- the floor -----------------------------------------------------------------------------------

def _pack_payloads(data: bytes) -> list[tuple[int, int, int]]:
    """Distinct (offset, stored length, codec) payloads of a pack, from its own trailer."""
    from snapstore.repository.pack import BLOB_RECORD, decode_trailer
    seen: dict[tuple[int, int, int], None] = {}
    for rec in BLOB_RECORD.iter_unpack(decode_trailer(data, len(data))):
        seen.setdefault((rec[3], rec[4], rec[2]))
    return list(seen)


def _floor_pack(path: Path, threads: int = 1) -> tuple[int, int]:
    """Read one pack, decompress all its payloads in one call, BLAKE3 the plain bytes in one call."""
    from snapstore.repository.pack import CODEC_ZSTD
    with open(path, "rb", buffering=0) as f:
        data = f.read()
    payloads = _pack_payloads(data)
    frames = [(off, slen) for off, slen, codec in payloads if codec == CODEC_ZSTD]
    parts: list = [memoryview(data)[off:off + slen] for off, slen, codec in payloads if codec != CODEC_ZSTD]
    if frames:
        segments = struct.pack(f"={2 * len(frames)}Q", *[v for pair in frames for v in pair])
        out = zstandard.ZstdDecompressor().multi_decompress_to_buffer(
            zstandard.BufferWithSegments(data, segments), threads=threads)
        parts.extend(out[i] for i in range(len(out)))
    joined = b"".join(parts)
    blake3.blake3(joined, max_threads=blake3.blake3.AUTO if threads != 1 else 1).digest()
    return len(data), len(joined)


def floor_read_hash(pack_paths: list[Path]) -> dict[str, Any]:
    """The least work a full check must do, done with the fastest library calls, two ways; the faster counts.

    threaded: one process, pack after pack, zstd's multi-threaded batch decompression (threads=-1)
    and one BLAKE3 call with max_threads=AUTO over each pack's plain bytes;
    processes: one process per core (fork), each doing whole packs with single-threaded calls.
    It hashes the plain bytes once (not blob by blob) and checks nothing.
    """
    import multiprocessing
    start = time.perf_counter()
    sizes = [_floor_pack(p, threads=-1) for p in pack_paths]
    threaded = time.perf_counter() - start
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        pool.map(_floor_pack, pack_paths, chunksize=1)
    processes = time.perf_counter() - start
    return {"wall_s": min(threaded, processes), "threaded_s": threaded, "processes_s": processes,
            "bytes_read": sum(r for r, _ in sizes), "plain_bytes": sum(p for _, p in sizes), "packs": len(pack_paths)}


def _floor_child(conn, pack_paths: list[Path]) -> None:
    conn.send(floor_read_hash(pack_paths))
    conn.close()


def floor_in_child(pack_paths: list[Path]) -> dict[str, Any]:
    """Run the floor in a forked child, so this process stays small: every command timed later is
    forked from it, and Linux carries a parent's RSS high-water mark into a forked child's peak RSS."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_floor_child, args=(child, pack_paths))
    proc.start()
    child.close()  # so that a child that dies before sending ends recv() with EOFError, not a hang
    try:
        result = parent.recv()
    except EOFError:
        proc.join()
        raise SystemExit(f"the floor measurement's child failed (exit code {proc.exitcode})") from None
    proc.join()
    return result


# -- part 1: full check vs restic vs floor ---------------------------------------------------------

def part_full(args, snapstore: list[str], work: Path) -> dict[str, Any]:
    agent, repo, restic_repo = work / "agent", work / "snapstore-repo", work / "restic-repo"
    restic = None if args.no_restic else shutil.which("restic")
    env = dict(os.environ, RESTIC_PASSWORD=RESTIC_PASSWORD, RESTIC_CACHE_DIR=str(work / "restic-cache"))
    say(f"creating the sample agent (scale {args.scale}) in {agent} ...")
    run_checked([*snapstore, "sample-agent", str(agent), "--scale", str(args.scale), "--seed", "1"], "sample-agent")
    db = agent / "sqlite.db"
    run_checked([*snapstore, "--repo", str(repo), "init"], "snapstore init")
    if restic:
        run_checked([restic, "--repo", str(restic_repo), "init"], "restic init", env)
    for i in range(args.snapshots):
        if i:
            run_checked([*snapstore, "sample-agent", str(agent), "--mutate", "0.01", "--seed", str(100 + i)], "mutate")
        run_checked([*snapstore, "--repo", str(repo), "backup", "--config", str(agent / "mirix.yaml")], "backup")
        if restic:
            wal = agent / "sqlite.db-wal"
            paths = [str(db)] + ([str(wal)] if wal.exists() and wal.stat().st_size else [])
            run_checked([restic, "--repo", str(restic_repo), "backup", "--host", "bench", *paths], "restic backup", env)
        say(f"  snapshot {i + 1}/{args.snapshots} taken")
    packs = sorted(p for p in (repo / "data").glob("*/*") if ".tmp-" not in p.name)
    result: dict[str, Any] = {
        "database_bytes": db.stat().st_size, "snapshots": args.snapshots,
        "snapstore_repo_bytes": sum(p.stat().st_size for p in files_under(repo)),
        "snapstore_packs": len(packs),
        "restic_repo_bytes": sum(p.stat().st_size for p in files_under(restic_repo)) if restic else None,
        "restic_version": run_checked([restic, "version"], "restic version").stdout.strip() if restic else None,
    }
    result["load_before"] = load_avg()
    rounds: dict[str, list[dict[str, Any]]] = {"snapstore_full": [], "restic_read_data": [], "floor": []}
    for n in range(args.repeat):  # interleaved, so a burst of load on the shared machine hits all three
        say(f"round {n + 1}/{args.repeat}: snapstore verify --full, restic check --read-data, the floor ...")
        warm(files_under(repo))
        full = run_measured([*snapstore, "--repo", str(repo), "verify", "--full", "--json"])
        if full["rc"] != 0:
            raise BenchError(f"snapstore verify --full exited {full['rc']}: {full['stderr'][-2000:]}")
        report = json.loads(full["stdout"])
        rounds["snapstore_full"].append({"wall_s": full["wall_s"], "peak_rss": full["peak_rss"],
                                         "bytes_read": report["bytes_read"], "blobs": report["blobs_read"],
                                         "packs": report["packs_read"], "status": report["status"],
                                         "load": load_avg()})
        if restic:
            warm(files_under(restic_repo))
            check = run_measured([restic, "--repo", str(restic_repo), "check", "--read-data"], env)
            if check["rc"] != 0:
                raise BenchError(f"restic check --read-data exited {check['rc']}: {check['stderr'][-2000:]}")
            rounds["restic_read_data"].append({"wall_s": check["wall_s"], "peak_rss": check["peak_rss"],
                                               "load": load_avg()})
        warm(packs)
        rounds["floor"].append(floor_in_child(packs) | {"load": load_avg()})
    for name, runs in rounds.items():
        if runs:
            times = [r["wall_s"] for r in runs]
            result[name] = runs[times.index(statistics.median_low(times))] | {
                "wall_s": statistics.median(times), "runs_s": times}
    warm(files_under(repo))
    quick = run_measured([*snapstore, "--repo", str(repo), "verify"])
    result["snapstore_quick"] = {"wall_s": quick["wall_s"], "rc": quick["rc"]}
    if restic:
        warm(files_under(restic_repo))
        check = run_measured([restic, "--repo", str(restic_repo), "check"], env)
        result["restic_check"] = {"wall_s": check["wall_s"], "rc": check["rc"]}
    return result


# -- part 2: quick verify, 10 vs 1,000 snapshots -----------------------------------------------------

def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def part_scaling(args, snapstore: list[str], work: Path) -> dict[str, Any]:
    from snapstore.backup import backup_agent
    from snapstore.repository import Repository
    from snapstore.sample_agent import create_sample_agent, write_transactions
    from snapstore.sources.agent import load_agent_source
    from snapstore.verify import verify_repository

    info = create_sample_agent(work / "small-agent", scale=args.many_scale, seed=7)
    repo_path = work / "small-repo"
    Repository.init(repo_path)
    source = load_agent_source(info.config_path)
    points: dict[int, dict[str, Any]] = {}
    taken = 0
    backup_s = 0.0
    for target in (10, args.many):
        say(f"taking backups {taken + 1}..{target} of the scale-{args.many_scale} agent ...")
        start = time.perf_counter()
        while taken < target:
            if taken:
                write_transactions(info.db_path, 1, seed=taken)
            backup_agent(Repository.open(repo_path), source)
            taken += 1
        backup_s += time.perf_counter() - start
        cmd = [*snapstore, "--repo", str(repo_path), "verify"]
        report = verify_repository(Repository.open(repo_path))
        if not report.clean:
            raise BenchError(f"verify of {target} snapshots is not clean: {report.as_dict()}")

        def cli() -> None:
            run_checked(cmd, "snapstore verify")

        from snapstore.manifest import list_snapshots
        listed = sum(f.chunks.count for snap in list_snapshots(Repository.open(repo_path)) for f in snap.files)
        points[target] = {
            "listed_refs": listed,
            "cli_s": _median_time(cli, 3),
            "library_s": _median_time(lambda: verify_repository(Repository.open(repo_path)), 3),
            "chunk_refs": report.chunks, "files": report.files,
            "snapshot_dir_bytes": sum(p.stat().st_size for p in (repo_path / "snapshots").iterdir()),
            "load": load_avg(),
        }
    return {"scale": args.many_scale, "backup_s": backup_s, "points": points}


# -- output ------------------------------------------------------------------------------------------

def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _fmt(x: Optional[float], unit: str = " s", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{unit}"


def _mib(n: Optional[float]) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.0f} MiB"


def render(results: dict[str, Any]) -> list[str]:
    lines = []
    m = results["machine"]
    lines += [f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_bytes'] / 2**30:.0f} GiB RAM, {m['os']}; "
              f"run {m['date']}; load average (1/5/15 min) at start {results['load_start']}, "
              f"at end {results['load_end']} (the machine was shared with other jobs).", ""]
    full = results.get("full")
    if full:
        def spread(key: str) -> str:
            runs = (full.get(key) or {}).get("runs_s") or []
            return f" ({min(runs):.2f}–{max(runs):.2f})" if len(runs) > 1 else ""

        snap, floor = full["snapstore_full"]["wall_s"], full["floor"]["wall_s"]
        restic = (full.get("restic_read_data") or {}).get("wall_s")
        lines += [f"### Full check: {full['snapshots']} snapshots of the {full['database_bytes'] / 1e9:.2f} GB sample agent "
                  f"(1% day between snapshots)", "",
                  f"snapstore repository {_mib(full['snapstore_repo_bytes'])} in {full['snapstore_packs']} packs; "
                  f"restic repository {_mib(full['restic_repo_bytes'])} ({full['restic_version'] or 'restic not run'}).",
                  "",
                  f"| check | time (median of {len(full['snapstore_full']['runs_s'])}, min–max) | vs snapstore "
                  "`verify --full` | peak RSS (largest process) | load avg after (median run) |",
                  "|---|---|---|---|---|",
                  f"| snapstore `verify --full` ({full['snapstore_full']['packs']} packs, "
                  f"{full['snapstore_full']['blobs']:,} blobs, {_mib(full['snapstore_full']['bytes_read'])} read) "
                  f"| {_fmt(snap)}{spread('snapstore_full')} | 1.00× | {_mib(full['snapstore_full']['peak_rss'])} | "
                  f"{full['snapstore_full']['load']} |",
                  f"| restic `check --read-data` | {_fmt(restic)}{spread('restic_read_data')} | "
                  f"{_fmt(_ratio(restic, snap), '×')} | "
                  f"{_mib((full.get('restic_read_data') or {}).get('peak_rss'))} | "
                  f"{(full.get('restic_read_data') or {}).get('load', 'n/a')} |",
                  f"| floor: read + zstd batch decompress + BLAKE3, {_mib(full['floor']['plain_bytes'])} plain "
                  f"(best of threaded {_fmt(full['floor']['threaded_s'])} / one process per core "
                  f"{_fmt(full['floor']['processes_s'])} in the median run) | {_fmt(floor)}{spread('floor')} | "
                  f"{_fmt(_ratio(floor, snap), '×')} | | "
                  f"{full['floor']['load']} |",
                  f"| snapstore `verify` (quick) | {_fmt(full['snapstore_quick']['wall_s'])} | "
                  f"{_fmt(_ratio(full['snapstore_quick']['wall_s'], snap), '×')} | | |",
                  f"| restic `check` (structure only) | {_fmt((full.get('restic_check') or {}).get('wall_s'))} | "
                  f"{_fmt(_ratio((full.get('restic_check') or {}).get('wall_s'), snap), '×')} | | |", ""]
        lines += [f"{len(full['snapstore_full']['runs_s'])} interleaved rounds (snapstore, restic, floor; the "
                  "median counts), every repository "
                  "file read once just before each timed command (warm page cache). "
                  "`verify --full` reads every pack, checks its hash, its trailer against the index, "
                  "decompresses and BLAKE3-hashes every blob and re-derives every file's digest; restic "
                  "`check --read-data` does the same job for its repository. The floor does only the "
                  "read, decompression and hashing, with the libraries' multi-threaded calls "
                  "(`floor_read_hash` in the script). Times include process start-up (about 0.3 s for "
                  "snapstore's Python).", ""]
        r1, r2 = _ratio(restic, snap), _ratio(snap, floor)
        lines += [f"- restic / snapstore: {_fmt(r1, '×')} (target ≥ {TARGET_RESTIC_RATIO:.0f}×: "
                  f"{'PASS' if r1 and r1 >= TARGET_RESTIC_RATIO else 'FAIL' if r1 else 'n/a'})",
                  f"- snapstore / floor: {_fmt(r2, '×')} (target ≤ {TARGET_FLOOR_RATIO:.0f}×: "
                  f"{'PASS' if r2 and r2 <= TARGET_FLOOR_RATIO else 'FAIL'})", ""]
    scaling = results.get("scaling")
    if scaling:
        pts = scaling["points"]
        few, many = min(pts, key=int), max(pts, key=int)
        lines += [f"### Quick verify: {few} vs {many} snapshots of a barely changing agent (scale {scaling['scale']}, "
                  f"one small transaction between backups)", "",
                  "| snapshots | `snapstore verify` (CLI, median of 3) | `verify_repository` in-process (median of 3) "
                  "| chunk references checked | in all the snapshots' lists | files | manifests |",
                  "|---|---|---|---|---|---|---|"]
        for n in (few, many):
            p = pts[n]
            lines.append(f"| {n} | {_fmt(p['cli_s'], ' s', 3)} | {_fmt(p['library_s'], ' s', 3)} | "
                         f"{p['chunk_refs']:,} | {p['listed_refs']:,} | {p['files']:,} | "
                         f"{p['snapshot_dir_bytes'] / 1024:,.0f} KiB |")
        cli_ratio = _ratio(pts[many]["cli_s"], pts[few]["cli_s"])
        lib_ratio = _ratio(pts[many]["library_s"], pts[few]["library_s"])
        lines += ["", f"- CLI {many}/{few}: {_fmt(cli_ratio, '×')} (target ≤ {TARGET_SCALING_RATIO:.0f}×: "
                  f"{'PASS' if cli_ratio and cli_ratio <= TARGET_SCALING_RATIO else 'FAIL'}); in-process: "
                  f"{_fmt(lib_ratio, '×')} (interpreter start-up excluded: the per-snapshot cost is reading "
                  f"and parsing each manifest, and its chunk-list patch)",
                  f"- the {many} backups took {scaling['backup_s']:.0f} s through the library", ""]
    lines += [f"Command: `{results['command']}`"]
    return lines


def write_section(path: Path, body: list[str]) -> None:
    section = "\n".join([SECTION_START, "## Verify", "", *body, SECTION_END]) + "\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION_START in text and SECTION_END in text:
        before, rest = text.split(SECTION_START, 1)
        text = before + section + rest.split(SECTION_END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp-verify")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: Optional[list[str]] = None) -> int:
    global _json_mode
    from snapstore.sample_agent import BENCHMARK_SCALE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=BENCHMARK_SCALE)
    ap.add_argument("--snapshots", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds of the full-check timings (median)")
    ap.add_argument("--many", type=int, default=1000, help="snapshots for the quick-verify scaling part")
    ap.add_argument("--many-scale", type=float, default=1)
    ap.add_argument("--workdir", type=Path, help="where the run's directory goes (kept); default: /tmp, removed")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--no-restic", action="store_true")
    ap.add_argument("--skip-full", action="store_true", help="only the quick-verify scaling part")
    ap.add_argument("--skip-scaling", action="store_true", help="only the full-check part")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--snapstore", help="snapstore command to benchmark")
    args = ap.parse_args(argv)
    _json_mode = args.json
    snapstore = find_snapstore(args.snapstore)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-verify-", dir=args.workdir))  # a fresh directory every run
    results: dict[str, Any] = {"machine": machine_info(), "load_start": load_avg(),
                               "command": shlex.join(["python", "benchmarks/bench_verify.py", *(argv or sys.argv[1:])])}
    try:
        if not args.skip_full:
            results["full"] = part_full(args, snapstore, work)
        if not args.skip_scaling:
            results["scaling"] = part_scaling(args, snapstore, work)
    except BenchError as exc:
        print(f"bench_verify: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["load_end"] = load_avg()
    body = render(results)
    say("\n".join(body))
    if args.out:
        write_section(args.out, body)
        say(f"wrote the ## Verify section of {args.out}")
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
