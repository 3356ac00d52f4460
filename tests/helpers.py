"""Helpers shared by the process-level tests (crash safety, concurrency, consistency, CLI).

Everything here is real: the ``snapstore`` console script runs as a subprocess,
databases are real SQLite files.  Import with ``from helpers import ...``
(``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives there and the
``tests`` directory is not a package).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgpack

from snapstore.chunklist import load_list
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository

DB_PATH = "database/sqlite.db"


def snapstore_command() -> list[str]:
    """The installed ``snapstore`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("snapstore")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("snapstore")
    if found:
        return [found]
    return [sys.executable, "-c", "from snapstore.cli.main import main; main()"]


SNAPSTORE = snapstore_command()


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment without repository/lock settings leaking in, plus ``extra``.
    A repository passphrase set by the test (``SNAPSTORE_PASSWORD``) is kept, as a user's shell would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_") or k == "SNAPSTORE_PASSWORD"}
    env.update(extra)
    return env


def run_cli(*args: str | os.PathLike, repo: str | os.PathLike | None = None, env: dict | None = None,
            timeout: float = 120, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    cmd = list(SNAPSTORE)
    if repo is not None:
        cmd += ["--repo", str(repo)]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or cli_env(),
                          cwd=cwd, stdin=subprocess.DEVNULL)


def popen_cli(*args: str | os.PathLike, repo: str | os.PathLike | None = None, env: dict | None = None,
              **kw) -> subprocess.Popen:
    """Start a ``snapstore`` command in its own process group (so it can be killed as a whole)."""
    cmd = list(SNAPSTORE)
    if repo is not None:
        cmd += ["--repo", str(repo)]
    cmd += [str(a) for a in args]
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(cmd, env=env or cli_env(), stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True, **kw)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a process started by ``popen_cli`` and its children (pool workers)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


# Linux keeps a process's peak RSS across exec, and a child exec'd straight from a test process
# (large after making a sample agent) would start from that process's peak: a small launcher
# starts the command and reports the peak of that command alone, as os.wait4 gives it.
_PEAK_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
_pid, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def cli_peak_rss(*args: str | os.PathLike, repo: str | os.PathLike | None = None) -> int:
    """Peak RSS in bytes of a ``snapstore`` command and of every child it waited for (the sqlite3
    shell, forked workers); the command must succeed."""
    cmd = [*SNAPSTORE, *(["--repo", str(repo)] if repo is not None else []), *map(str, args)]
    done = subprocess.run([sys.executable, "-c", _PEAK_LAUNCHER, *cmd], env=cli_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=True)
    code, peak_kib = map(int, done.stdout.split())
    assert code == 0, f"{' '.join(cmd)} exited {code}: {done.stderr}"
    return peak_kib * 1024  # Linux reports KiB


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


# -- repositories ---------------------------------------------------------------------

def backed_up_agent(root: Path, *, scale: float, seed: int, include_logs: bool = False, repo: str | None = None):
    """A sample agent in ``root/agent`` and a repository (``repo``, else ``root/repo``) holding one
    backup of it (made with the CLI, as a user would); returns (agent, repository location)."""
    from snapstore.sample_agent import create_sample_agent

    agent = create_sample_agent(root / "agent", scale=scale, seed=seed)
    repo_path = repo or root / "repo"
    ok(run_cli("init", repo=repo_path))
    ok(run_cli("backup", "--config", agent.config_path, *(["--include-logs"] if include_logs else []),
               repo=repo_path))
    return agent, repo_path


def init_small_pack_repo(location: str | os.PathLike, pack_size: int) -> Repository:
    """A new repository (on either backend) whose config asks for tiny packs, so a backup writes
    many packs and index files."""
    storage = Repository.init(location).storage
    cfg = msgpack.unpackb(storage.get("config"))
    cfg["pack_size"] = pack_size
    storage.put("config", msgpack.packb(cfg))
    repo = Repository.open(location)
    assert repo.config.pack_size == pack_size
    return repo


def snapshot_ids(repo_path: str | os.PathLike) -> list[str]:
    return Repository.open(repo_path).snapshot_ids()




def referenced_blobs(repo: Repository) -> set[bytes]:
    """Every blob (data chunks and chunk-list trees) that some snapshot needs."""
    needed: set[bytes] = set()
    with repo.reader() as reader:
        for snap in list_snapshots(repo):
            for entry in snap.files:
                ids = load_list(entry.chunks, reader)
                needed.update(ids[i:i + 32] for i in range(0, len(ids), 32))
                needed.update(entry.chunks.tree_ids(reader))
    return needed




# -- SQLite -----------------------------------------------------------------------------

def connect_copy(db_path: Path) -> sqlite3.Connection:
    """Open a database (a dumped copy or a quiet source) for checking."""
    return sqlite3.connect(str(db_path), isolation_level=None, timeout=60)


def integrity_check(db_path: Path) -> str:
    conn = connect_copy(db_path)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "\n".join(str(r[0]) for r in rows)


def fts_tables(conn: sqlite3.Connection) -> list[str]:
    return [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'")]


def fts_integrity_check(db_path: Path) -> None:
    """FTS5's own check: every external-content index matches its table (raises if not)."""
    conn = connect_copy(db_path)
    try:
        for fts in fts_tables(conn):
            conn.execute(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')")
    finally:
        conn.close()


def table_checksums(db_path: Path) -> dict[str, str]:
    """Content digest per ordinary table (row order independent), read in one transaction."""
    conn = connect_copy(db_path)
    try:
        conn.execute("BEGIN")
        tables = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name")]
        sums = {}
        for table in tables:
            digests = sorted(hashlib.sha256(repr(row).encode()).digest()
                             for row in conn.execute(f'SELECT * FROM "{table}"'))
            sums[table] = hashlib.sha256(b"".join(digests)).hexdigest()
        conn.execute("COMMIT")
    finally:
        conn.close()
    return sums


def write_counts(db_path: Path) -> tuple[int, int, dict[str, int]]:
    """(messages, episodic_memory, agent_stats) read in one transaction."""
    conn = connect_copy(db_path)
    try:
        conn.execute("BEGIN")
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        episodes = conn.execute("SELECT count(*) FROM episodic_memory").fetchone()[0]
        stats = dict(conn.execute("SELECT name, value FROM agent_stats"))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return messages, episodes, stats


def wait_for(predicate, *, timeout: float = 60, what: str = "condition", interval: float = 0.01) -> None:
    """Poll until ``predicate()`` is true; the timeout only guards against hangs."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def repo_listing(repo_path: Path) -> dict[str, tuple[int, int]]:
    """A local repository's files with size and mtime: equal listings mean nothing was rewritten."""
    out = {}
    for dirpath, _, filenames in os.walk(repo_path):
        for name in filenames:
            full = Path(dirpath) / name
            st = full.stat()
            out[full.relative_to(repo_path).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*"))}


def assert_one_line_error(result, *mentions: str) -> str:
    assert result.returncode != 0, f"expected a failure:\n{result.stdout}"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("snapstore: "), lines[0]
    assert result.stdout == "", result.stdout
    for word in mentions:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


# -- temp names -----------------------------------------------------------------------

def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def temp_name_of(pid: int, name: str) -> str:
    """The temp name process ``pid`` of this host would give ``name``."""
    from snapstore.atomic import temp_name

    head, _, rand = temp_name(name).rpartition("-")
    return f"{head.rsplit('.', 1)[0]}.{pid}-{rand}"


def pack_files(repo: Repository) -> list[Path]:
    """The pack files of a local repository (tests that damage them on disk)."""
    return [repo.storage.root / name for name in repo.pack_names()]


# -- S3 (the session's SeaweedFS server: tests/conftest.py) -----------------------------------

S3_BUCKET = "snapstore-tests"


def s3_client(server):
    import boto3
    import botocore.config

    return boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=server.access_key,
                        aws_secret_access_key=server.secret_key, region_name="us-east-1",
                        config=botocore.config.Config(s3={"addressing_style": "path"}))

