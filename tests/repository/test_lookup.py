"""SortedLookup answers exactly what Index answers, with or without its cached tables."""
from __future__ import annotations

import random

from snapstore.repository.index import Index, prefer_present
from snapstore.repository.lookup import SortedLookup
from snapstore.repository.pack import BLOB_RECORD


def records(ids: list[bytes], seed: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(BLOB_RECORD.pack(i, rng.randrange(2), rng.randrange(2), rng.randrange(1 << 40),
                                     rng.randrange(1 << 20), rng.randrange(1 << 20), rng.randrange(1 << 16))
                    for i in ids)


def index_files():
    """Three index files: blobs listed twice (in one file and across files), ids sharing their
    first 8 bytes with other blobs, an empty pack and an empty file."""
    rng = random.Random(1)
    ids = [rng.randbytes(32) for _ in range(3000)]
    prefix = ids[5][:8]
    twins = [prefix + rng.randbytes(24) for _ in range(3)]
    files = [
        ("a" * 64, [(b"p" * 32, 100, records(ids[:1500] + twins[:1], 1)),
                    (b"q" * 32, 200, records(ids[1000:2000] + twins[1:2], 2))]),
        ("b" * 64, [(b"r" * 32, 300, records(ids[1900:] + ids[:10] + [twins[1]], 3)), (b"s" * 32, 0, b"")]),
        ("c" * 64, []),
    ]
    return files, ids, twins, prefix


def expected_index(files, present):
    index = Index()
    index.add_packs(prefer_present([p for _, packs in files for p in packs], present))
    return index


def test_same_answers_as_the_index(tmp_path):
    files, ids, twins, prefix = index_files()
    rng = random.Random(2)
    for present in (None, {b"p" * 32, b"r" * 32}, {b"q" * 32, b"r" * 32}):
        index = expected_index(files, present)
        for cache in (None, tmp_path / "cache", tmp_path / "cache"):  # no cache, building it, reading it
            lookup = SortedLookup(files, present, cache)
            for blob_id in [*ids, *twins[:2]]:
                assert lookup.get(blob_id) == index.get(blob_id) is not None
            for absent in (twins[2], prefix + bytes(24), rng.randbytes(32)):
                assert lookup.get(absent) is None and absent not in lookup
    assert SortedLookup(files, None).get(ids[1200]).pack_id == b"p" * 32
    assert SortedLookup(files, {b"q" * 32}).get(ids[1200]).pack_id == b"q" * 32


def test_cached_tables_checked_and_kept_to_the_index_files(tmp_path):
    files, ids, _, _ = index_files()
    cache = tmp_path / "cache"
    SortedLookup(files, None, cache)
    assert sorted(p.name for p in cache.iterdir()) == ["a" * 64, "b" * 64, "c" * 64]
    table = cache / ("a" * 64)
    damaged = bytearray(table.read_bytes())
    damaged[-5] ^= 1
    table.write_bytes(bytes(damaged))
    assert SortedLookup(files, None, cache).get(ids[7]) == expected_index(files, None).get(ids[7])
    assert table.read_bytes() != bytes(damaged)  # rebuilt
    SortedLookup(files[1:], None, cache)  # file "a" is gone (a prune replaced it)
    assert sorted(p.name for p in cache.iterdir()) == ["b" * 64, "c" * 64]


def test_tree_packs():
    tree = BLOB_RECORD.pack(b"t" * 32, 1, 0, 0, 1, 1, 0)  # type 1: tree
    data = BLOB_RECORD.pack(b"d" * 32, 0, 0, 0, 1, 1, 0)
    lookup = SortedLookup([("f" * 64, [(b"a" * 32, 1, tree), (b"b" * 32, 1, data)])])
    assert lookup.tree_pack_ids() == [b"a" * 32]
    assert SortedLookup([]).get(b"x" * 32) is None
