"""Fixtures of the verify tests: a real repository (sample agent, three backups with a day of use
between) and fresh copies of it to damage.  Helpers are in verify_helpers.py."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from snapstore.backup import backup_agent
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source

from verify_helpers import init_small_pack_repo


@dataclass
class Pristine:
    path: Path
    snapshot_ids: list[str]  # oldest first


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Pristine:
    work = tmp_path_factory.mktemp("verify")
    info = create_sample_agent(work / "agent", scale=1, seed=11)
    repo = init_small_pack_repo(work / "repo")
    for seed in (21, 22, None):
        backup_agent(repo, load_agent_source(info.config_path), include_logs=True)
        if seed is not None:
            mutate_agent(work / "agent", fraction=0.01, seed=seed)
    ids = [s.id for s in list_snapshots(Repository.open(repo.storage.root))]
    assert len(ids) == 3
    return Pristine(repo.storage.root, ids)


@pytest.fixture
def repo_copy(pristine, tmp_path) -> Path:
    """A fresh copy of the pristine repository, for one test to damage."""
    dest = tmp_path / "repo"
    shutil.copytree(pristine.path, dest)
    return dest


