"""Chunk lists of large files, stored so that they deduplicate between snapshots.

A 1 GB database is ~250k page chunks: 8 MB of ids.  Written whole each time, an
unchanged snapshot would cost 8 MB.  So a long list is stored as

* a **base**: a root tree blob naming leaf blobs of up to ``LEAF_IDS`` ids each
  (leaves are position-aligned, so unchanged regions reuse their leaf blobs), and
* an optional **patch**: (position, id) pairs against that base, written when the
  list differs from its parent's base in few positions.

A snapshot after a small change therefore costs about 36 bytes per changed chunk,
an unchanged one a single reference.  Once the patch would exceed
``1/REBASE_FRACTION`` of the list, a new base is written (its unchanged leaves dedup).
Short lists (config files, logs) stay inline in the manifest.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import msgpack

from .errors import IntegrityError
from .repository import BlobReader, BlobWriter

ID_SIZE = 32
INLINE_MAX_IDS = 256
LEAF_IDS = 4096
REBASE_FRACTION = 16


@dataclass(frozen=True)
class ListRef:
    """How a manifest names a chunk list: inline ids, or base tree + optional patch."""

    count: int
    inline: bytes | None = None
    base: bytes | None = None
    patch: bytes | None = None

    def to_doc(self) -> dict:
        doc: dict = {"n": self.count}
        if self.inline is not None:
            doc["ids"] = self.inline
        else:
            doc["base"] = self.base
            if self.patch is not None:
                doc["patch"] = self.patch
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> "ListRef":
        return cls(count=doc["n"], inline=doc.get("ids"), base=doc.get("base"), patch=doc.get("patch"))

    def tree_ids(self, reader: BlobReader) -> list[bytes]:
        """Every tree blob this list needs (for verify and prune)."""
        if self.inline is not None:
            return []
        root = msgpack.unpackb(reader.read(self.base))
        ids = [self.base, *root["leaves"]]
        if self.patch is not None:
            ids.append(self.patch)
        return ids


def _write_base(ids: bytes, writer: BlobWriter) -> bytes:
    leaf_bytes = LEAF_IDS * ID_SIZE
    leaves = [writer.add_tree(ids[i:i + leaf_bytes]) for i in range(0, len(ids), leaf_bytes)]
    return writer.add_tree(msgpack.packb({"n": len(ids) // ID_SIZE, "leaves": leaves}))


def _load_base(base: bytes, reader: BlobReader) -> bytes:
    root = msgpack.unpackb(reader.read(base))
    ids = b"".join(reader.read(leaf) for leaf in root["leaves"])
    if len(ids) != root["n"] * ID_SIZE:
        raise ValueError("chunk list base has the wrong length")
    return ids


def diff_positions(ids: bytes, base_ids: bytes) -> list[int]:
    """Positions where ``ids`` differs from ``base_ids`` (compared leaf by leaf, fast)."""
    n = len(ids) // ID_SIZE
    changed: list[int] = []
    step = 256 * ID_SIZE
    for start in range(0, len(ids), step):
        if ids[start:start + step] == base_ids[start:start + step]:
            continue
        for pos in range(start // ID_SIZE, min(n, (start + step) // ID_SIZE)):
            off = pos * ID_SIZE
            if ids[off:off + ID_SIZE] != base_ids[off:off + ID_SIZE]:
                changed.append(pos)
    return changed


def _readable_base(parent: ListRef | None, writer: BlobWriter, reader: BlobReader | None) -> bytes | None:
    """The ids of ``parent``'s base if it can serve as the base of a new list: all its tree
    blobs still stored and intact.  Otherwise (lost in a repair, pack missing, damaged) a
    new base is written, which stores those tree blobs again."""
    if parent is None or parent.base is None or reader is None:
        return None
    try:
        if not all(writer.has(tree) for tree in parent.tree_ids(reader)):
            return None
        return _load_base(parent.base, reader)
    except IntegrityError:  # MissingChunk included
        return None


def all_stored(ref: ListRef, writer: BlobWriter, reader: BlobReader) -> bool:
    """Whether every blob of a chunk list (its trees and its chunks) is known to ``writer``."""
    try:
        if not all(writer.has(tree) for tree in ref.tree_ids(reader)):
            return False
        ids = load_list(ref, reader)
    except IntegrityError:
        return False
    return writer.has_all(ids)


def store_list(ids: bytes, writer: BlobWriter, parent: ListRef | None, reader: BlobReader | None) -> ListRef:
    """Store a chunk list, as a patch on ``parent``'s base when that is cheaper."""
    count = len(ids) // ID_SIZE
    if count <= INLINE_MAX_IDS:
        return ListRef(count=count, inline=bytes(ids))
    base_ids = _readable_base(parent, writer, reader)
    if base_ids is not None:
        changed = diff_positions(ids, base_ids)
        if not changed:
            if len(ids) == len(base_ids):
                return ListRef(count=count, base=parent.base)
        elif len(changed) <= count // REBASE_FRACTION:
            patch = msgpack.packb({
                "n": count, "base": parent.base, "pos": struct.pack(f"<{len(changed)}I", *changed),
                "ids": b"".join(ids[p * ID_SIZE:(p + 1) * ID_SIZE] for p in changed),
            })
            return ListRef(count=count, base=parent.base, patch=writer.add_tree(patch))
    return ListRef(count=count, base=_write_base(bytes(ids), writer))


def _patched(ref: ListRef, base_ids: bytes, reader: BlobReader) -> tuple[bytes, tuple[int, ...]]:
    """The list ``ref`` names, from its base's ids; and the positions its patch replaces.

    Built in one copy, the unchanged runs joined between the patched ids: a list is 8 MB
    for a 1 GB database, and fresh memory costs more than the copying (page faults)."""
    if ref.patch is None:  # no copy at all
        return base_ids[:ref.count * ID_SIZE] if len(base_ids) > ref.count * ID_SIZE else base_ids, ()
    patch = msgpack.unpackb(reader.read(ref.patch))
    positions = struct.unpack(f"<{len(patch['pos']) // 4}I", patch["pos"])
    new_ids = memoryview(patch["ids"])
    if len(new_ids) != len(positions) * ID_SIZE:
        raise IntegrityError(f"chunk list patch {ref.patch.hex()[:16]} has {len(positions)} positions "
                             f"but {len(new_ids)} bytes of ids")
    need = ref.count * ID_SIZE
    base = memoryview(base_ids)[:need]
    latest = {pos: i for i, pos in enumerate(positions) if pos * ID_SIZE < need}  # the last of a repeated one
    parts: list = []
    at = 0
    for pos in sorted(latest):
        off = pos * ID_SIZE
        parts += [base[at:off], bytes(max(0, off - max(at, len(base)))), new_ids[latest[pos] * ID_SIZE:][:ID_SIZE]]
        at = off + ID_SIZE
    parts += [base[at:], bytes(max(0, need - max(at, len(base))))]  # a list longer than its base: zeros
    return b"".join(parts), positions


def load_list(ref: ListRef, reader: BlobReader) -> bytes:
    """The full id list (bytes, 32 per chunk) a ``ListRef`` names."""
    if ref.inline is not None:
        return ref.inline
    return _patched(ref, _load_base(ref.base, reader), reader)[0]


def load_pair(a: ListRef, b: ListRef, reader: BlobReader) -> tuple[bytes, bytes, list[int]]:
    """Both lists and the positions where they differ (a position only one has counts).

    Two snapshots a day apart usually patch the same base: it is read once, and only
    the positions either patch replaces are compared."""
    if a.inline is not None or b.inline is not None or a.base != b.base:
        ids_a, ids_b = load_list(a, reader), load_list(b, reader)
        longer, shorter = (ids_a, ids_b) if len(ids_a) >= len(ids_b) else (ids_b, ids_a)
        return ids_a, ids_b, diff_positions(longer, shorter)
    base = _load_base(a.base, reader)
    (ids_a, pos_a), (ids_b, pos_b) = _patched(a, base, reader), _patched(b, base, reader)
    common = min(len(ids_a), len(ids_b)) // ID_SIZE
    candidates = {p for p in (*pos_a, *pos_b) if p < common}
    changed = [p for p in sorted(candidates) if ids_a[p * ID_SIZE:(p + 1) * ID_SIZE] != ids_b[p * ID_SIZE:(p + 1) * ID_SIZE]]
    return ids_a, ids_b, changed + list(range(common, max(a.count, b.count)))
