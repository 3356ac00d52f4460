"""Safety snapshots: the state an agent had just before a restore changes it.

Tagged ``pre-restore`` (``SAFETY_TAG``); restoring that snapshot (``snapstore
restore ID --to DB``) undoes the restore, and ``latest`` passes over it.  Given
the agent's config, the whole agent is captured (database, config, environment);
given only a database (a file, or a PostgreSQL URL), the database, named as ``backup --db``
names it.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from ..backup import backup_agent
from ..manifest import SAFETY_TAG
from ..repository import Repository
from ..sources.agent import is_postgres_url, load_agent_source, redact_url


def safety_snapshot(repo: Repository, *, config_path: Path | None = None, db_path: Path | str | None = None) -> str:
    source = load_agent_source(config_path) if config_path is not None else load_agent_source(db_path=db_path)
    return backup_agent(repo, source, tags=[SAFETY_TAG]).snapshot.id


def undo_command(repository: Path | str, safety_snapshot_id: str, target: Path | str, *extra: str) -> str:
    """The command that undoes a restore, ready to paste anywhere: the repository and the
    target as absolute paths, quoted for the shell (the CLI and the API print this one)."""
    shown = redact_url(str(target)) if is_postgres_url(str(target)) else str(Path(target).absolute())
    where = str(repository) if str(repository).startswith("s3:") else str(Path(repository).absolute())
    words = ["snapstore", "--repo", where, "restore", safety_snapshot_id[:12],
             "--to", shown, *extra]
    return shlex.join(words)
