"""``recover_database_only``: rebuild the database from the backup's SQL dump alone.

For when the memory files are not wanted or the database file itself is suspect:
the dump is loaded with the engine's own tool, never through a shell string.

* SQLite (``sqlite3 .dump``): the real ``sqlite3`` binary loads the dump into a new
  file beside the target (``sqlite3 -bail NEW < dump``); only when that file
  passes ``integrity_check`` is a ``pre-restore`` safety snapshot of the live
  database taken and the new content copied in through SQLite's online-backup API
  (connections still open see the old or the new database, never a mix, and a
  stale ``-wal`` is never replayed).  A target that does not exist yet is created
  by an atomic rename.
* PostgreSQL (``pg_dump``): ``psql -X --set ON_ERROR_STOP=on --single-transaction
  -f DUMP`` (a psql at least as new as the server: ``SNAPSTORE_PG_BIN``, PATH) into
  the target database: any error rolls the whole load back, so existing data is
  never half overwritten.  A target that already has tables is captured first in a
  ``pre-restore`` safety snapshot (the dump's ``DROP … IF EXISTS`` replaces them).
  The password goes to psql through ``PGPASSWORD``, not its arguments.

``target``: an ``AgentWrapper``, a ``mirix.yaml`` path, a database file, a
``sqlite:///`` or ``postgresql://`` URL, or None for the agent of
``./configs/mirix.yaml`` (the reference's default config).
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from ..atomic import fsync_dir, remove_stale_temps, temp_dir
from ..errors import IntegrityError, UsageError
from ..export.sqlite_content import sqlite3_binary
from ..folder.checksums import checksum_problems
from ..folder.layout import DUMP, METADATA, ZST, read_metadata
from ..folder.zst import decompress_to
from ..restore.safety import safety_snapshot, undo_command
from ..restore.sqlite_target import copy_database, integrity, table_names
from ..sources.agent import redact_url
from ..sqlite_uri import sqlite_uri
from .exceptions import RecoveryError
from .opened import opened_backup
from .repository_location import open_repository, repository_location
from .results import error_text
from .wrapper import AgentWrapper

DEFAULT_CONFIG = "./configs/mirix.yaml"
MIRIX_DUMPS = ("mirix_database.sql",)


@dataclass
class Target:
    url: str
    repository_path: Path | None = None
    config_path: Path | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def path(self) -> Path:
        return Path(self.url.split("///", 1)[1])


def resolve_target(target: Any, config_path: str | os.PathLike = DEFAULT_CONFIG) -> Target:
    if target is None:
        target = AgentWrapper(config_path)
    if isinstance(target, AgentWrapper):
        return Target(target.database_url, target.repository_path, target.config_path)
    text = str(target)
    if "://" in text and text.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
        return Target(text)
    if text.startswith("sqlite:///"):
        path = Path(text[len("sqlite:///"):]).expanduser().absolute()
    elif text.endswith((".yaml", ".yml")):
        return resolve_target(AgentWrapper(text))
    else:
        path = Path(text).expanduser().absolute()
    return Target(f"sqlite:///{path}", repository_location({}, path.parent))


def find_dump(folder: Path) -> tuple[Path, bool]:
    """(the dump file, is it zstd-compressed); verifies a snapstore folder's checksums first."""
    if (folder / METADATA).exists():
        _, problems = checksum_problems(folder, read_metadata(folder))
        if problems:
            raise IntegrityError(f"{folder} failed verification ({'; '.join(problems)})")
    for rel, compressed in ((DUMP, False), (DUMP + ZST, True), *((m, False) for m in MIRIX_DUMPS)):
        if (folder / rel).is_file():
            return folder / rel, compressed
    raise RecoveryError(f"no database dump found in backup {folder} ({DUMP})")


def dump_type(folder: Path, dump: Path) -> str:
    if (folder / METADATA).exists():
        kind = read_metadata(folder)["backup_info"].get("database_type")
        if kind in ("sqlite", "postgresql"):
            return kind
    with open(dump, "rb") as f:
        head = f.read(4096)
    return "postgresql" if b"PostgreSQL database dump" in head else "sqlite"


def _plain_dump(dump: Path, compressed: bool, workdir: Path) -> Path:
    if not compressed:
        return dump
    return decompress_to(dump, workdir / "dump.sql")


def _table_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(sqlite_uri(db, mode="ro"), uri=True)
    try:
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in table_names(conn)}
    finally:
        conn.close()


def _recover_sqlite(dump: Path, compressed: bool, target: Target, result: dict) -> None:
    db = target.path
    if db.exists() and not db.is_file():
        raise UsageError(f"recovery target {db} is not a file")
    if not db.parent.is_dir():
        raise UsageError(f"recovery target's directory {db.parent} does not exist")
    remove_stale_temps(db.parent)
    with temp_dir(db.parent, "recover") as tmp:
        sql = _plain_dump(dump, compressed, tmp)
        rebuilt = tmp / "recovered.db"
        with open(sql, "rb") as f:
            proc = subprocess.run([sqlite3_binary(), "-bail", str(rebuilt)], stdin=f, capture_output=True)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise RecoveryError(f"{dump.name} does not load into SQLite: {err[-1] if err else proc.returncode}")
        check = integrity(rebuilt, "integrity_check")
        if check != "ok":
            raise IntegrityError(f"the database rebuilt from {dump.name} fails integrity_check: {check}")
        result["tables"] = _table_counts(rebuilt)
        if db.exists():
            repo = open_repository(target.repository_path or repository_location({}, db.parent))
            use_config = target.config_path is not None
            result["safety_snapshot_id"] = safety_snapshot(repo, config_path=target.config_path if use_config else None,
                                                           db_path=None if use_config else db)
            result["undo"] = undo_command(repo.location, result["safety_snapshot_id"], db)
            copy_database(rebuilt, db)
            check = integrity(db)
            if check != "ok":
                raise IntegrityError(f"recovered database {db} fails quick_check: {check}")
        else:
            os.replace(rebuilt, db)
            fsync_dir(db.parent)


def _recover_postgres(dump: Path, compressed: bool, target: Target, result: dict) -> None:
    from ..restore.pg_stage import introspect
    from ..sources.postgres.connect import PgTarget, psql_load

    db = PgTarget.from_url(target.url)
    with db.connect() as conn:
        has_tables = bool(introspect(conn))
    if has_tables:  # the dump (--clean --if-exists) replaces the agent: keep its state first
        if target.repository_path is None and not os.environ.get("SNAPSTORE_REPO"):
            raise RecoveryError(f"{redact_url(target.url)} already has tables and no repository is known for "
                                "its safety snapshot: pass the agent (AgentWrapper or mirix.yaml) or set "
                                "SNAPSTORE_REPO (nothing was changed)")
        repo = open_repository(target.repository_path or repository_location({}, Path.cwd()))
        result["safety_snapshot_id"] = safety_snapshot(repo, config_path=target.config_path,
                                                       db_path=None if target.config_path else target.url)
        result["undo"] = undo_command(repo.location, result["safety_snapshot_id"], target.url)
    with tempfile.TemporaryDirectory(prefix="snapstore-recover-") as tmp:
        failure = psql_load(db, _plain_dump(dump, compressed, Path(tmp)))
    if failure:
        raise RecoveryError(f"psql could not load {dump.name} into {redact_url(target.url)} (nothing was changed): "
                            f"{failure}")


def recover_database_only(backup_path: str | os.PathLike, target: Any = None, *,
                          encryption_key: str | bytes | None = None,
                          config_path: str | os.PathLike = DEFAULT_CONFIG) -> dict:
    """Load the backup's database dump into ``target``; a result dict, never an exception."""
    result: dict = {"success": False, "message": "", "backup_path": str(backup_path), "database_type": None,
                    "target": None, "tables": {}, "safety_snapshot_id": None}
    try:
        where = resolve_target(target, config_path)
        result["target"] = redact_url(where.url)
        with opened_backup(backup_path, encryption_key) as folder:
            dump, compressed = find_dump(folder)
            kind = dump_type(folder, dump)
            result["database_type"] = kind
            if (kind == "sqlite") != where.is_sqlite:
                raise UsageError(f"the backup holds a {kind} dump; {result['target']} is not a {kind} database")
            if kind == "sqlite":
                _recover_sqlite(dump, compressed, where, result)
            else:
                _recover_postgres(dump, compressed, where, result)
    except Exception as exc:  # a result, never an exception (the reference's contract)
        result["error"] = error_text(exc)
        result["message"] = f"Database recovery failed: {result['error']}"
        return result
    result["success"] = True
    result["message"] = f"Database restored from dump into {result['target']}"
    return result
