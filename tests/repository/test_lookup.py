"""PrefixLookup answers exactly what Index answers: first listing wins, shared prefixes resolved."""
from __future__ import annotations

import random

from snapstore.repository.index import Index
from snapstore.repository.lookup import PrefixLookup
from snapstore.repository.pack import BLOB_RECORD


def records(ids: list[bytes], seed: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(BLOB_RECORD.pack(i, rng.randrange(2), rng.randrange(2), rng.randrange(1 << 40),
                                     rng.randrange(1 << 20), rng.randrange(1 << 20), rng.randrange(1 << 16))
                    for i in ids)


def test_same_answers_as_the_index():
    rng = random.Random(1)
    ids = [rng.randbytes(32) for _ in range(3000)]
    prefix = ids[5][:8]
    twins = [prefix + rng.randbytes(24) for _ in range(3)]  # same first 8 bytes as ids[5], other blobs
    packs = [
        (b"p" * 32, 100, records(ids[:1500] + twins[:1], 1)),
        (b"q" * 32, 200, records(ids[1000:] + twins[1:2], 2)),  # ids[1000:1500] listed twice: the first wins
        (b"r" * 32, 300, records(ids[:10] + [twins[1]], 3)),
        (b"s" * 32, 0, b""),
    ]
    index = Index()
    index.add_packs(packs)
    lookup = PrefixLookup(packs)
    for blob_id in [*ids, *twins[:2]]:
        assert lookup.get(blob_id) == index.get(blob_id) is not None
        assert blob_id in lookup
    assert lookup.get(ids[1200]).pack_id == b"p" * 32
    for absent in (twins[2], prefix + bytes(24), rng.randbytes(32)):
        assert lookup.get(absent) is None and absent not in lookup


def test_tree_packs_and_an_empty_repository():
    tree = BLOB_RECORD.pack(b"t" * 32, 1, 0, 0, 1, 1, 0)  # type 1: tree
    data = BLOB_RECORD.pack(b"d" * 32, 0, 0, 0, 1, 1, 0)
    lookup = PrefixLookup([(b"a" * 32, 1, tree), (b"b" * 32, 1, data)])
    assert lookup.tree_pack_ids() == [b"a" * 32]
    assert PrefixLookup([]).get(b"x" * 32) is None
