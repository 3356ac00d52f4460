"""The chunk store: every byte back, packs that describe themselves, an index rebuilt from packs."""
from __future__ import annotations

import os
import random

import blake3
import msgpack
import pytest
from helpers import init_small_pack_repo, pack_files

from snapstore.errors import IntegrityError, MissingChunk, RepositoryExists, RepositoryNotFound, UnsupportedFormat
from snapstore.repair import rebuild_index
from snapstore.repository import BLOB_DATA, BLOB_TREE, Repository
from snapstore.repository.config import RepoConfig
from snapstore.repository.pack import read_trailer


def small_pack_repo(path, pack_size=64 * 1024) -> Repository:
    return init_small_pack_repo(path, pack_size)


def random_blobs(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    blobs = []
    for i in range(n):
        size = rng.choice([0, 1, 100, 4096, 20000, 70000])
        kind = rng.random()
        if kind < 0.4:
            blobs.append(rng.randbytes(size))  # incompressible: stored raw
        elif kind < 0.8:
            blobs.append((b"memory %d " % i) * (size // 10 + 1))  # compressible
        else:
            blobs.append(bytes(size))
    return blobs


def index_snapshot(repo: Repository) -> dict:
    return {blob_id: repo.index.get(blob_id) for blob_id in repo.index.ids()}


def test_round_trip_every_byte(tmp_path):
    repo = small_pack_repo(tmp_path / "repo")
    blobs = random_blobs(300)
    ids = [blake3.blake3(b).digest() for b in blobs]
    with repo.writer() as writer:
        for blob_id, data in zip(ids, blobs):
            writer.add(blob_id, data)
        tree_id = writer.add_tree(b"tree blob")
    assert writer.stats.packs > 3, "small pack size must spread blobs over several packs"
    reopened = Repository.open(tmp_path / "repo")
    with reopened.reader() as reader:
        for blob_id, data in zip(ids, blobs):
            assert reader.read(blob_id) == data
        assert reader.read(tree_id) == b"tree blob"
    assert reopened.index.get(tree_id).blob_type == BLOB_TREE
    assert reopened.index.get(ids[0]).blob_type == BLOB_DATA


def test_duplicates_are_stored_once(tmp_path):
    repo = Repository.init(tmp_path / "repo")
    data = b"x" * 10000
    blob_id = blake3.blake3(data).digest()
    with repo.writer() as writer:
        assert writer.add(blob_id, data) is True
        assert writer.add(blob_id, data) is False
    with Repository.open(tmp_path / "repo").writer() as writer:
        assert writer.add(blob_id, data) is False
        assert writer.stats.blobs == 0


def test_packs_describe_themselves_and_index_rebuilds_identically(tmp_path):
    repo = small_pack_repo(tmp_path / "repo")
    blobs = random_blobs(200, seed=7)
    with repo.writer() as writer:
        for data in blobs:
            writer.add(blake3.blake3(data).digest(), data)
    before = index_snapshot(Repository.open(tmp_path / "repo"))
    trailer_ids = {e.blob_id for p in pack_files(repo) for e in read_trailer(repo.storage, p.relative_to(repo.storage.root).as_posix())}
    assert trailer_ids == set(before)
    for path in pack_files(repo):
        assert blake3.blake3(path.read_bytes()).hexdigest() == path.name
    report = rebuild_index(repo)
    assert report.bad_packs == [] and report.blobs == len(before)
    after_repo = Repository.open(tmp_path / "repo")
    assert index_snapshot(after_repo) == before
    assert len(list((tmp_path / "repo" / "index").iterdir())) == 1


def test_rebuild_after_index_loss_restores_access(tmp_path):
    repo = small_pack_repo(tmp_path / "repo")
    blobs = random_blobs(50, seed=3)
    with repo.writer() as writer:
        for data in blobs:
            writer.add(blake3.blake3(data).digest(), data)
    for f in (tmp_path / "repo" / "index").iterdir():
        f.unlink()
    blank = Repository.open(tmp_path / "repo")
    with pytest.raises(MissingChunk):
        blank.read_blob(blake3.blake3(blobs[0]).digest())
    rebuild_index(blank)
    fixed = Repository.open(tmp_path / "repo")
    for data in blobs:
        assert fixed.read_blob(blake3.blake3(data).digest()) == data


def one_corrupt_blob(path):
    """A repository at ``path`` holding one blob with a flipped byte; (its id, its location)."""
    repo = Repository.init(path)
    data = os.urandom(5000)
    blob_id = blake3.blake3(data).digest()
    with repo.writer() as writer:
        writer.add(blob_id, data)
    loc = repo.index.get(blob_id)
    (pack,) = pack_files(repo)
    raw = bytearray(pack.read_bytes())
    raw[loc.offset + 10] ^= 0xFF
    pack.write_bytes(bytes(raw))
    return blob_id, loc


def test_corrupt_blob_is_detected_and_named(tmp_path):
    blob_id, loc = one_corrupt_blob(tmp_path / "repo")
    with pytest.raises(IntegrityError, match=loc.pack_id.hex()[:16]):
        Repository.open(tmp_path / "repo").read_blob(blob_id)


def test_truncated_pack_trailer_is_reported(tmp_path):
    repo = Repository.init(tmp_path / "repo")
    with repo.writer() as writer:
        writer.add(blake3.blake3(b"abc").digest(), b"abc")
    (pack,) = pack_files(repo)
    pack.write_bytes(pack.read_bytes()[:-5])
    with pytest.raises(IntegrityError, match="trailer"):
        read_trailer(repo.storage, pack.relative_to(repo.storage.root).as_posix())
    report = rebuild_index(repo)
    assert len(report.bad_packs) == 1 and report.blobs == 0


def test_aborted_writer_keeps_finished_packs_indexed(tmp_path):
    repo = small_pack_repo(tmp_path / "repo", pack_size=16 * 1024)
    blobs = random_blobs(40, seed=11)
    with pytest.raises(RuntimeError):
        with repo.writer() as writer:
            for data in blobs:
                writer.add(blake3.blake3(data).digest(), data)
            raise RuntimeError("interrupted")
    reopened = Repository.open(tmp_path / "repo")
    assert len(reopened.index) > 0
    assert not list((tmp_path / "repo" / "data").glob("pack.tmp-*")), "unfinished pack must be removed"
    for blob_id in list(reopened.index.ids()):
        reopened.read_blob(blob_id)


def test_init_and_open_errors(tmp_path):
    with pytest.raises(RepositoryNotFound):
        Repository.open(tmp_path / "nothing")
    Repository.init(tmp_path / "repo")
    with pytest.raises(RepositoryExists):
        Repository.init(tmp_path / "repo")
    cfg = msgpack.unpackb((tmp_path / "repo" / "config").read_bytes())
    cfg["version"] = 99
    (tmp_path / "repo" / "config").write_bytes(msgpack.packb(cfg))
    with pytest.raises(UnsupportedFormat, match="99"):
        Repository.open(tmp_path / "repo")


def test_repository_files_are_owner_only(tmp_path):
    repo = Repository.init(tmp_path / "repo")
    with repo.writer() as writer:
        writer.add(blake3.blake3(b"secret").digest(), b"secret")
    for path in [tmp_path / "repo", *(tmp_path / "repo").rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, path
    assert RepoConfig.decode((tmp_path / "repo" / "config").read_bytes(), "repo").version == 1


def test_a_writer_removes_what_killed_writers_left_and_nothing_else(tmp_path):
    from helpers import dead_pid, temp_name_of

    from snapstore.atomic import temp_name

    repo = small_pack_repo(tmp_path / "repo")
    live_name = temp_name("pack")  # this process: a writer still at work
    stale_name = temp_name_of(dead_pid(), "pack")
    stale = [(repo.storage.root / "data") / stale_name, (repo.storage.root / "index") / stale_name, (repo.storage.root / "snapshots") / stale_name]
    for path in stale:
        path.write_bytes(b"half written")
    live = (repo.storage.root / "data") / live_name
    live.write_bytes(b"in progress")
    with repo.writer() as writer:
        writer.add(blake3.blake3(b"x").digest(), b"x")
    assert not any(p.exists() for p in stale)
    assert live.read_bytes() == b"in progress"
    assert Repository.open(tmp_path / "repo").read_blob(blake3.blake3(b"x").digest()) == b"x"


def test_iter_plain_gives_every_byte_in_blocks_and_skips_the_empty_blob(tmp_path):
    """A file's chunks read run by run: raw and compressed blobs over several packs, repeats,
    and the zero-byte blob (never fetched: it is not even stored here) come back in order."""
    repo = small_pack_repo(tmp_path / "repo")
    blobs = [b for b in random_blobs(200, seed=3) if b]
    ids = [blake3.blake3(b).digest() for b in blobs]
    with repo.writer() as writer:
        for blob_id, data in zip(ids, blobs):
            writer.add(blob_id, data)
    empty = blake3.blake3(b"").digest()
    order = ids + [empty, empty] + ids[:5] + [empty] + ids[::-1]
    expected = b"".join(blobs) + b"".join(blobs[:5]) + b"".join(blobs[::-1])
    with Repository.open(tmp_path / "repo").reader() as reader:
        blocks = list(reader.iter_plain(b"".join(order), block=50_000))
        assert b"".join(blocks) == expected
        assert len(blocks) > 3 and all(len(b) >= 50_000 for b in blocks[:-1])
        assert b"".join(reader.iter_plain(empty * 3)) == b""
        with pytest.raises(MissingChunk):
            list(reader.iter_plain(blake3.blake3(b"never stored").digest()))


def test_iter_plain_names_a_corrupt_blob(tmp_path):
    blob_id, loc = one_corrupt_blob(tmp_path / "repo")
    with Repository.open(tmp_path / "repo").reader() as reader:
        with pytest.raises(IntegrityError, match=loc.pack_id.hex()[:16]):
            list(reader.iter_plain(blob_id))


def test_has_all_knows_stored_and_in_flight_blobs(tmp_path):
    repo = Repository.init(tmp_path / "repo")
    stored, later = b"stored blob", b"added in this writer"
    with repo.writer() as writer:
        writer.add(blake3.blake3(stored).digest(), stored)
    with repo.writer() as writer:
        ids = blake3.blake3(stored).digest() + blake3.blake3(later).digest()
        assert not writer.has_all(ids)
        writer.add(blake3.blake3(later).digest(), later)  # in this writer's open pack
        assert writer.has_all(ids) and writer.has_all(b"")
