"""Where an agent's snapshots go, and opening (or creating) that repository.

Order: ``snapstore.repository`` in the agent's ``mirix.yaml`` (a relative path is
relative to the config's directory), else ``SNAPSTORE_REPO``, else
``<config dir>/.snapstore``.  An absent or empty directory is initialised on
first use, so ``AgentWrapper(...).save_agent(...)`` works on a fresh agent.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..crypto.password import password_from_environment
from ..errors import RepositoryExists, RepositoryNotFound, UsageError
from ..repository import Repository

DEFAULT_REPOSITORY = ".snapstore"


def repository_location(config: Mapping[str, Any], config_dir: Path,
                        environ: Mapping[str, str] = os.environ) -> Path | str:
    """A directory, or an ``s3:`` URL string (returned as given)."""
    section = config.get("snapstore") or {}
    if not isinstance(section, Mapping):
        raise UsageError("the 'snapstore' section of the agent config must be a mapping")
    configured = section.get("repository")
    if configured and str(configured).startswith("s3:"):
        return str(configured)
    if configured:
        path = Path(str(configured)).expanduser()
        return path if path.is_absolute() else (config_dir / path)
    if environ.get("SNAPSTORE_REPO", "").startswith("s3:"):
        return environ["SNAPSTORE_REPO"]
    if environ.get("SNAPSTORE_REPO"):
        return Path(environ["SNAPSTORE_REPO"]).expanduser().absolute()
    return config_dir / DEFAULT_REPOSITORY


def _init(path) -> Repository:
    """A new repository, encrypted when a repository passphrase is set in the environment."""
    return Repository.init(path, encrypt=password_from_environment() is not None)


def open_repository(path: Path | str) -> Repository:
    """The repository at ``path``, initialised first when the directory (or S3 prefix) is absent or empty
    (encrypted if ``SNAPSTORE_PASSWORD``/``_FILE``/``_COMMAND`` is set)."""
    if isinstance(path, str) and path.startswith("s3:"):
        try:
            return Repository.open(path)
        except RepositoryNotFound:
            try:
                return _init(path)
            except RepositoryExists:  # another process created it first
                return Repository.open(path)
    path = Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        try:
            return _init(path)
        except RepositoryExists:  # another process created it first
            pass
    return Repository.open(path)
