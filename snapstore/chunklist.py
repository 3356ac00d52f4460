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


class IdList:
    """A chunk list as its base's ids and the ids its patch replaces, not copied together (a
    list is 8 MB for a 1 GB database, and fresh memory costs page faults): for a reader of a
    few of its ids (a diff).  Positions past the base's end hold zeros until patched."""

    def __init__(self, base: bytes, count: int, replaced: dict[int, bytes] | None = None):
        self.base, self.count, self.replaced = base, count, replaced or {}

    def id(self, pos: int) -> bytes:
        new = self.replaced.get(pos)
        if new is not None:
            return new
        return self.base[pos * ID_SIZE:(pos + 1) * ID_SIZE].ljust(ID_SIZE, b"\0")

    def __bytes__(self) -> bytes:
        """The whole list, in one copy (none when nothing is replaced): unchanged runs joined."""
        need = self.count * ID_SIZE
        if not self.replaced and len(self.base) >= need:
            return self.base[:need] if len(self.base) > need else self.base
        base = memoryview(self.base)[:need]
        parts: list = []
        at = 0
        for pos in sorted(self.replaced):
            off = pos * ID_SIZE
            parts += [base[at:off], bytes(max(0, off - max(at, len(base)))), self.replaced[pos]]
            at = off + ID_SIZE
        parts += [base[at:], bytes(max(0, need - max(at, len(base))))]
        return b"".join(parts)


def _patched(ref: ListRef, base_ids: bytes, reader: BlobReader) -> tuple[IdList, tuple[int, ...]]:
    """The list ``ref`` names, from its base's ids; and the positions its patch replaces."""
    if ref.patch is None:
        return IdList(base_ids, ref.count), ()
    patch = msgpack.unpackb(reader.read(ref.patch))
    positions = struct.unpack(f"<{len(patch['pos']) // 4}I", patch["pos"])
    new_ids = patch["ids"]
    if len(new_ids) != len(positions) * ID_SIZE:
        raise IntegrityError(f"chunk list patch {ref.patch.hex()[:16]} has {len(positions)} positions "
                             f"but {len(new_ids)} bytes of ids")
    # A position patched twice: the last one counts; one past the list's end: none.
    replaced = {pos: new_ids[i * ID_SIZE:(i + 1) * ID_SIZE] for i, pos in enumerate(positions) if pos < ref.count}
    return IdList(base_ids, ref.count, replaced), positions


def load_list(ref: ListRef, reader: BlobReader) -> bytes:
    """The full id list (bytes, 32 per chunk) a ``ListRef`` names."""
    if ref.inline is not None:
        return ref.inline
    return bytes(_patched(ref, _load_base(ref.base, reader), reader)[0])


def load_pair(a: ListRef, b: ListRef, reader: BlobReader) -> tuple[IdList, IdList, list[int]]:
    """Both lists and the positions where they differ (a position only one has counts).

    Two snapshots a day apart usually patch the same base: it is read once, only the
    positions either patch replaces are compared, and neither list is copied out of it."""
    if a.inline is not None or b.inline is not None or a.base != b.base:
        ids_a, ids_b = load_list(a, reader), load_list(b, reader)
        longer, shorter = (ids_a, ids_b) if len(ids_a) >= len(ids_b) else (ids_b, ids_a)
        return IdList(ids_a, a.count), IdList(ids_b, b.count), diff_positions(longer, shorter)
    base = _load_base(a.base, reader)
    (ids_a, pos_a), (ids_b, pos_b) = _patched(a, base, reader), _patched(b, base, reader)
    common = min(a.count, b.count)
    candidates = {p for p in (*pos_a, *pos_b) if p < common}
    changed = [p for p in sorted(candidates) if ids_a.id(p) != ids_b.id(p)]
    return ids_a, ids_b, changed + list(range(common, max(a.count, b.count)))


def patch_list(ids: bytes, changed: list[int], parent: ListRef | None, writer: BlobWriter,
               reader: BlobReader) -> ListRef:
    """Store ``ids`` knowing it differs from ``parent``'s list only at ``changed`` positions
    (and in length): the new patch is the parent's patch plus those positions, against the
    same base, so the cost follows the change, not the list (``snapstore watch``).  The
    base's ids are not read; a patch may name a position whose id equals the base's."""
    count = len(ids) // ID_SIZE
    if parent is None or parent.base is None or count <= INLINE_MAX_IDS:
        return store_list(ids, writer, parent, reader)
    try:
        root = msgpack.unpackb(reader.read(parent.base))
        if not all(writer.has(tree) for tree in (parent.base, *root["leaves"])):
            return ListRef(count=count, base=_write_base(bytes(ids), writer))
        positions = {p for p in changed if p < count}
        if parent.patch is not None:
            patch = msgpack.unpackb(reader.read(parent.patch))
            positions.update(p for p in struct.unpack(f"<{len(patch['pos']) // 4}I", patch["pos"]) if p < count)
    except IntegrityError:
        return ListRef(count=count, base=_write_base(bytes(ids), writer))
    positions.update(range(root["n"], count))  # past the base's end: only what the patch names
    if len(positions) > count // REBASE_FRACTION:
        return ListRef(count=count, base=_write_base(bytes(ids), writer))
    if not positions and root["n"] == count:
        return ListRef(count=count, base=parent.base)
    ordered = sorted(positions)
    patch = msgpack.packb({"n": count, "base": parent.base, "pos": struct.pack(f"<{len(ordered)}I", *ordered),
                           "ids": b"".join(ids[p * ID_SIZE:(p + 1) * ID_SIZE] for p in ordered)})
    return ListRef(count=count, base=parent.base, patch=writer.add_tree(patch))
