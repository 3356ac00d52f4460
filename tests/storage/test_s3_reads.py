"""Restores and dumps from S3 read packs with parallel ranged GETs (Storage.get_many), on the real server.

What must hold: the file comes back byte for byte; the reads are ranges of packs
(nearby blobs of one pack in one request, none over ``RANGE_MAX``), several in
flight at once; a pack deleted or altered on the server stops the restore with
an error naming it; a server that goes away is one typed error.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from helpers import DB_PATH, assert_one_line_error, cli_env, init_small_pack_repo, ok, run_cli, s3_client
from snapstore.chunklist import load_list
from snapstore.errors import IntegrityError
from snapstore.extract import materialize, write_file
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.repository.pack import pack_name
from snapstore.repository.repo import LONE_MAX, RANGE_MAX
from snapstore.sample_agent import create_sample_agent
from snapstore.storage import StorageUnavailable
from snapstore.testing.seaweedfs import SeaweedS3


@pytest.fixture
def env(s3_env, tmp_path):
    return cli_env(**s3_env, SNAPSTORE_CACHE_DIR=str(tmp_path / "cache"))


def backed_up(tmp_path: Path, url: str, env: dict, scale: float = 1) -> tuple[Path, object]:
    """A sample agent backed up (by the CLI) into ``url`` with 64 KiB packs: many packs per file."""
    init_small_pack_repo(url, 64 * 1024)
    agent = create_sample_agent(tmp_path / "agent", scale=scale, seed=5)
    ok(run_cli("backup", "--config", agent.config_path, repo=url, env=env))
    repo = Repository.open(url, cache=False)
    return Path(agent.db_path), list_snapshots(repo)[-1]


class RangeSpy:
    """Wraps the backend's one ranged GET (the real one runs): records each range read for
    ``get_many`` and how many ran at once.  The first of those waits until a second has
    started, which only a parallel reader can do; a sequential one leaves ``overlapped`` unset."""

    def __init__(self, storage):
        self.inner = storage._get
        self.ranges: list[tuple[str, int, int]] = []
        self.threads: set[str] = set()
        self.running = self.most = 0
        self.overlapped = threading.Event()
        self._lock = threading.Lock()
        storage._get = self

    def __call__(self, client, name, offset=0, length=None):
        if not threading.current_thread().name.startswith("snapstore-read"):
            return self.inner(client, name, offset, length)  # a single read (the chunk list's tree blobs)
        with self._lock:
            first = not self.ranges
            self.ranges.append((name, offset, length))
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.most = max(self.most, self.running)
            if self.running > 1:
                self.overlapped.set()
        try:
            if first:
                self.overlapped.wait(60)
            return self.inner(client, name, offset, length)
        finally:
            with self._lock:
                self.running -= 1


@pytest.mark.parametrize("how", ["dump", "restore"])
def test_a_multi_pack_file_is_read_by_parallel_ranges_and_comes_back_byte_identical(tmp_path, s3_url, env, how):
    db, snap = backed_up(tmp_path, s3_url, env)
    repo = Repository.open(s3_url, cache=False)
    entry = snap.file(DB_PATH)
    spy = RangeSpy(repo.storage)
    out = tmp_path / "out.db"
    if how == "dump":
        with open(out, "wb") as f:
            write_file(repo, entry, f)
    else:
        materialize(repo, entry, out, workers=1)  # in this process, where the spy is
    assert out.read_bytes() == db.read_bytes()

    packs = {name for name, _, _ in spy.ranges}
    assert len(packs) >= 5  # a multi-pack file
    assert spy.overlapped.is_set() and spy.most >= 2, spy.most
    assert len(spy.threads) >= 2
    assert all(0 < length <= RANGE_MAX for _, _, length in spy.ranges)
    assert len(spy.ranges) < chunk_count(repo, entry) / 4  # the blobs of a pack come in a few ranges


def test_a_reader_fetches_a_small_payload_once_for_the_tasks_that_share_it(tmp_path, s3_url, env):
    """Pages repeated across a file make several restore tasks want the same small payload; a
    worker's reader keeps what it fetched alone (up to ``LONE_MAX``) and checks it again from there."""
    db, snap = backed_up(tmp_path, s3_url, env)
    repo = Repository.open(s3_url, cache=False)
    with repo.reader() as reader:
        ids = load_list(snap.file(DB_PATH).chunks, reader)[:64 * 32]  # 64 pages: a few payloads
    size = sum(repo.index.get(ids[off:off + 32]).plain_length for off in range(0, len(ids), 32))
    calls: list[tuple[str, int, int]] = []
    inner = repo.storage._get

    def spy(client, name, offset=0, length=None):
        calls.append((name, offset, length))
        return inner(client, name, offset, length)

    repo.storage._get = spy
    out = memoryview(bytearray(size))
    with repo.reader() as reader:
        assert reader.read_into(out, ids) == size
        first = list(calls)
        assert first and all(length <= LONE_MAX for _, _, length in first)  # 64 KiB packs: every range is small
        out[:] = bytes(size)
        assert reader.read_into(out, ids) == size  # a second task wanting the same payloads
        assert calls == first
    assert bytes(out) == db.read_bytes()[:size]
    with repo.reader() as fresh:  # a new reader (a new worker) fetches them again
        fresh.read_into(out, ids)
    assert calls == first + first


def chunk_count(repo: Repository, entry) -> int:
    with repo.reader() as reader:
        return len(load_list(entry.chunks, reader)) // 32


def test_the_cli_restore_and_dump_from_s3_match_the_database(tmp_path, s3_url, env):
    db, _ = backed_up(tmp_path, s3_url, env)
    ok(run_cli("restore", "latest", "--to", tmp_path / "r.db", repo=s3_url, env=env))
    ok(run_cli("dump", "latest", DB_PATH, "--out", tmp_path / "d.db", repo=s3_url, env=env))
    assert (tmp_path / "r.db").read_bytes() == db.read_bytes() == (tmp_path / "d.db").read_bytes()


def data_packs_in_order(repo: Repository, entry) -> list[bytes]:
    """The data packs the file's chunks live in, in the order of the file."""
    with repo.reader() as reader:
        ids = load_list(entry.chunks, reader)
    seen: list[bytes] = []
    for off in range(0, len(ids), 32):
        pack_id = repo.index.get(ids[off:off + 32]).pack_id
        if pack_id not in seen:
            seen.append(pack_id)
    return seen


@pytest.mark.parametrize("damage", ["altered", "deleted"])
def test_a_damaged_pack_on_s3_stops_the_restore_and_is_named(tmp_path, s3_url, env, damage):
    _, snap = backed_up(tmp_path, s3_url, env)
    repo = Repository.open(s3_url, cache=False)
    packs = data_packs_in_order(repo, snap.file(DB_PATH))
    victim = packs[len(packs) // 2]  # in the middle: reads of other packs are in flight around it
    name = pack_name(victim)
    if damage == "altered":
        body = bytearray(repo.storage.get(name))
        body[len(body) // 2] ^= 0xFF
        repo.storage.put(name, bytes(body))
    else:
        repo.storage.delete(name)

    for command in (("restore", "latest", "--to", tmp_path / "r.db"),
                    ("dump", "latest", DB_PATH, "--out", tmp_path / "d.db")):
        line = assert_one_line_error(run_cli(*command, repo=s3_url, env=env), victim.hex()[:16])
        assert ("missing" in line) if damage == "deleted" else ("does not" in line), line
        assert not (tmp_path / "r.db").exists() and not (tmp_path / "d.db").exists()
    with pytest.raises(IntegrityError, match=victim.hex()[:16]):
        materialize(repo, snap.file(DB_PATH), tmp_path / "in-process.db", workers=1)


def test_a_server_that_goes_away_during_a_restore_is_one_typed_error(tmp_path, monkeypatch):
    server = SeaweedS3(tmp_path / "weed").start()
    try:
        s3_client(server).create_bucket(Bucket="gone")
        env = cli_env(**server.env(), SNAPSTORE_CACHE_DIR=str(tmp_path / "cache"))
        url = f"s3:{server.endpoint}/gone/repo"
        ok(run_cli("init", repo=url, env=env))
        agent = create_sample_agent(tmp_path / "agent", scale=0.5, seed=6)
        ok(run_cli("backup", "--config", agent.config_path, repo=url, env=env))
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        repo = Repository.open(url, {"s3.retries": "1", "s3.timeout": "2"}, cache=False)
        entry = list_snapshots(repo)[-1].file(DB_PATH)
        repo.index  # loaded while the server is up; then it dies before the data is read
        server.kill()
        with pytest.raises(StorageUnavailable, match="cannot reach"):
            with open(tmp_path / "out.db", "wb") as f:
                write_file(repo, entry, f)
        r = run_cli("-o", "s3.retries=1", "-o", "s3.timeout=2", "restore", "latest", "--to", tmp_path / "r.db",
                    repo=url, env=env)
        assert r.returncode == 6
        assert_one_line_error(r, "cannot reach")
    finally:
        server.stop()
