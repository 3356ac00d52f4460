"""A whole repository on a real SeaweedFS server: every command end to end, the cache, the faults.

Each test gets a fresh prefix in the session's bucket (``s3_url``).  Commands run
as real ``snapstore`` processes with the server's keys in their environment and a
private cache directory, as a user on another host would run them.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from helpers import DB_PATH, assert_one_line_error, cli_env, ok, run_cli, table_checksums
from snapstore.backup import backup_agent
from snapstore.extract import write_file
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.repository.pack import pack_name
from snapstore.sample_agent import create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source
from snapstore.storage.cache import CachedStorage


@pytest.fixture
def env(s3_env, tmp_path):
    """CLI environment: the server's keys and a cache of this test's own."""
    return cli_env(**s3_env, SNAPSTORE_CACHE_DIR=str(tmp_path / "cache"), SNAPSTORE_HOST_ID="a1a1a1a1")


@pytest.fixture
def agent(tmp_path):
    return create_sample_agent(tmp_path / "agent", scale=0.5, seed=3)


def cli(env, url, *args):
    return run_cli(*args, repo=url, env=env)


def test_every_command_works_on_s3(tmp_path, s3_url, env, agent):
    state = table_checksums(Path(agent.db_path))
    created = json.loads(ok(cli(env, s3_url, "init", "--json")).stdout)
    assert created["repository"] == s3_url
    first = json.loads(ok(cli(env, s3_url, "backup", "--config", agent.config_path, "--include-logs",
                              "--json")).stdout)
    mutate_agent(tmp_path / "agent", fraction=0.01, seed=4)
    ok(cli(env, s3_url, "backup", "--config", agent.config_path, "--json"))
    snaps = json.loads(ok(cli(env, s3_url, "snapshots", "--json")).stdout)
    assert [s["id"] for s in snaps][0] == first["snapshot_id"] and len(snaps) == 2
    listing = ok(cli(env, s3_url, "ls", first["snapshot_id"][:8])).stdout
    assert DB_PATH in listing
    ok(cli(env, s3_url, "show", "latest"))
    ok(cli(env, s3_url, "verify"))
    ok(cli(env, s3_url, "verify", "--full"))
    ok(cli(env, s3_url, "verify", "--read-subset", "1/2"))

    ok(cli(env, s3_url, "dump", first["snapshot_id"][:8], DB_PATH, "--out", tmp_path / "dumped.db"))
    assert table_checksums(tmp_path / "dumped.db") == state
    ok(cli(env, s3_url, "restore", first["snapshot_id"][:8], "--to", tmp_path / "restored.db"))
    assert table_checksums(tmp_path / "restored.db") == state
    ok(cli(env, s3_url, "export", first["snapshot_id"][:8], tmp_path / "folder"))
    ok(run_cli("verify-folder", tmp_path / "folder", env=env))
    imported = json.loads(ok(cli(env, s3_url, "import", tmp_path / "folder", "--json")).stdout)
    assert imported["snapshot_id"]

    repaired = json.loads(ok(cli(env, s3_url, "repair", "index", "--json")).stdout)
    assert repaired["packs"] > 0 and not repaired["bad_packs"]
    ok(cli(env, s3_url, "verify", "--full"))
    assert "no locks" in ok(cli(env, s3_url, "unlock")).stdout


def test_init_refuses_an_existing_repository(s3_url, env):
    ok(cli(env, s3_url, "init"))
    r = cli(env, s3_url, "init")
    assert r.returncode == 2
    assert_one_line_error(r, "already exists")


def test_wrong_credentials_and_missing_bucket_are_one_line_errors(s3_server, s3_url, env):
    ok(cli(env, s3_url, "init"))
    r = cli(dict(env, AWS_SECRET_ACCESS_KEY="wrong"), s3_url, "snapshots")
    assert r.returncode == 6, r.stderr
    assert_one_line_error(r, "access denied")
    r = cli(env, f"s3:{s3_server.endpoint}/no-such-bucket/repo", "snapshots")
    assert r.returncode == 10, r.stderr
    assert_one_line_error(r, "no-such-bucket")
    r = cli(env, "s3:http://127.0.0.1:9/bucket/repo", "-o", "s3.retries=1", "snapshots")
    assert r.returncode == 6, r.stderr
    assert_one_line_error(r, "cannot reach")


# -- the cache -----------------------------------------------------------------------------------

def open_fresh(url: str, **kw) -> Repository:
    return Repository.open(url, **kw)


def traffic(repo: Repository):
    storage = repo.storage.inner if isinstance(repo.storage, CachedStorage) else repo.storage
    return storage.traffic


def test_cache_makes_metadata_commands_and_unchanged_backups_download_almost_nothing(
        tmp_path, s3_url, s3_env, agent, monkeypatch):
    monkeypatch.setenv("SNAPSTORE_CACHE_DIR", str(tmp_path / "cache"))
    Repository.init(s3_url)
    source = load_agent_source(agent.config_path)
    backup_agent(open_fresh(s3_url), source)
    mutate_agent(tmp_path / "agent", fraction=0.01, seed=5)
    backup_agent(open_fresh(s3_url), source)

    repo = open_fresh(s3_url)
    unchanged = backup_agent(repo, source)
    assert unchanged.snapshot.summary["database_unchanged"]
    assert traffic(repo).downloaded < 64 * 1024, traffic(repo)  # listings are not counted: bodies only

    repo = open_fresh(s3_url)
    snaps = list_snapshots(repo)
    from snapstore.verify.run import verify_repository
    assert verify_repository(repo).clean
    assert traffic(repo).downloaded < 16 * 1024 and len(snaps) == 3

    # Without the cache the same work downloads the index and the manifests.
    repo = open_fresh(s3_url, cache=False)
    assert verify_repository(repo).clean
    assert traffic(repo).downloaded > 50 * 1024


def test_the_cache_is_only_a_cache(tmp_path, s3_url, s3_env, agent, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SNAPSTORE_CACHE_DIR", str(cache))
    Repository.init(s3_url)
    source = load_agent_source(agent.config_path)
    backup_agent(open_fresh(s3_url), source)
    repo = open_fresh(s3_url)
    expected = [(s.id, s.files) for s in list_snapshots(repo)]
    ids = {bytes(b) for b in repo.index.ids()}

    cached = sorted(p for p in cache.rglob("*") if p.is_file())
    assert any("/index/" in str(p) for p in cached) and any("/data/" in str(p) for p in cached)
    for path in cached:  # tamper with every cached file: each must be detected and fetched again
        path.write_bytes(b"not what the name says" + path.read_bytes()[1:])
    repo = open_fresh(s3_url)
    assert [(s.id, s.files) for s in list_snapshots(repo)] == expected
    assert {bytes(b) for b in repo.index.ids()} == ids
    for snap in list_snapshots(repo):  # every file reads back, each chunk checked against its id
        for entry in snap.files:
            assert write_file(repo, entry, io.BytesIO()) == entry.size
    assert all(p.read_bytes()[:3] != b"not" for p in cache.rglob("*") if p.is_file())

    shutil.rmtree(cache)  # deleting it changes no result
    assert [(s.id, s.files) for s in list_snapshots(open_fresh(s3_url))] == expected


# -- faults on the real server ---------------------------------------------------------------------

def test_a_pack_deleted_or_altered_on_the_server_is_found_and_named(tmp_path, s3_url, env, agent):
    ok(cli(env, s3_url, "init"))
    ok(cli(env, s3_url, "backup", "--config", agent.config_path))
    repo = Repository.open(s3_url, cache=False)
    data_packs = sorted(set(repo.index.by_pack()) - set(repo.index.tree_pack_ids()))
    assert len(data_packs) >= 2
    altered, deleted = data_packs[0], data_packs[1]
    body = bytearray(repo.storage.get(pack_name(altered)))
    body[len(body) // 3] ^= 0xFF
    repo.storage.put(pack_name(altered), bytes(body))
    repo.storage.delete(pack_name(deleted))

    r = cli(env, s3_url, "verify", "--full", "--json")
    assert r.returncode == 4, r.stderr
    damage = json.loads(r.stdout)["damage"]
    named = {(d["kind"], d.get("pack")) for d in damage}
    assert ("pack-missing", deleted.hex()) in named
    assert any(d.get("pack") == altered.hex() and d["kind"] in ("pack-hash", "chunk-corrupt") for d in damage)
