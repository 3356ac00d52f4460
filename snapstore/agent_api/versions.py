"""Versions and the system an agent runs on: what migration guides and checks report.

``get_mirix_version(agent)`` is the agent's ``mirix_version`` config setting when it
has one (it is what export writes into ``metadata.json``), else the version of an
installed ``mirix`` distribution, else ``"unknown"``.  Loading a backup whose
Mirix version differs gives a warning; only a newer *folder format* is refused
(``read_metadata``).
"""
from __future__ import annotations

import os
import platform
import socket
import sqlite3
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from .. import __version__

UNKNOWN = "unknown"
MIRIX_DISTRIBUTIONS = ("mirix", "mirix-ai")


def installed_mirix_version() -> str:
    for name in MIRIX_DISTRIBUTIONS:
        try:
            return importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return UNKNOWN


def _agent_config(agent: Any) -> dict:
    """The config mapping of an ``AgentWrapper``, a path to a ``mirix.yaml``, or a mapping."""
    if agent is None:
        return {}
    if isinstance(agent, dict):
        return agent
    if isinstance(getattr(agent, "config_path", None), Path):  # an AgentWrapper: its config as it is now
        from ..sources.agent import read_config

        return read_config(agent.config_path)
    config = getattr(agent, "config", None)
    if isinstance(config, dict):
        return config
    if isinstance(agent, (str, os.PathLike)):
        from ..sources.agent import read_config

        return read_config(Path(agent))
    return {}


def get_mirix_version(agent: Any = None) -> str:
    """The Mirix version of ``agent`` (config ``mirix_version``), else of the installed Mirix."""
    value = _agent_config(agent).get("mirix_version")
    return str(value) if value not in (None, "") else installed_mirix_version()


def get_database_type(agent: Any = None) -> str:
    """``"sqlite"`` or ``"postgresql"``: the agent's database, or (no agent) the one Mirix
    would use here by default (``MIRIX_PG_URI`` / ``MIRIX_PG_*`` settings, else SQLite)."""
    url = getattr(agent, "database_url", None)
    if url is None:
        from ..sources.agent import locate_database

        url = locate_database(_agent_config(agent), Path.cwd())
    return "sqlite" if str(url).startswith("sqlite") else "postgresql"


def get_system_info() -> dict:
    """True facts about this machine and software, for ``MIGRATION_GUIDE.json``."""
    uname = platform.uname()
    return {
        "platform": platform.platform(),
        "system": uname.system,
        "release": uname.release,
        "machine": uname.machine,
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "snapstore_version": __version__,
        "sqlite_version": sqlite3.sqlite_version,
    }


def _version_key(version: str) -> tuple:
    parts = []
    for piece in str(version).replace("-", ".").split("."):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return tuple(parts)


def version_warnings(backup_version: str | None, current_version: str | None) -> list[str]:
    """Warnings for loading a backup written by another Mirix version (never a refusal)."""
    backup_version = str(backup_version or UNKNOWN)
    current_version = str(current_version or UNKNOWN)
    if UNKNOWN in (backup_version, current_version) or backup_version == current_version:
        return []
    if _version_key(backup_version) > _version_key(current_version):
        return [f"the backup was written by Mirix {backup_version}, newer than this agent's {current_version}: "
                "upgrade Mirix before using the restored agent"]
    return [f"the backup was written by Mirix {backup_version}; this agent runs {current_version} "
            "(check Mirix's release notes for schema changes)"]
