"""What every storage backend must do: one test class, subclassed per backend (zarr's StoreTests model).

A subclass provides the ``storage`` fixture returning a fresh, empty store.
"""
from __future__ import annotations

import os
import pickle
import threading

import pytest

from snapstore.storage import ObjectNotFound, Storage


def names(storage: Storage, prefix: str) -> set[str]:
    return {info.name for info in storage.list(prefix)}


class StorageTests:
    @pytest.fixture
    def storage(self) -> Storage:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def test_put_then_get_returns_the_bytes(self, storage):
        data = os.urandom(100_000)
        assert storage.put("snapshots/abc", data)
        assert storage.get("snapshots/abc") == data
        assert storage.stat("snapshots/abc").size == len(data)

    def test_empty_object(self, storage):
        storage.put("index/empty", b"")
        assert storage.get("index/empty") == b""
        assert storage.stat("index/empty").size == 0

    def test_byte_ranges(self, storage):
        data = bytes(range(256)) * 40
        storage.put("data/00/p", data)
        assert storage.get("data/00/p", 0, 10) == data[:10]
        assert storage.get("data/00/p", 1000, 300) == data[1000:1300]
        assert storage.get("data/00/p", len(data) - 5, 100) == data[-5:]  # short at the end
        assert storage.get("data/00/p", len(data), 10) == b""
        assert storage.get("data/00/p", 9000) == data[9000:]
        assert storage.get("data/00/p", 5, 0) == b""

    def test_get_into_fills_a_buffer(self, storage):
        data = os.urandom(5000)
        storage.put("data/00/q", data)
        buf = bytearray(1000)
        assert storage.get_into("data/00/q", 2000, memoryview(buf)) == 1000
        assert bytes(buf) == data[2000:3000]
        assert storage.get_into("data/00/q", 4500, memoryview(buf)) == 500
        assert bytes(buf[:500]) == data[4500:]

    def test_missing_objects_raise_object_not_found(self, storage):
        for call in (lambda: storage.get("snapshots/nope"), lambda: storage.get("data/00/nope", 0, 10),
                     lambda: storage.stat("snapshots/nope")):
            with pytest.raises(ObjectNotFound) as info:
                call()
            assert "nope" in str(info.value)
        assert not storage.exists("snapshots/nope")

    def test_list_by_prefix_names_and_sizes(self, storage):
        storage.put("config", b"c")
        storage.put("data/ab/ab01", b"12345")
        storage.put("data/cd/cd02", b"1")
        storage.put("index/i1", b"xy")
        storage.put("snapshots/s1", b"")
        assert names(storage, "data/") == {"data/ab/ab01", "data/cd/cd02"}
        assert {(i.name, i.size) for i in storage.list("index/")} == {("index/i1", 2)}
        assert names(storage, "data/ab/") == {"data/ab/ab01"}
        assert names(storage, "locks/") == set()
        assert names(storage, "") == {"config", "data/ab/ab01", "data/cd/cd02", "index/i1", "snapshots/s1"}

    def test_overwrite_replaces(self, storage):
        storage.put("locks/l", b"one")
        assert storage.put("locks/l", b"two")
        assert storage.get("locks/l") == b"two"

    def test_create_only_never_replaces(self, storage):
        assert storage.put("index/x", b"first", create_only=True)
        assert not storage.put("index/x", b"second", create_only=True)
        assert storage.get("index/x") == b"first"

    def test_create_only_race_has_one_winner(self, storage):
        results: list[bool] = []
        barrier = threading.Barrier(4)

        def create(i: int) -> None:
            barrier.wait()
            results.append(storage.put("config", f"writer {i}".encode(), create_only=True))

        threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False, False, False, True]
        assert storage.get("config").startswith(b"writer ")

    def test_delete(self, storage):
        storage.put("locks/a", b"x")
        storage.delete("locks/a")
        assert not storage.exists("locks/a")
        assert names(storage, "locks/") == set()
        storage.delete("locks/a")  # absent: not an error

    def test_staged_object_appears_whole_on_commit(self, storage):
        staged = storage.stage("data")
        parts = [os.urandom(1 << 16) for _ in range(20)]
        for part in parts:
            staged.write(part)
        assert staged.size == sum(map(len, parts))
        assert names(storage, "data/") == set()  # nothing visible while it is written
        staged.commit("data/ff/ff00")
        storage.flush()
        assert storage.get("data/ff/ff00") == b"".join(parts)
        assert names(storage, "data/") == {"data/ff/ff00"}

    def test_large_staged_object(self, storage):
        data = os.urandom(40 << 20)  # above the S3 multipart threshold
        staged = storage.stage("data")
        for off in range(0, len(data), 1 << 20):
            staged.write(data[off:off + (1 << 20)])
        staged.commit("data/ee/ee00")
        storage.flush()
        assert storage.stat("data/ee/ee00").size == len(data)
        assert storage.get("data/ee/ee00", 30 << 20, 1 << 20) == data[30 << 20:31 << 20]

    def test_aborted_staged_object_leaves_nothing(self, storage):
        staged = storage.stage("data")
        staged.write(b"half a pack")
        staged.abort()
        storage.flush()
        assert names(storage, "") == set()

    def test_survives_pickling_for_worker_processes(self, storage):
        storage.put("snapshots/p", b"payload")
        copy = pickle.loads(pickle.dumps(storage))
        assert copy.get("snapshots/p", 3, 4) == b"load"
        assert copy.location == storage.location
