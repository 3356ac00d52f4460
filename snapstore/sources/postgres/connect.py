"""Reaching a PostgreSQL server: connections and the client tools, never leaking the password.

The password may come in the URL (``postgresql://user:pw@host/db``); it is passed
to psycopg as a keyword and to ``pg_dump``/``pg_restore`` as ``PGPASSWORD`` in
their environment, never on a command line (visible in ``ps``) and never in
anything snapstore stores or prints (``redact_url``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ...errors import PgPrerequisite, SourceError
from ..agent import redact_url

PG_BIN_HINT = "install the PostgreSQL client (apt-get install postgresql-client) or set SNAPSTORE_PG_BIN"


@dataclass(frozen=True)
class PgTarget:
    """A database to connect to: libpq parameters without the password, and the password."""

    params: dict
    password: str | None
    label: str  # the URL with the password redacted: safe to print and store

    @classmethod
    def from_url(cls, url: str) -> "PgTarget":
        clean = re.sub(r"^postgresql\+\w+://", "postgresql://", url)
        try:
            params = conninfo_to_dict(clean)
        except psycopg.ProgrammingError as exc:
            raise SourceError(f"not a usable PostgreSQL URL {redact_url(url)}: {exc}") from None
        password = params.pop("password", None)
        return cls(params, password, redact_url(url))

    @property
    def dbname(self) -> str:
        return self.params.get("dbname") or self.params.get("user") or "postgres"

    def conninfo(self) -> str:
        """A libpq string without the password (for pg_dump's ``-d``)."""
        return make_conninfo(**self.params)

    def env(self) -> dict:
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    @property
    def server(self) -> str:
        return f"{self.params.get('host', 'localhost')}:{self.params.get('port', 5432)}"

    def sibling(self, dbname: str) -> "PgTarget":
        """The same server and credentials, another database (``postgres`` to create one)."""
        return PgTarget({**self.params, "dbname": dbname}, self.password, self.label)

    def connect(self, **kwargs) -> psycopg.Connection:
        try:
            return psycopg.connect(self.conninfo(), password=self.password, **kwargs)
        except psycopg.OperationalError as exc:
            raise self._connect_error(exc) from None

    def _connect_error(self, exc: psycopg.OperationalError) -> SourceError:
        """libpq's message, told in one line a user can act on (never the password)."""
        text = str(exc).strip()
        user = self.params.get("user", "")
        if "password authentication failed" in text or "no password supplied" in text:
            why = f"wrong password for user {user}"
        elif re.search(r'database "[^"]*" does not exist', text):
            return DatabaseMissing(f"cannot connect to {self.label}: database {self.dbname} does not exist")
        elif re.search(r'role "[^"]*" does not exist', text):
            why = f"user {user} does not exist"
        elif "Connection refused" in text:
            why = "connection refused (is the server running and listening there?)"
        else:
            why = text.splitlines()[-1] if text else "connection failed"
        return PgPrerequisite(f"cannot connect to {self.label}: {why}")


class DatabaseMissing(PgPrerequisite):
    """The database does not exist (a whole restore may create it)."""


def _major(binary: Path) -> int:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def pg_tool(name: str, server_major: int = 0) -> str:
    """The path of PostgreSQL client ``name`` (pg_dump, pg_restore, psql) at least as new as
    the server: ``SNAPSTORE_PG_BIN`` (a directory) first, then PATH, then the newest
    /usr/lib/postgresql/*/bin.  pg_dump refuses a newer server; say so before any work."""
    candidates: list[Path] = []
    if os.environ.get("SNAPSTORE_PG_BIN"):
        candidates.append(Path(os.environ["SNAPSTORE_PG_BIN"]) / name)
    else:
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
        debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0, reverse=True)
        candidates += debian
    usable = [c for c in candidates if os.access(c, os.X_OK)]
    if not usable:
        raise SourceError(f"{name} not found: {PG_BIN_HINT}")
    for cand in usable:
        if _major(cand) >= server_major:
            return str(cand)
    raise SourceError(f"{name} at {usable[0]} is older than the PostgreSQL {server_major} server; "
                      f"{PG_BIN_HINT} (version {server_major} or newer)")


def psql_load(target: PgTarget, script: Path) -> str | None:
    """Load an SQL script with ``psql`` (a version at least the server's) in one transaction,
    stopping at the first error; the password goes through ``PGPASSWORD``.  None when it loaded,
    else psql's first error line (nothing was changed)."""
    with target.connect() as conn:
        server_major = conn.info.server_version // 10000
    psql = pg_tool("psql", server_major)
    proc = subprocess.run([psql, "-X", "--set", "ON_ERROR_STOP=on", "--single-transaction", "-q",
                           "-d", target.conninfo(), "-f", str(script)],
                          capture_output=True, env=target.env(), stdin=subprocess.DEVNULL)
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[0] if lines else f"psql exited {proc.returncode}"
