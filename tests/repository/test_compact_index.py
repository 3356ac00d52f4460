"""Index: the sorted id-prefix arrays answer exactly as a dict of every blob would (first
listing wins; listings in present packs first), for single and batch lookups, across index
files, for packs added after the load, and for ids that share their first 8 bytes."""
from __future__ import annotations

import os
import random

from snapstore.repository.index import Index, Location, PackInfo, load_index, write_index_file
from snapstore.repository.pack import BLOB_DATA, BLOB_RECORD, BLOB_TREE
from snapstore.storage.local import LocalStorage


def pack(ids: list[bytes], blob_type: int = BLOB_DATA) -> tuple[bytes, int, bytes]:
    records = b"".join(BLOB_RECORD.pack(blob_id, blob_type, 1, i * 100, 90, 4096 + i, 0) for i, blob_id in enumerate(ids))
    return os.urandom(32), 1000 + len(ids), records


def model(packs: list[tuple[bytes, int, bytes]]) -> dict[bytes, Location]:
    """The reference: a dict filled in listing order, first listing kept."""
    where: dict[bytes, Location] = {}
    for pack_id, _size, records in packs:
        for blob_id, btype, codec, off, slen, plen, inner in BLOB_RECORD.iter_unpack(records):
            where.setdefault(blob_id, Location(pack_id, btype, codec, off, slen, plen, inner))
    return where


def check(index: Index, expected: dict[bytes, Location], absent: list[bytes]) -> None:
    assert len(index) == len(expected)
    assert sorted(index.ids()) == sorted(expected)
    assert dict(index.items()) == expected
    for blob_id, loc in expected.items():
        assert index.get(blob_id) == loc and blob_id in index
    for blob_id in absent:
        assert index.get(blob_id) is None and blob_id not in index
    asked = list(expected) + absent
    random.Random(5).shuffle(asked)
    assert index.missing_of(asked) == set(absent)
    assert index.missing_mask(b"".join(asked)).tolist() == [b in absent for b in asked]
    assert index.locations(b"".join(asked)) == [expected.get(b) for b in asked]


def twins(n: int) -> list[bytes]:
    """Ids sharing their first 8 bytes in pairs (the prefix alone does not tell them apart)."""
    out = []
    for _ in range(n):
        head = os.urandom(8)
        out += [head + os.urandom(24), head + os.urandom(24)]
    return out


def test_lookups_match_a_dict_with_duplicates_and_shared_prefixes():
    ids = [os.urandom(32) for _ in range(3000)] + twins(50)
    random.Random(1).shuffle(ids)
    packs = [pack(ids[:1000]), pack(ids[1000:2100]), pack(ids[500:1500] + ids[2100:]), pack(ids[:10])]
    index = Index()
    index.add_packs(packs)
    shared = [ids[0][:8] + os.urandom(24), ids[-1][:8] + os.urandom(24)]  # a listed id's prefix, not listed
    check(index, model(packs), [os.urandom(32) for _ in range(20)] + shared)
    assert index.get(ids[600]).pack_id == packs[0][0]  # listed in packs 0 and 2: the first listing
    assert [p.pack_id for p in index.pack_infos()] == [p[0] for p in packs]


def test_packs_added_after_the_load_keep_earlier_listings_and_merge():
    first = [os.urandom(32) for _ in range(2000)] + twins(20)
    later = first[:300] + [os.urandom(32) for _ in range(700)] + [first[-1][:8] + os.urandom(24)]
    packs = [pack(first)]
    index = Index()
    index.add_packs(packs)
    for k in range(0, len(later), 250):  # a backup's packs, one index file at a time
        extra = pack(later[k:k + 250])
        packs.append(extra)
        index.add_pack(*extra)
    expected = model(packs)
    check(index, expected, [os.urandom(32) for _ in range(10)])
    assert all(index.get(b).pack_id == packs[0][0] for b in first)


def test_duplicates_across_index_files_and_missing_packs(tmp_path):
    storage = LocalStorage(tmp_path)
    ids = [os.urandom(32) for _ in range(500)]
    lost, again, other = pack(ids[:200]), pack(ids[:100]), pack(ids[200:])
    # The lost pack's file is listed first; the blobs a later backup stored again must resolve
    # to the present copy, the rest to the lost pack (named as missing).
    for listed in ([lost, other], [again]):
        write_index_file(storage, [PackInfo(*p) for p in listed])
    present = {again[0], other[0]}
    index = load_index(storage, present=present)
    assert index.missing_packs == {lost[0]}
    assert len(index.files) == 2
    for blob_id in ids[:100]:
        assert index.get(blob_id).pack_id == again[0]
    for blob_id in ids[100:200]:
        assert index.get(blob_id).pack_id == lost[0]
    healthy = index.without(index.missing_packs)
    assert healthy.missing_of(ids) == set(ids[100:200])
    assert healthy.get(ids[0]).pack_id == again[0] and healthy.files == index.files
    assert not healthy.missing_packs


def test_resolve_groups_record_numbers_by_pack():
    ids = [os.urandom(32) for _ in range(1200)]
    packs = [pack(ids[:700]), pack(ids[300:1200])]
    index = Index()
    index.add_packs(packs)
    wanted = set(ids[650:750]) | {os.urandom(32) for _ in range(7)}
    by_pack, missing = index.resolve(wanted)
    assert missing == 7
    assert sorted(by_pack[packs[0][0]]) == list(range(650, 700))
    assert sorted(by_pack[packs[1][0]]) == list(range(400, 450))
    assert index.resolve(set()) == ({}, 0)


def test_tree_packs_by_pack_and_an_empty_index():
    index = Index()
    assert len(index) == 0 and index.get(os.urandom(32)) is None
    assert index.missing_of([b"a" * 32]) == {b"a" * 32} and index.locations(b"") == []
    trees, data = pack([os.urandom(32) for _ in range(3)], BLOB_TREE), pack([os.urandom(32) for _ in range(4)])
    index.add_packs([data, trees, (os.urandom(32), 10, b"")])
    assert index.tree_pack_ids() == [trees[0]]
    grouped = index.by_pack()
    assert {k: len(v) for k, v in grouped.items()} == {data[0]: 4, trees[0]: 3}


def test_a_partial_last_id_is_missing_not_an_error():
    ids = [os.urandom(32) for _ in range(3)]
    index = Index()
    index.add_packs([pack(ids)])
    damaged = b"".join(ids) + ids[0][:5]
    assert index.missing_mask(damaged).tolist() == [False, False, False, True]
    assert index.locations(damaged)[3] is None and index.locations(damaged)[0] == index.get(ids[0])
