"""The local backend passes the conformance suite and keeps the on-disk layout of format 1."""
from __future__ import annotations

import pytest
from conformance import StorageTests

from snapstore.storage import LocalStorage


class TestLocalStorage(StorageTests):
    @pytest.fixture
    def storage(self, tmp_path):
        store = LocalStorage(tmp_path / "repo")
        store.make_layout(("data", "index", "snapshots", "locks"))
        yield store
        store.close()


def test_objects_are_plain_files_and_temp_files_are_not_listed(tmp_path):
    store = LocalStorage(tmp_path)
    store.put("data/ab/abcd", b"pack")
    assert (tmp_path / "data" / "ab" / "abcd").read_bytes() == b"pack"
    (tmp_path / "data" / "ab" / "abcd.tmp-host_1.99-00aa").write_bytes(b"half")
    assert [i.name for i in store.list("data/")] == ["data/ab/abcd"]


def test_names_cannot_escape_the_repository(tmp_path):
    store = LocalStorage(tmp_path / "repo")
    for bad in ("../outside", "/etc/passwd", "data/../../x"):
        with pytest.raises(ValueError):
            store.put(bad, b"x")
