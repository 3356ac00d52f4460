"""Fixtures of the Mirix-compatible API tests.

``home``: a fresh temporary directory, made the working directory, holding a sample
agent at ``./configs/`` (``./configs/mirix.yaml`` is the reference's config path),
with no ``SNAPSTORE_REPO`` / ``MIRIX_*`` settings leaking in: the agent's repository
is its default, ``./configs/.snapstore`` -- and then, in the S3 run of every test, a fresh
prefix on the session's SeaweedFS server given as ``SNAPSTORE_REPO`` (an ``s3:`` URL, as a
user configures it) -- and in the "encrypted" run a local repository with
``SNAPSTORE_PASSWORD`` set, so the API creates and opens an encrypted one (format v2).
The agent is generated once per session (scale 1) and copied.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from backends import BACKENDS, fresh_location
from snapstore.sample_agent import create_sample_agent

SEED = 5


@pytest.fixture(scope="session")
def pristine_agent(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("pristine-agent") / "configs"
    create_sample_agent(directory, scale=1, seed=SEED)
    return directory


ENCRYPTED_PASSWORD = "api tests passphrase"


@pytest.fixture(params=[*BACKENDS, "encrypted"])
def home(request, tmp_path, monkeypatch, pristine_agent) -> Path:
    shutil.copytree(pristine_agent, tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("SNAPSTORE_", "MIRIX_")):
            monkeypatch.delenv(key)
    if request.param == "s3":
        monkeypatch.setenv("SNAPSTORE_REPO", fresh_location(request, "s3", tmp_path, monkeypatch))
    if request.param == "encrypted":
        monkeypatch.setenv("SNAPSTORE_PASSWORD", ENCRYPTED_PASSWORD)
    return tmp_path
