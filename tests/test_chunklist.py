"""Chunk lists: unchanged lists cost nothing, small changes cost a patch, reads give the list back."""
from __future__ import annotations

import os
import random

from snapstore.chunklist import INLINE_MAX_IDS, LEAF_IDS, REBASE_FRACTION, load_list, load_pair, store_list
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


def positions_by_hand(x: bytes, y: bytes) -> list[int]:
    n = max(len(x), len(y)) // 32
    return [p for p in range(n) if x[p * 32:(p + 1) * 32] != y[p * 32:(p + 1) * 32]]


def test_pair_of_lists_and_where_they_differ(tmp_path):
    """Patches on one base (grown, shrunk, a position patched back to the base's id), lists on
    different bases, inline lists: both lists and their differing positions, as computed by hand."""
    repo = Repository.init(tmp_path / "r")
    rng = random.Random(9)
    base_ids = ids_of(2 * LEAF_IDS + 5, 3)
    base, _ = store(repo, base_ids)

    def edited(ids: bytes, changes: int, grow: int = 0) -> bytes:
        out = bytearray(ids)
        for p in rng.sample(range(len(ids) // 32), changes):
            out[p * 32:(p + 1) * 32] = os.urandom(32)
        return bytes(out) + os.urandom(32 * grow)

    a_ids, b_ids = edited(base_ids, 40, grow=3), edited(base_ids, 25)
    b_ids = a_ids[:7 * 32] + b_ids[7 * 32:]  # position 7 patched in both, to the same id
    a, _ = store(repo, a_ids, parent=base)
    b, _ = store(repo, b_ids, parent=base)
    shrunk, _ = store(repo, edited(base_ids, 5)[:-32 * 9], parent=base)
    rebased, _ = store(repo, edited(base_ids, len(base_ids) // 32 // 2), parent=base)
    short, _ = store(repo, ids_of(10, 4))
    assert a.base == b.base == shrunk.base and a.patch and b.patch and rebased.base != base.base
    cases = [(a, b), (b, a), (a, base), (base, shrunk), (shrunk, a), (a, rebased), (short, a), (short, short)]
    with repo.reader() as reader:
        for x, y in cases:
            ids_x, ids_y, positions = load_pair(x, y, reader)
            whole_x, whole_y = load_list(x, reader), load_list(y, reader)
            assert (bytes(ids_x), bytes(ids_y)) == (whole_x, whole_y)
            assert [ids_x.id(p) for p in range(x.count)] == [whole_x[p * 32:(p + 1) * 32] for p in range(x.count)]
            assert positions == positions_by_hand(whole_x, whole_y)
