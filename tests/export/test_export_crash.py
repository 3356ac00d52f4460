"""An export killed with SIGKILL mid-way leaves no folder under the requested name, and the
next export to the same place removes the half-built folder and succeeds."""
from __future__ import annotations

import subprocess

import pytest

from backends import BACKENDS, repo_location
from helpers import backed_up_agent, kill_group, ok, popen_cli, run_cli, wait_for


@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request):
    """A scale-3 agent backed up into a local directory, then into an S3 prefix."""
    root = tmp_path_factory.mktemp("export-crash")
    _, repo_path = backed_up_agent(root, scale=3, seed=5, repo=repo_location(request, request.param, root / "repo"))
    return {"root": root, "repo_path": repo_path}


def staging_dirs(parent, name):
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.tmp-")]


@pytest.mark.parametrize("when", ["database", "memories"])
def test_sigkill_mid_export_then_export_again(world, tmp_path, when):
    dest = tmp_path / "backup"
    proc = popen_cli("export", "latest", dest, repo=world["repo_path"])
    marker = {"database": "database/sqlite.db", "memories": "memories/episodic_memory.json"}[when]
    wait_for(lambda: proc.poll() is not None or any((s / marker).exists() for s in staging_dirs(tmp_path, "backup")),
             what=f"the export to start writing {marker}", interval=0.002)
    assert proc.poll() is None, "the export finished before it could be killed"
    kill_group(proc)
    proc.communicate()
    assert not dest.exists()
    assert len(staging_dirs(tmp_path, "backup")) == 1  # the half-built folder, hidden

    ok(run_cli("export", "latest", dest, repo=world["repo_path"]))
    assert staging_dirs(tmp_path, "backup") == []
    subprocess.run(["md5sum", "--quiet", "-c", "verification/checksums.md5"], cwd=dest, check=True)
    ok(run_cli("verify-folder", dest))
