"""``AgentWrapper``: the reference's agent API over snapstore.

``AgentWrapper(config_path, load_from=None)`` reads the agent's ``mirix.yaml``
(database location as in ``snapstore.sources.agent``) and keeps its snapshots in
the repository ``repository_location`` names (``snapstore.repository`` in the
config, else ``SNAPSTORE_REPO``, else ``<config dir>/.snapstore``, created on first
use).  With ``load_from`` it loads that backup at once and raises
``AgentLoadError`` when it cannot (a constructor has no result dictionary).
"""
from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import UsageError
from ..lifecycle.schedule import parse_interval
from ..manifest import Selection, Snapshot, list_snapshots, resolve_snapshot
from ..repository import Repository
from ..sources.agent import AgentSource, load_agent_source
from ..watch import TickResult, Watcher
from . import load as _load
from . import memory_restore as _memory
from . import save as _save
from .exceptions import AgentLoadError
from .repository_location import open_repository, repository_location


class AgentWrapper:
    def __init__(self, config_path: str | os.PathLike, load_from: str | os.PathLike | None = None, *,
                 encryption_key: str | bytes | None = None):
        self.config_path = Path(config_path).expanduser().resolve()
        self.source: AgentSource = load_agent_source(self.config_path)
        self.repository_path = repository_location(self.config, self.config_path.parent)
        self.loaded_from: str | None = None
        self.last_load: dict | None = None
        if load_from is not None:
            result = self.load_agent(load_from, encryption_key=encryption_key)
            if not result["success"]:
                raise AgentLoadError(f"cannot load backup {load_from}: {result['error']}")

    # -- what the agent is -------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return self.source.config

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def database_url(self) -> str:
        return self.source.database_url

    @property
    def database_type(self) -> str:
        return "sqlite" if self.source.is_sqlite else "postgresql"

    @property
    def db_path(self) -> Path | None:
        return self.source.sqlite_path if self.source.is_sqlite else None

    @property
    def repository(self) -> Repository:
        """The agent's snapshot repository (created on first use), opened afresh on every access:
        a ``Repository`` caches its index, which goes stale once another process writes to it."""
        return open_repository(self.repository_path)

    def snapshots(self) -> list[Snapshot]:
        """This agent's snapshots in its repository, oldest first (another agent's never)."""
        return [s for s in list_snapshots(self.repository) if s.agent == self.name]

    def latest_snapshot(self, host: str | None = None) -> Snapshot:
        """This agent's newest snapshot, as ``latest`` means in a command that names the agent
        (``manifest.Selection``): never another agent's, an error if several hosts have it."""
        return resolve_snapshot(self.repository, "latest", Selection(self.name, host))

    def reload(self) -> AgentSource:
        """Re-read the config (it may have changed, e.g. by a config restore)."""
        self.source = load_agent_source(self.config_path)
        return self.source

    # -- the reference's methods ------------------------------------------------------------
    def save_agent(self, backup_path: str | os.PathLike, include_logs: bool = False, compress: bool = False,
                   verify_integrity: bool = True, verify_after_backup: bool = False, include_config: bool = True,
                   sanitize_sensitive: bool = True, *, redact_vault: str | None = None) -> dict:
        """Snapshot the agent into its repository and write the backup folder at ``backup_path``;
        ``redact_vault`` (``low``/``medium``/``high``) as ``export --redact-vault``."""
        return _save.save_agent(self, backup_path, include_logs=include_logs, compress=compress,
                                verify_integrity=verify_integrity, verify_after_backup=verify_after_backup,
                                include_config=include_config, sanitize_sensitive=sanitize_sensitive,
                                redact_vault=redact_vault)

    def load_agent(self, backup_path: str | os.PathLike | None = None, restore_components: Any = None, *,
                   encryption_key: str | bytes | None = None, at: str | datetime | None = None) -> dict:
        """Restore the backup folder into this agent (whole database by default); with ``at`` (and no
        folder) the agent's newest snapshot taken at or before that time, as ``restore --at``."""
        return _load.load_agent(self, backup_path, restore_components, encryption_key=encryption_key, at=at)

    def watch(self, stop: threading.Event, interval: float | str = 60, *,
              on_tick: Callable[[TickResult], None] | None = None, include_logs: bool = False,
              tags: Iterable[str] = ()) -> None:
        """``snapstore watch`` from the API: snapshot this SQLite agent (WAL mode) into its repository
        now and every ``interval`` (seconds, or '30s', '15min'), reading only the pages committed
        since the previous snapshot, until ``stop`` is set; then a last snapshot.  Blocks: run it
        in a thread.  ``on_tick`` gets each tick's ``TickResult``."""
        seconds = parse_interval(interval) if isinstance(interval, str) else float(interval)
        if seconds <= 0:
            raise UsageError(f"invalid interval {interval!r}: give a positive number of seconds")
        repo = self.repository
        try:
            with Watcher(repo, self.reload(), tags=tags, include_logs=include_logs, interval_s=seconds) as watcher:
                watcher.run(stop, on_tick)
        finally:
            repo.close()

    def restore_memory_type(self, memory_type: str, data: Any, *, safety_snapshot: bool = True) -> dict:
        """Replace one memory type's rows with those of a ``memories/*.json`` document."""
        return _memory.restore_memory_type(self, memory_type, data, safety=safety_snapshot)

    def restore_memory_documents(self, documents: dict[str, Any], *, safety_snapshot: bool = True) -> dict:
        """Several memory types at once, in one transaction: ``{type: memories JSON document}``."""
        return _memory.restore_memory_documents(self, documents, safety=safety_snapshot)

    def __repr__(self) -> str:
        return f"AgentWrapper({str(self.config_path)!r})"
