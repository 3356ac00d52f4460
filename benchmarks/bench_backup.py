#!/usr/bin/env python3
"""snapstore vs restic on the sample agent (issue 2's benchmark).

    python benchmarks/bench_backup.py [--scale N] [--workdir DIR] [--out docs/benchmarks.md]
                                      [--no-restic] [--no-install] [--json] [--keep]

One run, side by side, on one freshly generated sample agent
(`snapstore sample-agent DIR --scale N --seed 1`):

    initial      first backup into an empty repository
    no change    backup again, nothing changed
    1% day (1)   `snapstore sample-agent DIR --mutate 0.01 --seed 2`, then backup
    1% day (2)   `snapstore sample-agent DIR --mutate 0.01 --seed 3`, then backup

A third column, `snapstore (encrypted)`, backs up the same agent into an encrypted
repository (`snapstore init --encrypt`, format v2) at every step; after the steps
`verify --full` and `restore latest` run on both snapstore repositories, twice,
interleaved (the best of each is kept: the machine is shared). Issue 13's targets:
encrypted ≤ 1.15× unencrypted for the initial and 1%-day backups, verify --full
and restore, and the encrypted 1%-day backup ≤ 0.5× restic's (restic always
encrypts).

For each step and tool: wall time of the backup command, the bytes the
repository grew by (measured here the same way for both tools: the change of
the total size of all files under the repository directory), the peak RSS of
the backup process (os.wait4's rusage of that child). Before every timed
backup the database file is read once (warm page cache for both tools).

The raw floor: time to read the database file once, and to read and BLAKE3-hash
it (Python blake3 with max_threads=AUTO, 16 MiB blocks; b3sum too if installed).

restic is the Debian package `restic` (found on PATH, else `apt-get install -y
restic` is tried unless --no-install); if it cannot be had the benchmark says so
and goes on with snapstore alone.

Human-readable output goes to stdout, or to stderr with --json (then stdout is
one JSON object with every figure). --out FILE writes/replaces the benchmark's
section in a markdown file.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
BLOCK = 16 * 1024 * 1024
RESTIC_PASSWORD = "snapstore-benchmark"
SECTION_START = "<!-- bench_backup:start -->"
SECTION_END = "<!-- bench_backup:end -->"

STEPS = [
    # name, label, mutation seed (None: no mutation before the backup)
    ("initial", "initial backup", None),
    ("nochange", "no change", None),
    ("mutation1", "after 1% mutation (seed 2)", 2),
    ("mutation2", "after 2nd 1% mutation (seed 3)", 3),
]
MUTATE_FRACTION = "0.01"

# issue 2's targets ("What it must show")
TARGET_MUTATION_BYTES_RATIO = 0.1
TARGET_MUTATION_TIME_RATIO = 0.5
TARGET_NOCHANGE_BYTES = 64 * 1024
TARGET_PEAK_RSS = 300 * 1000 * 1000
# issue 13's targets
TARGET_ENCRYPTED_RATIO = 1.15
TARGET_ENCRYPTED_VS_RESTIC = 0.5
SNAPSTORE_PASSWORD = "snapstore-benchmark"
READ_ROUNDS = 2


class BenchError(Exception):
    pass


_json_mode = False


def say(msg: str = "") -> None:
    """Human-readable output: stdout, or stderr when stdout carries JSON."""
    print(msg, file=sys.stderr if _json_mode else sys.stdout, flush=True)


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers
def human_bytes(n: Optional[float]) -> str:
    if n is None:
        return "n/a"
    n = float(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            if unit == "B":
                return f"{sign}{int(n)} B"
            return f"{sign}{n:.1f} {unit}" if n < 100 else f"{sign}{n:.0f} {unit}"
        n /= 1024
    return f"{sign}{n:.1f} TiB"


def human_secs(s: Optional[float]) -> str:
    if s is None:
        return "n/a"
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """a / b, None if either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r: Optional[float]) -> str:
    if r is None:
        return "n/a"
    return f"{r:.3f}" if r < 10 else f"{r:.1f}"


def tree_bytes(path: Path) -> int:
    """Total size of all regular files under path (du-style apparent sizes)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if not os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total


def warm_read(paths: list[Path]) -> int:
    """Read files once (as `cat FILE > /dev/null`): a warm page cache for the next tool."""
    n = 0
    for p in paths:
        try:
            with open(p, "rb", buffering=0) as f:
                while True:
                    b = f.read(BLOCK)
                    if not b:
                        break
                    n += len(b)
        except FileNotFoundError:
            pass
    return n


class Result:
    def __init__(self, cmd: list[str], rc: int, wall_s: float, peak_rss: int, stdout: str, stderr: str,
                 cpu_s: Optional[float] = None):
        self.cmd, self.rc, self.wall_s, self.peak_rss = cmd, rc, wall_s, peak_rss
        self.stdout, self.stderr, self.cpu_s = stdout, stderr, cpu_s


def run_measured(cmd: list[str], env: Optional[dict] = None, cwd: Optional[Path] = None) -> Result:
    """Run cmd; wall time around the child, its peak RSS (bytes) and CPU time (user + system, with
    the children it reaped) from os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        _pid, status, rusage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        p.returncode = rc  # reaped by wait4; tell Popen so it never waits again
        out.seek(0)
        err.seek(0)
        return Result(
            cmd, rc, wall, rusage.ru_maxrss * 1024,  # Linux: ru_maxrss is in KiB
            out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
            rusage.ru_utime + rusage.ru_stime,
        )


def run_checked(cmd: list[str], what: str, env: Optional[dict] = None, timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=timeout)
    if r.returncode != 0:
        raise BenchError(
            f"{what} failed (exit {r.returncode}): {shlex.join(cmd)}\n{r.stderr.strip()[-4000:]}"
        )
    return r


# --------------------------------------------------------------------------- tools
def find_snapstore(explicit: Optional[str]) -> list[str]:
    if explicit:
        return shlex.split(explicit)
    beside = Path(sys.executable).parent / "snapstore"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    venv = REPO_ROOT / ".venv" / "bin" / "snapstore"
    if venv.is_file() and os.access(venv, os.X_OK):
        return [str(venv)]
    found = shutil.which("snapstore")
    if found:
        return [found]
    raise BenchError(
        "the `snapstore` command was not found (beside this Python, in .venv/bin or on PATH): "
        "run `pip install -e .` first, or pass --snapstore CMD"
    )


def python_of(cmd: list[str]) -> Optional[str]:
    """The Python interpreter beside a console script, if any."""
    if len(cmd) == 1:
        py = Path(cmd[0]).parent / "python"
        if py.exists():
            return str(py)
    return None


def default_scale(snapstore: list[str]) -> float:
    """snapstore.sample_agent.BENCHMARK_SCALE, imported lazily (here or in snapstore's Python)."""
    try:
        from snapstore.sample_agent import BENCHMARK_SCALE  # type: ignore

        return float(BENCHMARK_SCALE)
    except Exception:
        pass
    py = python_of(snapstore)
    if py and os.path.abspath(py) != os.path.abspath(sys.executable):
        r = subprocess.run(
            [py, "-c", "from snapstore.sample_agent import BENCHMARK_SCALE as s; print(s)"],
            capture_output=True, text=True,
        )
        if r.returncode == 0 and r.stdout.strip():
            return float(r.stdout.strip())
    raise BenchError(
        "could not import snapstore.sample_agent.BENCHMARK_SCALE (the default benchmark scale): "
        "pass --scale N"
    )


def find_restic(allow_install: bool) -> tuple[Optional[str], Optional[str]]:
    """(path, None) or (None, reason)."""
    found = shutil.which("restic")
    if found:
        return found, None
    if not allow_install:
        return None, "restic is not on PATH (and --no-install was given)"
    if not shutil.which("apt-get"):
        return None, "restic is not on PATH and there is no apt-get to install it"
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            prefix = ["sudo", "-n"]
        else:
            return None, "restic is not on PATH and installing it needs root (apt-get install -y restic)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = prefix + ["apt-get", "install", "-y", "-q", "restic"]
    progress("restic not found on PATH: " + shlex.join(install))
    r = subprocess.run(install, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        progress("apt-get install failed; apt-get update, then try again")
        subprocess.run(prefix + ["apt-get", "update", "-q"], capture_output=True, env=env, stdin=subprocess.DEVNULL)
        r = subprocess.run(install, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    found = shutil.which("restic")
    if r.returncode == 0 and found:
        return found, None
    last = ((r.stderr or r.stdout).strip().splitlines() or ["(no output)"])[-1]
    return None, f"restic is not on PATH and `apt-get install -y restic` failed: {last}"


def tool_version(cmd: list[str]) -> Optional[str]:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    out = (r.stdout or r.stderr).strip().splitlines()
    return out[0].strip() if r.returncode == 0 and out else None


def snapstore_version(snapstore: list[str]) -> Optional[str]:
    v = tool_version(snapstore + ["--version"])
    if v:
        return v
    py = python_of(snapstore) or sys.executable
    return tool_version([py, "-c", "import importlib.metadata as m; print('snapstore', m.version('snapstore'))"])


def machine_info() -> dict[str, Any]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {
        "nproc": nproc,
        "cpu_model": cpu or platform.processor() or "unknown",
        "mem_total_bytes": mem,
        "kernel": platform.release(),
        "os": _os_release(),
        "python": platform.python_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _os_release() -> Optional[str]:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- floor
def measure_floor(db: Path) -> dict[str, Any]:
    """The raw floor: read the file once; read + BLAKE3 it once."""
    floor: dict[str, Any] = {"file_bytes": db.stat().st_size}
    warm_read([db])
    t0 = time.perf_counter()
    warm_read([db])
    floor["read_s"] = time.perf_counter() - t0
    try:
        import blake3  # type: ignore

        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        t0 = time.perf_counter()
        with open(db, "rb", buffering=0) as f:
            while True:
                b = f.read(BLOCK)
                if not b:
                    break
                h.update(b)
        floor["blake3_s"] = time.perf_counter() - t0
        floor["blake3_hex"] = h.hexdigest()
        floor["blake3_impl"] = "python blake3 (max_threads=AUTO, 16 MiB reads)"
    except ImportError:
        floor["blake3_s"] = None
        floor["blake3_impl"] = "python blake3 not importable"
    b3sum = shutil.which("b3sum")
    if b3sum:
        r = run_measured([b3sum, str(db)])
        floor["b3sum_s"] = r.wall_s if r.rc == 0 else None
    else:
        floor["b3sum_s"] = None
    return floor


# --------------------------------------------------------------------------- tools under test
class Restic:
    name = "restic"

    def __init__(self, exe: str, repo: Path, cache: Path):
        self.exe, self.repo, self.cache = exe, repo, cache
        self.env = dict(os.environ, RESTIC_PASSWORD=RESTIC_PASSWORD, RESTIC_CACHE_DIR=str(cache))
        self.env.pop("RESTIC_REPOSITORY", None)
        self.env.pop("RESTIC_PASSWORD_FILE", None)

    def init(self) -> None:
        run_checked([self.exe, "--repo", str(self.repo), "init"], "restic init", env=self.env)

    def backup(self, paths: list[Path]) -> tuple[Result, dict]:
        cmd = [self.exe, "--repo", str(self.repo), "backup", "--json", "--host", "bench"] + [str(p) for p in paths]
        r = run_measured(cmd, env=self.env)
        if r.rc != 0:
            raise BenchError(f"restic backup failed (exit {r.rc}): {r.stderr.strip()[-2000:]}")
        summary: dict = {}
        for line in r.stdout.splitlines():
            line = line.strip()
            if line.startswith("{") and '"summary"' in line:
                try:
                    summary = json.loads(line)
                except ValueError:
                    pass
        return r, {
            "snapshot_id": summary.get("snapshot_id"),
            "reported_added_bytes": summary.get("data_added"),
            "reported_duration_s": summary.get("total_duration"),
        }


class Snapstore:
    def __init__(self, cmd: list[str], repo: Path, encrypted: bool = False):
        self.cmd, self.repo, self.encrypted = cmd, repo, encrypted
        self.name = "snapstore-enc" if encrypted else "snapstore"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
        if encrypted:
            self.env["SNAPSTORE_PASSWORD"] = SNAPSTORE_PASSWORD

    def init(self) -> None:
        run_checked(self.cmd + ["--repo", str(self.repo), "init"] + (["--encrypt"] if self.encrypted else []),
                    "snapstore init", env=self.env)

    def timed(self, args: list[str], what: str) -> Result:
        r = run_measured(self.cmd + ["--repo", str(self.repo)] + args, env=self.env)
        if r.rc != 0:
            raise BenchError(f"{self.name} {what} failed (exit {r.rc}): {r.stderr.strip()[-2000:]}")
        return r

    def backup(self, config: Path) -> tuple[Result, dict]:
        cmd = self.cmd + ["--repo", str(self.repo), "backup", "--config", str(config), "--json"]
        r = run_measured(cmd, env=self.env)
        if r.rc != 0:
            raise BenchError(f"snapstore backup failed (exit {r.rc}): {r.stderr.strip()[-2000:]}")
        data = _parse_json_object(r.stdout)
        if data is None:
            raise BenchError(f"snapstore backup --json printed no JSON object: {r.stdout[-2000:]!r}")
        return r, {
            "snapshot_id": data.get("snapshot_id"),
            "reported_added_bytes": data.get("added_bytes"),
            "reported_duration_s": data.get("duration_s"),
        }


def _parse_json_object(text: str) -> Optional[dict]:
    text = text.strip()
    try:
        obj = json.loads(text)
        return obj if isinstance(obj, dict) else None
    except ValueError:
        pass
    for line in reversed(text.splitlines()):  # tolerate log lines before the object
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
                if isinstance(obj, dict):
                    return obj
            except ValueError:
                continue
    return None


# --------------------------------------------------------------------------- the run
def find_db(agent: Path) -> Path:
    db = agent / "sqlite.db"
    if db.exists():
        return db
    cands = sorted(agent.glob("*.db"))
    if len(cands) == 1:
        return cands[0]
    raise BenchError(f"sample agent in {agent} has no sqlite.db (found: {[c.name for c in cands]})")


def db_files(db: Path) -> list[Path]:
    """The database file plus a non-empty WAL, if one was left behind."""
    files = [db]
    wal = Path(str(db) + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        files.append(wal)
    return files


def measure_backup(tool, arg, repo: Path, warm: list[Path]) -> dict[str, Any]:
    warm_read(warm)
    before = tree_bytes(repo)
    res, reported = tool.backup(arg)
    after = tree_bytes(repo)
    fig = {
        "time_s": res.wall_s,
        "added_bytes": after - before,
        "peak_rss_bytes": res.peak_rss,
        "repo_bytes": after,
    }
    fig.update(reported)
    progress(
        f"  {tool.name:9s} {human_secs(res.wall_s):>9s}  +{human_bytes(after - before):>10s}"
        f"  peak RSS {human_bytes(res.peak_rss)}"
    )
    return fig


def measure_reads(plain: "Snapstore", enc: "Snapstore", restored: Path) -> dict[str, Any]:
    """verify --full and a whole restore of the latest snapshot, plain and encrypted interleaved,
    ``READ_ROUNDS`` times; the best time of each (and the peak RSS of that run)."""
    reads: dict[str, Any] = {}
    for what, args in (("verify_full", ["verify", "--full"]),
                       ("restore", ["restore", "latest", "--to", str(restored)])):
        best: dict[str, Result] = {}
        for _ in range(READ_ROUNDS):
            for tool in (plain, enc):
                if restored.exists():
                    restored.unlink()
                res = tool.timed(args, what)
                if tool.name not in best or res.wall_s < best[tool.name].wall_s:
                    best[tool.name] = res
        p, e = best[plain.name], best[enc.name]
        reads[what] = {"snapstore": {"time_s": p.wall_s, "peak_rss_bytes": p.peak_rss},
                       "snapstore_enc": {"time_s": e.wall_s, "peak_rss_bytes": e.peak_rss},
                       "enc_ratio": ratio(e.wall_s, p.wall_s)}
        progress(f"  {what:12s} snapstore {human_secs(p.wall_s)}, encrypted {human_secs(e.wall_s)}"
                 f" ({fmt_ratio(reads[what]['enc_ratio'])})")
    if restored.exists():
        restored.unlink()
    return reads


def run_benchmark(args) -> dict[str, Any]:
    snap_cmd = find_snapstore(args.snapstore)
    scale = args.scale if args.scale is not None else default_scale(snap_cmd)

    restic_exe: Optional[str] = None
    restic_reason: Optional[str] = None
    if args.no_restic:
        restic_reason = "disabled with --no-restic"
    else:
        restic_exe, restic_reason = find_restic(allow_install=not args.no_install)
        if restic_exe is None:
            progress(f"WARNING: {restic_reason}; continuing with snapstore only")

    made_workdir = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="snapstore-bench-", dir="/tmp")).resolve()
    agent = workdir / "agent"
    snap_repo = workdir / "snapstore-repo"
    enc_repo = workdir / "snapstore-enc-repo"
    restic_repo = workdir / "restic-repo"
    restic_cache = workdir / "restic-cache"
    restored = workdir / "restored.db"
    ours = [agent, snap_repo, enc_repo, restic_repo, restic_cache, restored]
    if not made_workdir:
        workdir.mkdir(parents=True, exist_ok=True)
        for p in ours:
            if p.exists():
                shutil.rmtree(p)

    out: dict[str, Any] = {
        "command": shlex.join(["python", _argv0()] + sys.argv[1:]),
        "scale": scale,
        "workdir": str(workdir),
        "machine": {**machine_info(), "loadavg_start": list(os.getloadavg())},
        "versions": {
            "snapstore": snapstore_version(snap_cmd),
            "restic": tool_version([restic_exe, "version"]) if restic_exe else None,
        },
        "restic": {"available": restic_exe is not None, "reason": restic_reason, "path": restic_exe},
        "steps": [],
    }
    try:
        progress(f"workdir {workdir}")
        progress(f"sample agent: snapstore sample-agent {agent} --scale {_num(scale)} --seed 1")
        t0 = time.perf_counter()
        run_checked(snap_cmd + ["sample-agent", str(agent), "--scale", _num(scale), "--seed", "1"], "snapstore sample-agent")
        out["sample_agent_s"] = time.perf_counter() - t0
        db = find_db(agent)
        config = agent / "mirix.yaml"
        if not config.exists():
            raise BenchError(f"sample agent has no {config}")
        out["db_path"] = str(db)
        out["db_bytes"] = db.stat().st_size
        progress(f"database {db}: {human_bytes(out['db_bytes'])} (made in {human_secs(out['sample_agent_s'])})")

        progress("raw floor: read + BLAKE3 of the database file")
        out["floor"] = measure_floor(db)

        snap = Snapstore(snap_cmd, snap_repo)
        snap.init()
        enc = None if args.no_encrypted else Snapstore(snap_cmd, enc_repo, encrypted=True)
        if enc:
            enc.init()
        restic = None
        if restic_exe:
            restic = Restic(restic_exe, restic_repo, restic_cache)
            restic.init()
        out["repo_bytes_after_init"] = {
            "snapstore": tree_bytes(snap_repo),
            "restic": tree_bytes(restic_repo) if restic else None,
        }

        for name, label, seed in STEPS:
            step: dict[str, Any] = {"name": name, "label": label}
            if seed is not None:
                cmd = snap_cmd + ["sample-agent", str(agent), "--mutate", MUTATE_FRACTION, "--seed", str(seed)]
                progress(f"mutate: {shlex.join(cmd[len(snap_cmd):])}")
                t0 = time.perf_counter()
                run_checked(cmd, "snapstore sample-agent --mutate")
                step["mutate_s"] = time.perf_counter() - t0
            files = db_files(db)
            step["db_bytes"] = db.stat().st_size
            step["wal_bytes"] = sum(f.stat().st_size for f in files[1:])
            progress(f"step {label}: database {human_bytes(step['db_bytes'])}")
            step["restic"] = None
            if restic is not None:
                try:
                    step["restic"] = measure_backup(restic, files, restic_repo, files)
                except BenchError as e:
                    progress(f"WARNING: {e}; continuing with snapstore only")
                    out["restic"].update(available=False, reason=f"failed at step {name}: {e}")
                    restic = None
            step["snapstore"] = measure_backup(snap, config, snap_repo, files)
            step["snapstore_enc"] = measure_backup(enc, config, enc_repo, files) if enc else None
            r, s, e = step["restic"], step["snapstore"], step["snapstore_enc"]
            step["time_ratio"] = ratio(s["time_s"], r["time_s"]) if r else None
            step["bytes_ratio"] = ratio(s["added_bytes"], r["added_bytes"]) if r else None
            step["enc_ratio"] = ratio(e["time_s"], s["time_s"]) if e else None
            step["enc_vs_restic"] = ratio(e["time_s"], r["time_s"]) if e and r else None
            out["steps"].append(step)

        if enc:
            out["reads"] = measure_reads(snap, enc, restored)

        out["final_repo_bytes"] = {
            "snapstore": tree_bytes(snap_repo),
            "restic": tree_bytes(restic_repo) if out["restic"]["available"] else None,
        }
        out["machine"]["loadavg_end"] = list(os.getloadavg())
        out["targets"] = check_targets(out)
        return out
    finally:
        if args.keep:
            progress(f"kept {workdir}")
        elif made_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for p in ours:
                shutil.rmtree(p, ignore_errors=True)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _argv0() -> str:
    try:
        return os.path.relpath(sys.argv[0])
    except ValueError:
        return sys.argv[0]


def check_targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """issue 2's 'What it must show', evaluated on this run (None: cannot tell)."""
    steps = {s["name"]: s for s in out["steps"]}
    have_restic = out["restic"]["available"]
    t: list[dict[str, Any]] = []

    def add(what: str, ok: Optional[bool], detail: str) -> None:
        t.append({"target": what, "ok": ok, "detail": detail})

    for name in ("mutation1", "mutation2"):
        s = steps[name]
        add(f"{s['label']}: bytes ≤ {TARGET_MUTATION_BYTES_RATIO}× restic",
            (s["bytes_ratio"] <= TARGET_MUTATION_BYTES_RATIO) if have_restic and s["bytes_ratio"] is not None else None,
            f"ratio {fmt_ratio(s['bytes_ratio'])}")
        add(f"{s['label']}: time ≤ {TARGET_MUTATION_TIME_RATIO}× restic",
            (s["time_ratio"] <= TARGET_MUTATION_TIME_RATIO) if have_restic and s["time_ratio"] is not None else None,
            f"ratio {fmt_ratio(s['time_ratio'])}")
    nc = steps["nochange"]
    add("no change: adds < 64 KiB", nc["snapstore"]["added_bytes"] < TARGET_NOCHANGE_BYTES,
        human_bytes(nc["snapstore"]["added_bytes"]))
    add("no change: time ≤ restic",
        (nc["time_ratio"] <= 1.0) if have_restic and nc["time_ratio"] is not None else None,
        f"ratio {fmt_ratio(nc['time_ratio'])}")
    ini = steps["initial"]
    add("initial: time ≤ restic",
        (ini["time_ratio"] <= 1.0) if have_restic and ini["time_ratio"] is not None else None,
        f"ratio {fmt_ratio(ini['time_ratio'])}")
    ir, isn = ini["restic"], ini["snapstore"]
    add("initial: repository size ≤ restic's",
        (isn["repo_bytes"] <= ir["repo_bytes"]) if have_restic and ir else None,
        f"{human_bytes(isn['repo_bytes'])} vs {human_bytes(ir['repo_bytes']) if ir else 'n/a'}")
    fr = out["final_repo_bytes"]
    add("final repository size ≤ restic's",
        (fr["snapstore"] <= fr["restic"]) if have_restic and fr["restic"] else None,
        f"{human_bytes(fr['snapstore'])} vs {human_bytes(fr['restic'])}")
    peak = max(s["snapstore"]["peak_rss_bytes"] for s in out["steps"])
    add("snapstore peak RSS < 300 MB", peak < TARGET_PEAK_RSS, human_bytes(peak))
    if out.get("reads"):
        for name in ("initial", "mutation1", "mutation2"):
            s = steps[name]
            add(f"encrypted {s['label']}: time ≤ {TARGET_ENCRYPTED_RATIO}× unencrypted",
                s["enc_ratio"] <= TARGET_ENCRYPTED_RATIO, f"ratio {fmt_ratio(s['enc_ratio'])}")
        for name in ("mutation1", "mutation2"):
            s = steps[name]
            add(f"encrypted {s['label']}: time ≤ {TARGET_ENCRYPTED_VS_RESTIC}× restic",
                (s["enc_vs_restic"] <= TARGET_ENCRYPTED_VS_RESTIC) if s["enc_vs_restic"] is not None else None,
                f"ratio {fmt_ratio(s['enc_vs_restic'])}")
        for what, label in (("verify_full", "verify --full"), ("restore", "whole restore")):
            x = out["reads"][what]
            add(f"encrypted {label}: time ≤ {TARGET_ENCRYPTED_RATIO}× unencrypted",
                x["enc_ratio"] <= TARGET_ENCRYPTED_RATIO, f"ratio {fmt_ratio(x['enc_ratio'])}")
    return t


# --------------------------------------------------------------------------- reporting
TABLE_HEAD = [
    "step", "restic time", "snapstore time", "time ratio snapstore/restic",
    "restic bytes added", "snapstore bytes added", "bytes ratio",
    "snapstore peak RSS", "restic peak RSS",
]


def table_rows(out: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in out["steps"]:
        r, n = s["restic"], s["snapstore"]
        rows.append([
            s["label"],
            human_secs(r["time_s"]) if r else "n/a",
            human_secs(n["time_s"]),
            fmt_ratio(s["time_ratio"]),
            human_bytes(r["added_bytes"]) if r else "n/a",
            human_bytes(n["added_bytes"]),
            fmt_ratio(s["bytes_ratio"]),
            human_bytes(n["peak_rss_bytes"]),
            human_bytes(r["peak_rss_bytes"]) if r else "n/a",
        ])
    return rows


ENC_HEAD = ["step", "snapstore time", "encrypted time", "encrypted/unencrypted", "encrypted/restic",
            "encrypted bytes added", "encrypted peak RSS"]


def encryption_rows(out: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in out["steps"]:
        e = s.get("snapstore_enc")
        if e:
            rows.append([s["label"], human_secs(s["snapstore"]["time_s"]), human_secs(e["time_s"]),
                         fmt_ratio(s["enc_ratio"]), fmt_ratio(s["enc_vs_restic"]), human_bytes(e["added_bytes"]),
                         human_bytes(e["peak_rss_bytes"])])
    for what, label in (("verify_full", "verify --full"), ("restore", "restore latest (whole)")):
        x = (out.get("reads") or {}).get(what)
        if x:
            rows.append([label, human_secs(x["snapstore"]["time_s"]), human_secs(x["snapstore_enc"]["time_s"]),
                         fmt_ratio(x["enc_ratio"]), "", "", human_bytes(x["snapstore_enc"]["peak_rss_bytes"])])
    return rows


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def summary_lines(out: dict[str, Any]) -> list[str]:
    fl = out["floor"]
    fr = out["final_repo_bytes"]
    lines = [
        f"database file: {human_bytes(out['db_bytes'])} ({out['db_bytes']} bytes) at scale {_num(out['scale'])}"
        f", after the two mutations {human_bytes(out['steps'][-1]['db_bytes'])}",
        f"raw floor: read once {human_secs(fl['read_s'])}; read + BLAKE3 {human_secs(fl.get('blake3_s'))}"
        f" ({fl.get('blake3_impl')})"
        + (f"; b3sum {human_secs(fl['b3sum_s'])}" if fl.get("b3sum_s") is not None else "; b3sum not installed"),
        f"final repository size: snapstore {human_bytes(fr['snapstore'])}"
        f", restic {human_bytes(fr['restic']) if fr['restic'] is not None else 'n/a'}"
        f" (ratio {fmt_ratio(ratio(fr['snapstore'], fr['restic']))})",
    ]
    if not out["restic"]["available"]:
        lines.append(f"restic: NOT AVAILABLE — {out['restic']['reason']}")
    return lines


def targets_lines(out: dict[str, Any]) -> list[str]:
    mark = {True: "PASS", False: "FAIL", None: "n/a "}
    return [f"{mark[t['ok']]}  {t['target']} ({t['detail']})" for t in out["targets"]]


def print_report(out: dict[str, Any]) -> None:
    say()
    say(text_table(TABLE_HEAD, table_rows(out)))
    if out.get("reads"):
        say()
        say(text_table(ENC_HEAD, encryption_rows(out)))
    say()
    for line in summary_lines(out):
        say(line)
    say()
    say("issue 2 and issue 13 targets:")
    for line in targets_lines(out):
        say("  " + line)


def markdown_section(out: dict[str, Any]) -> str:
    m, v = out["machine"], out["versions"]
    parts = [
        SECTION_START,
        "## snapstore vs restic on the sample agent",
        "",
        f"Produced by `{out['command']}` (run from the repository root) on {m['date']}.",
        "",
        markdown_table(TABLE_HEAD, table_rows(out)),
        "",
        *(["Encrypted repository (`snapstore init --encrypt`) in the same run; verify and restore are the "
           f"best of {READ_ROUNDS} interleaved runs each:", "",
           markdown_table(ENC_HEAD, encryption_rows(out)), ""] if out.get("reads") else []),
        "Times are wall-clock seconds of the backup command with a warm page cache (the database "
        "file is read once before every timed backup). Bytes added are measured by the benchmark "
        "the same way for both tools: the growth of the total size of all files under the "
        "repository directory. Peak RSS is the backup process's maximum resident set size "
        "(`os.wait4`). Ratios are snapstore/restic. The 1% mutations are "
        "`snapstore sample-agent DIR --mutate 0.01 --seed 2` and `--seed 3`.",
        "",
    ]
    parts += [f"- {line}" for line in summary_lines(out)]
    parts += ["", "Against issue 2's and issue 13's targets:", ""]
    parts += [f"- {line}" for line in targets_lines(out)]
    parts += [
        "",
        "Machine and versions:",
        "",
        f"- load average (1, 5, 15 min) at the start {_load(m.get('loadavg_start'))}, at the end "
        f"{_load(m.get('loadavg_end'))}: the machine is shared, times move with it",
        f"- {m['nproc']} CPUs: {m['cpu_model']}; memory {human_bytes(m['mem_total_bytes'])}; "
        f"{m.get('os') or 'unknown OS'}, kernel {m['kernel']}; Python {m['python']}",
        f"- {v.get('snapstore') or 'snapstore (version unknown)'}",
        f"- {v.get('restic') or 'restic: not available'}",
        SECTION_END,
    ]
    return "\n".join(parts) + "\n"


def _load(avg) -> str:
    return " / ".join(f"{x:.1f}" for x in avg) if avg else "n/a"


def write_markdown(path: Path, section: str) -> None:
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if SECTION_START in text and SECTION_END in text:
            a = text.index(SECTION_START)
            b = text.index(SECTION_END) + len(SECTION_END)
            if text[b:b + 1] == "\n":
                b += 1
            text = text[:a] + section + text[b:]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "# Benchmarks\n\n" + section
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- main
def parse_args(argv: Optional[list[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=None,
                   help="sample-agent scale (default: snapstore.sample_agent.BENCHMARK_SCALE, about 1 GB)")
    p.add_argument("--workdir", default=None,
                   help="where the agent and both repositories go (default: a new directory under /tmp)")
    p.add_argument("--out", default=None, help="write/replace the benchmark's section in this markdown file")
    p.add_argument("--no-restic", action="store_true", help="benchmark snapstore alone")
    p.add_argument("--no-install", action="store_true", help="use restic only if it is on PATH; never apt-get it")
    p.add_argument("--json", action="store_true", help="print every figure as one JSON object on stdout")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--no-encrypted", action="store_true", help="skip the encrypted repository's column")
    p.add_argument("--snapstore", default=None, help="the snapstore command (default: the one beside this Python)")
    return p.parse_args(argv)


def _reexec_in_snapstore_python(args) -> None:
    """Run under the Python that has snapstore (and blake3) installed, if this one has not."""
    try:
        import blake3  # type: ignore  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("_SNAPSTORE_BENCH_REEXEC"):
        return
    try:
        py = python_of(find_snapstore(args.snapstore))
    except BenchError:
        return
    if py and os.path.abspath(py) != os.path.abspath(sys.executable):
        os.environ["_SNAPSTORE_BENCH_REEXEC"] = "1"
        progress(f"blake3 is not importable here: re-running under {py}")
        os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


def main(argv: Optional[list[str]] = None) -> int:
    global _json_mode
    args = parse_args(argv)
    _reexec_in_snapstore_python(args)
    _json_mode = args.json
    try:
        out = run_benchmark(args)
    except BenchError as e:
        print(f"bench_backup: error: {e}", file=sys.stderr)
        return 1
    print_report(out)
    if args.out:
        write_markdown(Path(args.out), markdown_section(out))
        progress(f"wrote {args.out}")
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
