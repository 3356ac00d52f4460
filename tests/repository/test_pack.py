"""Pack trailers: v2 (ids and zstd-compressed fields) is written, v1 (whole records) still read."""
from __future__ import annotations

import struct

import msgpack
import pytest
import zstandard
from helpers import pack_files

from snapstore.crypto.cipher import TRAILER, Cipher
from snapstore.errors import IntegrityError
from snapstore.repair import rebuild_index
from snapstore.repository import Repository
from snapstore.repository.pack import BLOB_RECORD, END_MAGIC, TAIL, decode_trailer, read_trailer


def blobs(n: int) -> list[bytes]:
    return [b"page %d " % i * (i % 50 + 1) for i in range(n)]


def write_pack(repo: Repository, data: list[bytes]) -> tuple[str, bytes]:
    with repo.writer() as writer:
        for blob in data:
            writer.add(repo.cipher.blob_id(blob), blob)
    (pack,) = pack_files(repo)
    return pack.relative_to(repo.storage.root).as_posix(), pack.read_bytes()


def with_trailer(buf: bytes, doc: dict, cipher: Cipher) -> bytes:
    """The pack ``buf`` with its trailer replaced by ``doc``."""
    old = TAIL.unpack_from(buf, len(buf) - TAIL.size)[0]
    trailer = cipher.seal(msgpack.packb(doc), TRAILER)
    return buf[:len(buf) - TAIL.size - old] + trailer + TAIL.pack(len(trailer), END_MAGIC)


@pytest.mark.parametrize("encrypted", [False, True])
def test_v2_trailer_is_smaller_and_v1_still_reads(tmp_path, encrypted):
    password = "pw" if encrypted else None
    repo = Repository.init(tmp_path / "repo", encrypt=encrypted, password=password)
    data = blobs(300)
    name, buf = write_pack(repo, data)
    records = decode_trailer(buf, len(buf), repo.cipher)
    assert len(records) == 300 * BLOB_RECORD.size
    assert sorted(e.blob_id for e in read_trailer(repo.storage, name, cipher=repo.cipher)) == \
        sorted(repo.cipher.blob_id(b) for b in data)
    trailer_len = TAIL.unpack_from(buf, len(buf) - TAIL.size)[0]
    assert trailer_len < 300 * (32 + 6) + 100  # the ids and a little: v1 took 54 bytes a blob

    v1 = with_trailer(buf, {"v": 1, "blobs": records}, repo.cipher)  # a pack of an earlier version
    assert decode_trailer(v1, len(v1), repo.cipher) == records
    (tmp_path / "repo" / name).write_bytes(v1)
    report = rebuild_index(repo)
    assert report.bad_packs == [] and report.blobs == 300
    with Repository.open(tmp_path / "repo", password=password).reader() as reader:
        assert [bytes(reader.read(repo.cipher.blob_id(b))) for b in data] == data


def test_malformed_v2_trailers_are_integrity_errors(tmp_path):
    repo = Repository.init(tmp_path / "repo")
    _, buf = write_pack(repo, blobs(10))
    records = decode_trailer(buf, len(buf))
    ids = b"".join(r[0] for r in BLOB_RECORD.iter_unpack(records))
    rest = b"".join(struct.pack("<BBQIII", *r[1:]) for r in BLOB_RECORD.iter_unpack(records))
    for doc in ({"v": 2, "ids": ids[:-32], "rest": zstandard.compress(rest)},   # one id short
                {"v": 2, "ids": ids, "rest": zstandard.compress(rest[:-1])},     # fields cut
                {"v": 2, "ids": ids, "rest": b"not zstd"},
                {"v": 3, "blobs": records}):
        bad = with_trailer(buf, doc, repo.cipher)
        with pytest.raises(IntegrityError, match="corrupt trailer"):
            decode_trailer(bad, len(bad))
    good = with_trailer(buf, {"v": 2, "ids": ids, "rest": zstandard.compress(rest)}, repo.cipher)
    assert decode_trailer(good, len(good)) == records
