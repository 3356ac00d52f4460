"""Chunk lists: unchanged lists cost nothing, small changes cost a patch, reads give the list back."""
from __future__ import annotations

import os
import random

from snapstore.chunklist import INLINE_MAX_IDS, LEAF_IDS, REBASE_FRACTION, load_list, store_list
from snapstore.repository import Repository


def ids_of(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(32 * n)


def store(repo, ids, parent=None):
    with repo.writer() as writer, repo.reader() as reader:
        ref = store_list(ids, writer, parent, reader)
    return ref, writer.stats


def read(repo, ref):
    with repo.reader() as reader:
        return load_list(ref, reader)


def test_short_list_is_inline(tmp_path):
    repo = Repository.init(tmp_path / "r")
    ids = ids_of(INLINE_MAX_IDS, 1)
    ref, stats = store(repo, ids)
    assert ref.inline == ids and stats.blobs == 0
    assert read(repo, ref) == ids


def test_unchanged_list_adds_nothing(tmp_path):
    repo = Repository.init(tmp_path / "r")
    ids = ids_of(3 * LEAF_IDS + 17, 2)
    ref, stats = store(repo, ids)
    assert stats.blobs == 5  # 4 leaves + root
    again, stats2 = store(repo, ids, parent=ref)
    assert stats2.blobs == 0 and again.base == ref.base and again.patch is None
    assert read(repo, again) == ids


def test_scattered_changes_become_a_small_patch(tmp_path):
    repo = Repository.init(tmp_path / "r")
    n = 4 * LEAF_IDS
    ids = bytearray(ids_of(n, 3))
    ref, _ = store(repo, bytes(ids))
    rng = random.Random(4)
    for pos in rng.sample(range(n), 200):
        ids[pos * 32:(pos + 1) * 32] = os.urandom(32)
    ids += os.urandom(32 * 10)  # the file grew by ten pages
    ref2, stats = store(repo, bytes(ids), parent=ref)
    assert ref2.base == ref.base and ref2.patch is not None
    assert stats.blobs == 1 and stats.plain_bytes < 210 * 40
    assert read(repo, ref2) == bytes(ids)
    # a patch on a patch is made against the base, not chained
    ids[0:32] = os.urandom(32)
    ref3, _ = store(repo, bytes(ids), parent=ref2)
    assert ref3.base == ref.base
    assert read(repo, ref3) == bytes(ids)


def test_many_changes_rebase_and_shrinking_lists(tmp_path):
    repo = Repository.init(tmp_path / "r")
    n = 2 * LEAF_IDS
    ids = ids_of(n, 5)
    ref, _ = store(repo, ids)
    changed = bytearray(ids)
    for pos in range(0, n, REBASE_FRACTION // 2):
        changed[pos * 32:(pos + 1) * 32] = os.urandom(32)
    ref2, _ = store(repo, bytes(changed), parent=ref)
    assert ref2.base != ref.base and ref2.patch is None
    assert read(repo, ref2) == bytes(changed)
    shorter = bytes(changed[: 32 * (n - 100)])
    ref3, _ = store(repo, shorter, parent=ref2)
    assert read(repo, ref3) == shorter
