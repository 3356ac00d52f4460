"""Safety snapshots: the state an agent had just before a restore changes it.

Tagged ``pre-restore`` (``SAFETY_TAG``); restoring that snapshot (``snapstore
restore ID --to DB``) undoes the restore, and ``latest`` passes over it.  Given
the agent's config, the whole agent is captured (database, config, environment);
given only a database (a file, or a PostgreSQL URL), the database, under the agent name earlier snapshots
of that file used.
"""
from __future__ import annotations

from pathlib import Path

from ..backup import backup_agent
from ..manifest import SAFETY_TAG, list_snapshots
from ..repository import Repository
from ..sources.agent import load_agent_source, redact_url


def safety_snapshot(repo: Repository, *, config_path: Path | None = None, db_path: Path | str | None = None) -> str:
    if config_path is not None:
        source = load_agent_source(config_path)
    else:
        source = load_agent_source(db_path=db_path)
        earlier = [s for s in list_snapshots(repo) if s.source.get("database") == redact_url(source.database_url)]
        if earlier:
            source.name = earlier[-1].agent
    return backup_agent(repo, source, tags=[SAFETY_TAG]).snapshot.id
