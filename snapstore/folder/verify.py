"""``verify_backup(path)``: is a backup folder whole and usable? (the reference's result shape)

Four checks, each True/False in ``results``, with the reasons in ``errors``:

* ``file_integrity`` — every file matches ``verification/checksums.md5``, and
  ``metadata.json`` agrees with it; no link or path leaves the folder.
* ``database_integrity`` — SQLite: the database file passes ``PRAGMA integrity_check``
  and ``mirix_dump.sql`` loads into a scratch database with the row counts of
  ``schema_info.json``.  PostgreSQL: the dump is a complete ``pg_dump`` file and,
  given a server (``pg_url``), loads into a scratch database there.
* ``memory_completeness`` — every memory file holds the rows ``schema_info.json`` says.
* ``config_validity`` — ``config/mirix.yaml`` parses and names the agent and its model;
  ``config/environment.env`` is ``KEY=value`` lines.
"""
from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import orjson
import yaml

from ..errors import SnapstoreError
from ..memory_types import memory_file_name, memory_tables
from ..sqlite_uri import sqlite_uri
from .checksums import checksum_problems
from .layout import DUMP, SCHEMA_INFO, SQLITE_DB, ZST, folder_files, read_metadata
from .zst import decompress_to

CHECKS = ("file_integrity", "database_integrity", "memory_completeness", "config_validity")


@contextmanager
def _plain_file(folder: Path, rel: str) -> Iterator[Path | None]:
    """The file ``rel`` of the folder, decompressed to a temp file when stored as .zst."""
    if (folder / rel).is_file():
        yield folder / rel
        return
    if not (folder / (rel + ZST)).is_file():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="snapstore-verify-") as tmp:
        out = Path(tmp) / Path(rel).name
        yield decompress_to(folder / (rel + ZST), out)


def _schema_counts(folder: Path) -> dict[str, int]:
    info = json.loads((folder / SCHEMA_INFO).read_text())
    return {name: t["row_count"] for name, t in info["tables"].items() if not t.get("virtual")}


def _check_sqlite(folder: Path, errors: list[str]) -> None:
    """The database file and the dump, checked side by side (SQLite and sqlite3 release the GIL)."""
    db_errors: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        db_done = pool.submit(_check_sqlite_file, folder, db_errors)
        _check_sqlite_dump(folder, errors)
        db_done.result()
    errors[:0] = db_errors


def _check_sqlite_file(folder: Path, errors: list[str]) -> None:
    with _plain_file(folder, SQLITE_DB) as db:
        if db is None:
            return
        conn = sqlite3.connect(sqlite_uri(db, immutable=1), uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            result = [(str(exc),)]
        finally:
            conn.close()
        if result != [("ok",)]:
            errors.append(f"{SQLITE_DB}: integrity_check: {result[0][0]}")


def _check_sqlite_dump(folder: Path, errors: list[str]) -> None:
    with _plain_file(folder, DUMP) as dump, tempfile.TemporaryDirectory(prefix="snapstore-verify-") as tmp:
        if dump is None:
            errors.append(f"{DUMP} is missing")
            return
        if shutil.which("sqlite3") is None:
            errors.append("the sqlite3 command is needed to load the dump (apt-get install sqlite3)")
            return
        scratch = Path(tmp) / "scratch.db"
        with open(dump, "rb") as f:
            proc = subprocess.run(["sqlite3", "-bail", str(scratch)], stdin=f, capture_output=True)
        if proc.returncode != 0:
            errors.append(f"{DUMP} does not load: {proc.stderr.decode(errors='replace').strip()[:300]}")
            return
        conn = sqlite3.connect(scratch)
        try:
            # SQLite built this database itself just now: its structure is checked, not its indexes.
            if conn.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
                errors.append(f"{DUMP} loads into a database that fails quick_check")
            try:
                expected = _schema_counts(folder)
            except (OSError, ValueError, KeyError) as exc:
                errors.append(f"{SCHEMA_INFO} is unreadable: {exc}")
                return
            for table, count in expected.items():
                got = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                if got != count:
                    errors.append(f"{DUMP}: table {table} loads {got} rows, {SCHEMA_INFO} says {count}")
        finally:
            conn.close()


def _check_postgres(folder: Path, errors: list[str], pg_url: str | None) -> None:
    with _plain_file(folder, DUMP) as dump:
        if dump is None:
            errors.append(f"{DUMP} is missing")
            return
        with open(dump, "rb") as f:
            head = f.read(4096)
            f.seek(max(0, dump.stat().st_size - 4096))
            tail = f.read()
        if b"PostgreSQL database dump" not in head or b"PostgreSQL database dump complete" not in tail:
            errors.append(f"{DUMP} is not a complete pg_dump file")
            return
        if pg_url:
            _load_into_scratch(dump, pg_url, errors)


def _load_into_scratch(dump: Path, pg_url: str, errors: list[str]) -> None:
    """Load the dump into a throwaway database on ``pg_url``'s server, then drop it."""
    import psycopg
    from psycopg import sql

    from ..sources.postgres.connect import PgTarget, psql_load

    server = PgTarget.from_url(pg_url)
    scratch = server.sibling(f"snapstore_verify_{secrets.token_hex(4)}")
    try:
        with server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch.dbname)))
        try:
            failure = psql_load(scratch, dump)
            if failure:
                errors.append(f"{DUMP} does not load: {failure[:300]}")
        finally:
            with server.connect(autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch.dbname)))
    except psycopg.Error as exc:
        errors.append(f"cannot use the PostgreSQL server to load the dump: {str(exc).splitlines()[0]}")
    except SnapstoreError as exc:
        errors.append(f"cannot use the PostgreSQL server to load the dump: {exc.message}")


def _check_memories(folder: Path, config: dict, errors: list[str]) -> None:
    try:
        counts = _schema_counts(folder)
    except (OSError, ValueError, KeyError) as exc:
        errors.append(f"{SCHEMA_INFO} is unreadable: {exc}")
        return
    for kind, table in memory_tables(config).items():
        rel = f"memories/{memory_file_name(kind)}"
        with _plain_file(folder, rel) as path:
            if path is None:
                errors.append(f"{rel} is missing")
                continue
            try:
                doc = orjson.loads(path.read_bytes())
                rows = len(doc["rows"])
            except (ValueError, KeyError, TypeError) as exc:
                errors.append(f"{rel} is not a memory file: {exc}")
                continue
        expected = counts.get(table, 0)
        if rows != expected or doc.get("row_count") != expected:
            errors.append(f"{rel} holds {rows} rows, {SCHEMA_INFO} says {table} has {expected}")


def _check_config(folder: Path, errors: list[str]) -> dict:
    path = folder / "config" / "mirix.yaml"
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        errors.append("config/mirix.yaml is missing")
        return {}
    except yaml.YAMLError as exc:
        errors.append(f"config/mirix.yaml is not valid YAML: {str(exc).splitlines()[0]}")
        return {}
    if not isinstance(doc, dict):
        errors.append("config/mirix.yaml is not a mapping")
        return {}
    if not doc.get("agent_name"):
        errors.append("config/mirix.yaml does not name the agent (agent_name)")
    if not (doc.get("model_name") or doc.get("llm_config") or doc.get("model")):
        errors.append("config/mirix.yaml names no model (model_name or llm_config)")
    env = folder / "config" / "environment.env"
    if env.is_file():
        bad = [line for line in env.read_text().splitlines()
               if line.strip() and not line.startswith("#") and "=" not in line]
        if bad:
            errors.append(f"config/environment.env has lines that are not KEY=value: {bad[0][:60]!r}")
    return doc


def verify_backup(backup_path: str | Path, *, pg_url: str | None = None,
                  progress: Callable[[int], None] | None = None) -> dict:
    """The reference's ``{"valid": bool, "results": {check: bool}}``, plus ``errors`` per check.

    ``progress`` is called with the bytes of the folder's files as their checksums are taken."""
    folder = Path(backup_path)
    errors: dict[str, list[str]] = {check: [] for check in CHECKS}
    if not folder.is_dir():
        errors["file_integrity"].append(f"{folder} is not a directory")
        return _result(folder, errors, {}, skipped=CHECKS[1:])
    try:
        metadata = read_metadata(folder)
        list(folder_files(folder))  # links or paths leaving the folder: refused before any file is opened
    except SnapstoreError as exc:
        errors["file_integrity"].append(exc.message)
        return _result(folder, errors, {}, skipped=CHECKS[1:])
    if metadata["backup_info"].get("include_config", True):
        config = _check_config(folder, errors["config_validity"])
    else:
        config = {}  # saved with include_config=False: there is no config to check
    db_type = metadata["backup_info"].get("database_type")
    with ThreadPoolExecutor(2) as pool:  # the checksums beside the database checks: both mostly out of the GIL
        checksums = pool.submit(checksum_problems, folder, metadata, progress)
        if db_type == "postgresql":
            _check_postgres(folder, errors["database_integrity"], pg_url)
        else:
            _check_sqlite(folder, errors["database_integrity"])
        _check_memories(folder, config, errors["memory_completeness"])
        try:
            errors["file_integrity"] += checksums.result()[1]
        except SnapstoreError as exc:
            errors["file_integrity"].append(exc.message)
    return _result(folder, errors, metadata)


def _result(folder: Path, errors: dict[str, list[str]], metadata: dict, skipped: tuple = ()) -> dict:
    for check in skipped:
        errors[check].append("not checked: the folder failed file_integrity")
    results = {check: not errors[check] for check in CHECKS}
    return {"valid": all(results.values()), "results": results,
            "errors": {k: v for k, v in errors.items() if v}, "backup_path": str(folder),
            "backup_info": metadata.get("backup_info", {})}
