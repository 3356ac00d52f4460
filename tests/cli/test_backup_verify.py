"""backup --verify (the reference's verify_after_backup): re-reads what the snapshot needs (both backends)."""
from __future__ import annotations

import json

from backends import RepoObjects
from helpers import run_cli
from snapstore.sample_agent import create_sample_agent


def test_clean_backup_verifies(tmp_path, repo_url):
    info = create_sample_agent(tmp_path / "a", scale=1, seed=31)
    assert run_cli("init", repo=repo_url).returncode == 0
    r = run_cli("backup", "--config", info.config_path, "--verify", "--json", repo=repo_url)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verification"]["status"] == "clean"


def test_damage_in_reused_chunks_is_found_after_backup(tmp_path, repo_url):
    info = create_sample_agent(tmp_path / "a", scale=1, seed=32)
    run_cli("init", repo=repo_url)
    assert run_cli("backup", "--config", info.config_path, repo=repo_url).returncode == 0
    # The next backup reuses every stored page without reading it; flip a byte in a data pack.
    objects = RepoObjects(repo_url)
    pack = max(objects.packs(), key=objects.size)
    objects.flip(pack, objects.size(pack) // 3)
    r = run_cli("backup", "--config", info.config_path, "--read-all", "--verify", repo=repo_url)
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "verification: damaged" in r.stdout
    assert pack.rsplit("/", 1)[-1][:16] in r.stderr
