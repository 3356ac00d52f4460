"""A whole repository on a real SeaweedFS server: every command end to end, the cache, the faults.

Each test gets a fresh prefix in the session's bucket (``s3_url``).  Commands run
as real ``snapstore`` processes with the server's keys in their environment and a
private cache directory, as a user on another host would run them.
"""
from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import pytest

from helpers import (DB_PATH, assert_one_line_error, cli_env, init_small_pack_repo, ok, popen_cli, run_cli,
                     s3_client, table_checksums, wait_for)
from snapstore.backup import backup_agent
from snapstore.extract import write_file
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.repository.pack import BLOB_RECORD, pack_name
from snapstore.sample_agent import create_sample_agent, mutate_agent
from snapstore.sources.agent import load_agent_source
from snapstore.repository.lock import STALE_AFTER_S, LockInfo
from snapstore.storage import open_storage
from snapstore.storage.cache import CachedStorage
from snapstore.testing.seaweedfs import SeaweedS3


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
    init_small_pack_repo(s3_url, 64 * 1024)
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


@pytest.fixture
def own_server(tmp_path):
    """A server of this test alone (it gets killed)."""
    server = SeaweedS3(tmp_path / "weed").start()
    try:
        s3_client(server).create_bucket(Bucket="crash")
        yield server
    finally:
        server.stop()


def test_server_killed_mid_backup(tmp_path, own_server, monkeypatch):
    env = cli_env(**own_server.env(), SNAPSTORE_CACHE_DIR=str(tmp_path / "cache"))
    url = f"s3:{own_server.endpoint}/crash/repo"
    for key, value in own_server.env().items():
        # for init_small_pack_repo in this process; undone after the test, so the session
        # server's keys (s3_session) hold again for the tests that follow
        monkeypatch.setenv(key, value)
    init_small_pack_repo(url, 32 * 1024)
    agent = create_sample_agent(tmp_path / "agent", scale=3, seed=8)
    state = table_checksums(Path(agent.db_path))
    storage = open_storage(url)
    proc = popen_cli("--repo", url, "-o", "s3.retries=2", "-o", "s3.timeout=5", "backup", "--config",
                     agent.config_path, env=env)
    wait_for(lambda: sum(1 for _ in storage.list("data/")) >= 5 or proc.poll() is not None,
             what="the backup to upload some packs", interval=0.01)
    assert proc.poll() is None, "the backup finished before the server could be killed"
    own_server.kill()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 6, (out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("snapstore: ") and "Traceback" not in err, err

    own_server.start()
    assert ok(run_cli("--repo", url, "snapshots", "--json", env=env)).stdout.strip() == "[]"
    ok(run_cli("--repo", url, "verify", env=env))  # every index entry names a stored pack
    ok(run_cli("--repo", url, "backup", "--config", agent.config_path, env=env))
    ok(run_cli("--repo", url, "verify", "--full", env=env))
    ok(run_cli("--repo", url, "dump", "latest", DB_PATH, "--out", tmp_path / "d.db", env=env))
    assert table_checksums(tmp_path / "d.db") == state


def plant_lock(url: str, *, host: str, age_s: float, exclusive: bool = True) -> str:
    info = LockInfo(exclusive, host_id="dead" + host, hostname=host, pid=4242, pid_ns="1", user="x",
                    command="snapstore backup", time=time.time() - age_s, name=f"locks/{host}")
    open_storage(url).put(info.name, info.encode())
    return info.name


def test_stale_lock_of_a_dead_host_is_reported_and_removable(s3_url, env):
    ok(cli(env, s3_url, "init"))
    stale = plant_lock(s3_url, host="gone-host", age_s=STALE_AFTER_S + 60)
    ok(cli(env, s3_url, "repair", "index"))  # a stale lock is no obstacle
    live = plant_lock(s3_url, host="busy-host", age_s=5)
    r = cli(dict(env, SNAPSTORE_LOCK_WAIT="0.5"), s3_url, "repair", "index")
    assert r.returncode == 11
    assert_one_line_error(r, "busy-host")

    report = json.loads(ok(cli(env, s3_url, "unlock", "--json")).stdout)
    assert [i["name"] for i in report["removed"]] == [stale]
    assert [i["name"] for i in report["kept"]] == [live]
    report = json.loads(ok(cli(env, s3_url, "unlock", "--force", "--json")).stdout)
    assert [i["name"] for i in report["removed"]] == [live]
    ok(cli(env, s3_url, "repair", "index"))


def test_four_hosts_back_up_into_one_repository_concurrently(tmp_path, s3_url, s3_env):
    init_small_pack_repo(s3_url, 256 * 1024)
    agents = {}
    for name, seed in (("alpha", 5), ("beta", 5), ("gamma", 6), ("delta", 7)):  # alpha and beta start equal
        info = create_sample_agent(tmp_path / name, scale=0.5, seed=seed)
        config = Path(info.config_path)
        config.write_text(config.read_text().replace("agent_name: mirix", f"agent_name: {name}"))
        agents[name] = info
    envs = {name: cli_env(**s3_env, SNAPSTORE_HOST_ID=f"{i + 1:08x}", SNAPSTORE_CACHE_DIR=str(tmp_path / f"c{i}"))
            for i, name in enumerate(agents)}
    expected: dict[str, dict] = {}

    def backup(name: str):
        return popen_cli("--repo", s3_url, "backup", "--config", agents[name].config_path, "--json",
                         env=envs[name])

    def record(name: str, proc) -> None:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        expected[json.loads(out)["snapshot_id"]] = table_checksums(Path(agents[name].db_path))

    record("alpha", backup("alpha"))  # alpha's chunks are stored before beta ever runs
    first_alpha = next(iter(expected))
    for round_ in range(3):
        states = {}
        for name in agents:
            states[name] = table_checksums(Path(agents[name].db_path))
        procs = {name: backup(name) for name in agents}
        for name, proc in procs.items():
            record(name, proc)
        for i, name in enumerate(agents):
            mutate_agent(tmp_path / name, fraction=0.01, seed=100 * round_ + i)

    env = next(iter(envs.values()))
    snaps = json.loads(ok(cli(env, s3_url, "snapshots", "--json")).stdout)
    assert len(snaps) == 13 and {s["agent"] for s in snaps} == set(agents)
    for sid, state in expected.items():
        out = tmp_path / f"{sid[:8]}.db"
        ok(cli(env, s3_url, "dump", sid[:12], DB_PATH, "--out", out))
        assert table_checksums(out) == state, sid

    # beta's database began as a copy of alpha's: none of alpha's first chunks was stored again
    repo = Repository.open(s3_url, cache=False)
    listings: dict[bytes, int] = {}
    from snapstore.repository.index import decode_index_file, index_file_ids
    for file_id in index_file_ids(repo.storage):
        for _pid, _size, records in decode_index_file(file_id, repo.read_index_file(file_id)):
            for off in range(0, len(records), BLOB_RECORD.size):
                blob_id = records[off:off + 32]
                listings[blob_id] = listings.get(blob_id, 0) + 1
    first = next(s for s in list_snapshots(repo) if s.id == first_alpha)
    with repo.reader() as reader:
        from snapstore.chunklist import load_list
        ids = load_list(first.file(DB_PATH).chunks, reader)
    assert all(listings[ids[o:o + 32]] == 1 for o in range(0, len(ids), 32))
    ok(cli(env, s3_url, "verify", "--full"))
