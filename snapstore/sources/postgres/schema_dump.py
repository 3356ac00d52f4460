"""The schema of the snapshot, by the server's own ``pg_dump`` (``--snapshot``), split into sections.

One ``pg_dump -Fc --schema-only`` runs beside the data capture on the shared
snapshot; ``pg_restore`` (local, no server) then writes its pre-data and
post-data sections as plain SQL, and the ``DROP … IF EXISTS`` statements a
``--clean --if-exists`` load runs first.  Owners and grants are left out
(``--no-owner --no-privileges``, as Mirix's own load did): the objects belong to
whoever loads them, so a dump loads on a server without the original roles.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...errors import SourceError
from .connect import PgTarget, pg_tool

SECTION_FLAGS = ["--no-owner", "--no-privileges"]


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


class SchemaDump:
    """``pg_dump`` of the schema, started in the background on an exported snapshot."""

    def __init__(self, target: PgTarget, snapshot_id: str, server_major: int):
        self.pg_dump = pg_tool("pg_dump", server_major)
        self.pg_restore = pg_tool("pg_restore", server_major)
        self.target = target
        self.dir = Path(tempfile.mkdtemp(prefix="snapstore-pgschema-"))
        self.archive = self.dir / "schema.dump"
        self._proc = subprocess.Popen(
            [self.pg_dump, "-Fc", "--schema-only", f"--snapshot={snapshot_id}", "-f", str(self.archive),
             "-d", target.conninfo()],
            env=target.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait(self) -> None:
        _, err = self._proc.communicate()
        if self._proc.returncode != 0:
            raise SourceError(f"pg_dump of the schema of {self.target.label} failed: {_last_line(err)}")

    def _restore(self, *flags: str) -> str:
        done = subprocess.run([self.pg_restore, *SECTION_FLAGS, *flags, "-f", "-", str(self.archive)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SourceError(f"pg_restore could not read the schema dump: {_last_line(done.stderr)}")
        return done.stdout

    def sections(self) -> tuple[dict[str, str], bool]:
        """``pre-data``, ``post-data`` and ``clean`` SQL texts, and whether pg_dump fenced them
        with ``\\restrict``: its key is random on every run, so it is taken out (else the schema
        would never deduplicate) and the export writes a key of its own."""
        pre, fenced_pre = unfence(self._restore("--section=pre-data"))
        post, fenced_post = unfence(self._restore("--section=post-data"))
        return ({"pre-data": pre, "post-data": post,
                 "clean": drop_statements(self._restore("--schema-only", "--clean", "--if-exists"))},
                fenced_pre or fenced_post)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


_FENCE = re.compile(r"^\\(un)?restrict \S+\n", re.M)


def unfence(sql: str) -> tuple[str, bool]:
    """``sql`` without pg_dump's ``\\restrict KEY`` / ``\\unrestrict KEY`` lines."""
    out, n = _FENCE.subn("", sql)
    return out, n > 0


def drop_statements(clean_dump: str) -> str:
    """The statements ``pg_restore --clean`` runs before its first object: the lines between
    the header (comments, ``\\restrict``, ``SET``) and the first ``-- Name:`` block."""
    out = []
    for line in clean_dump.splitlines():
        if line.startswith("-- Name: ") or line.startswith("-- Data for Name: "):
            break
        if not line.strip() or line.startswith(("--", "\\", "SET ", "SELECT pg_catalog.set_config(")):
            continue
        out.append(line)
    return "".join(ln + "\n" for ln in out)
