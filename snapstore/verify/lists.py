"""Decoding the tree blobs of chunk lists (docs/design.md, "Snapshot manifests").

The walk checks a base list leaf by leaf and a patch by its own ids, so that
work is done once per distinct tree blob however many snapshots share it; that
needs the parts of a list, which ``chunklist.load_list`` (the whole list at
once) does not expose.  Structure errors are ``TreeMalformed``: a tree blob whose
hash is right but whose content is not a chunk list (a writer bug or a forged
blob), reported apart from corruption.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import msgpack

from ..chunklist import ID_SIZE, LEAF_IDS
from ..errors import IntegrityError


class TreeMalformed(IntegrityError):
    def __init__(self, blob_id: bytes, detail: str):
        super().__init__(f"chunk-list tree {blob_id.hex()[:16]}: {detail}")
        self.blob_id = blob_id
        self.detail = detail


@dataclass(frozen=True)
class Root:
    n: int
    leaves: list[bytes]


@dataclass(frozen=True)
class Patch:
    n: int
    base: bytes
    positions: tuple[int, ...]
    ids: bytes


def decode_root(blob_id: bytes, data: bytes) -> Root:
    try:
        doc = msgpack.unpackb(data)
        n, leaves = doc["n"], list(doc["leaves"])
    except Exception as exc:
        raise TreeMalformed(blob_id, f"not a base list ({exc})") from None
    if not isinstance(n, int) or n < 0 or any(not isinstance(x, bytes) or len(x) != ID_SIZE for x in leaves):
        raise TreeMalformed(blob_id, "not a base list (bad fields)")
    if len(leaves) != -(-n // LEAF_IDS):
        raise TreeMalformed(blob_id, f"{len(leaves)} leaves for {n} ids")
    return Root(n, leaves)


def check_leaf(blob_id: bytes, data: bytes, index: int, root: Root) -> None:
    expected = min(LEAF_IDS, root.n - index * LEAF_IDS) * ID_SIZE
    if len(data) != expected:
        raise TreeMalformed(blob_id, f"leaf {index} holds {len(data)} bytes, expected {expected}")


def decode_patch(blob_id: bytes, data: bytes) -> Patch:
    try:
        doc = msgpack.unpackb(data)
        n, base, pos, ids = doc["n"], doc["base"], doc["pos"], doc["ids"]
        positions = struct.unpack(f"<{len(pos) // 4}I", pos)
    except Exception as exc:
        raise TreeMalformed(blob_id, f"not a patch ({exc})") from None
    if len(pos) % 4 or len(ids) != len(positions) * ID_SIZE or not isinstance(n, int):
        raise TreeMalformed(blob_id, "patch positions and ids do not match")
    return Patch(n, base, positions, ids)
