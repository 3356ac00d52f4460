"""decode_index_file: what an index file lists, as bytes or as views into a mapped file, and the
malformed files it refuses."""
from __future__ import annotations

import os

import blake3
import msgpack
import pytest

from snapstore.errors import IntegrityError
from snapstore.repository.index import INDEX_VERSION, PackInfo, decode_index_file, encode_index_file
from snapstore.repository.pack import BLOB_RECORD
from snapstore.storage.local import LocalStorage


def records(n: int) -> bytes:
    return b"".join(BLOB_RECORD.pack(os.urandom(32), 0, 1, i * 100, 90, 4096, 0) for i in range(n))


def named(data: bytes) -> tuple[str, bytes]:
    return blake3.blake3(data).hexdigest(), data


@pytest.mark.parametrize("sizes", [[3, 0, 40], [5000], []])  # 5000 records: a bin 32 table
def test_round_trip_as_bytes_and_as_mapped_views(tmp_path, sizes):
    packs = [PackInfo(os.urandom(32), 1000 + i, records(n)) for i, n in enumerate(sizes)]
    file_id, data = named(encode_index_file(packs))
    expected = [(p.pack_id, p.size, p.records) for p in packs]
    assert decode_index_file(file_id, data) == expected
    assert all(type(r) is bytes for _, _, r in decode_index_file(file_id, data))
    storage = LocalStorage(tmp_path)
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / file_id).write_bytes(data)
    mapped = decode_index_file(file_id, storage.map(f"index/{file_id}"), views=True)
    assert [(pid, size, bytes(r)) for pid, size, r in mapped] == expected
    assert all(isinstance(r, memoryview) for _, _, r in mapped)


@pytest.mark.parametrize("doc, message", [
    ({"v": INDEX_VERSION + 1, "packs": []}, "unknown version"),
    ({"packs": []}, "unknown version"),
    ({"v": INDEX_VERSION, "packs": [{"id": b"p" * 32, "size": 1, "blobs": b"x" * 5}]}, "truncated blob table"),
    ({"v": INDEX_VERSION, "packs": [{"id": b"p" * 32, "size": 1, "blobs": "text"}]}, "not binary"),
    ({"v": INDEX_VERSION, "packs": [{"id": b"p" * 32, "size": 1}]}, "unreadable"),
])
def test_malformed_files_are_integrity_errors(doc, message):
    file_id, data = named(msgpack.packb(doc))
    with pytest.raises(IntegrityError, match=message):
        decode_index_file(file_id, data)


def test_extra_data_hash_mismatch_and_truncation_are_refused():
    good = encode_index_file([PackInfo(b"p" * 32, 1, records(2))])
    for data in (good + b"\x00", good[:-7]):
        file_id, data = named(data)
        with pytest.raises(IntegrityError, match="unreadable"):
            decode_index_file(file_id, data)
    with pytest.raises(IntegrityError, match="hash mismatch"):
        decode_index_file("0" * 64, good)


def test_an_empty_object_maps_to_empty_bytes(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert LocalStorage(tmp_path).map("empty") == b""


def test_a_missing_object_is_not_found(tmp_path):
    from snapstore.storage.base import ObjectNotFound

    with pytest.raises(ObjectNotFound):
        LocalStorage(tmp_path).map("index/absent")
