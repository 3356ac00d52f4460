"""backup --verify (the reference's verify_after_backup): re-reads what the snapshot needs."""
from __future__ import annotations

import json

from helpers import pack_files, run_cli
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent


def test_clean_backup_verifies(tmp_path):
    info = create_sample_agent(tmp_path / "a", scale=1, seed=31)
    repo = tmp_path / "repo"
    assert run_cli("init", repo=repo).returncode == 0
    r = run_cli("backup", "--config", info.config_path, "--verify", "--json", repo=repo)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verification"]["status"] == "clean"


def test_damage_in_reused_chunks_is_found_after_backup(tmp_path):
    info = create_sample_agent(tmp_path / "a", scale=1, seed=32)
    repo = tmp_path / "repo"
    run_cli("init", repo=repo)
    assert run_cli("backup", "--config", info.config_path, repo=repo).returncode == 0
    # The next backup reuses every stored page without reading it; flip a byte in a data pack.
    opened = Repository.open(repo)
    pack = max(pack_files(opened), key=lambda p: p.stat().st_size)
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    pack.write_bytes(bytes(raw))
    r = run_cli("backup", "--config", info.config_path, "--read-all", "--verify", repo=repo)
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "verification: damaged" in r.stdout
    assert pack.name[:16] in r.stderr
