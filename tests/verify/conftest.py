"""Fixtures of the verify tests: a real repository (sample agent, three backups with a day of use
between) on each backend, and fresh copies of it to damage.  Helpers are in verify_helpers.py."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from backends import BACKENDS, RepoObjects, backend_of, fresh_location, repo_location
from helpers import init_small_pack_repo
from snapstore.backup import backup_agent
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source

from verify_helpers import PACK_SIZE


@dataclass
class Pristine:
    location: str
    snapshot_ids: list[str]  # oldest first


@pytest.fixture(scope="session", params=BACKENDS)
def pristine(tmp_path_factory, request) -> Pristine:
    work = tmp_path_factory.mktemp("verify")
    info = create_sample_agent(work / "agent", scale=1, seed=11)
    location = repo_location(request, request.param, work / "repo")
    repo = init_small_pack_repo(location, PACK_SIZE)
    for seed in (21, 22, None):
        backup_agent(repo, load_agent_source(info.config_path), include_logs=True)
        if seed is not None:
            mutate_agent(work / "agent", fraction=0.01, seed=seed)
    ids = [s.id for s in list_snapshots(Repository.open(location))]
    assert len(ids) == 3
    return Pristine(location, ids)


@pytest.fixture
def fresh_repo(pristine, request, tmp_path, monkeypatch) -> str:
    """A new, empty location on the pristine repository's backend."""
    return fresh_location(request, backend_of(pristine.location), tmp_path, monkeypatch)


@pytest.fixture
def repo_copy(pristine, fresh_repo) -> str:
    """A fresh copy of the pristine repository, for one test to damage."""
    return RepoObjects(pristine.location).copy_to(fresh_repo)
