"""Just enough of SQLite's file format to read table b-trees page by page.

The memory-level diff reads a snapshot's database without materialising it:
interior pages tell which leaf pages each table owns, and only leaves whose
chunk ids differ between the two sides are decoded (file format:
https://www.sqlite.org/fileformat2.html, sections 1.6 and 2.1).
"""
from __future__ import annotations

import array
import struct
from dataclasses import dataclass
from typing import Callable, Iterator

from ...errors import IntegrityError

INTERIOR_TABLE, LEAF_TABLE, INTERIOR_INDEX, LEAF_INDEX = 0x05, 0x0D, 0x02, 0x0A

_U32 = struct.Struct(">I")
PageGetter = Callable[[int], bytes]  # 1-based page number -> page bytes


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """SQLite's big-endian varint at ``pos``: (value, next position)."""
    value = 0
    for i in range(8):
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | buf[pos + 8], pos + 9


@dataclass
class Geometry:
    page_size: int
    usable: int
    text_encoding: int

    @classmethod
    def from_page1(cls, page1: bytes) -> "Geometry":
        if page1[:16] != b"SQLite format 3\x00":
            raise IntegrityError("the snapshot's database does not start with an SQLite header")
        size = struct.unpack(">H", page1[16:18])[0]
        size = 65536 if size == 1 else size
        return cls(size, size - page1[20], struct.unpack(">I", page1[56:60])[0] or 1)

    def local_payload(self, total: int, index: bool = False) -> int:
        u = self.usable
        x = ((u - 12) * 64 // 255 - 23) if index else u - 35
        if total <= x:
            return total
        m = (u - 12) * 32 // 255 - 23
        k = m + (total - m) % (u - 4)
        return k if k <= x else m


def _header_offset(pgno: int) -> int:
    return 100 if pgno == 1 else 0


def cell_pointers(page: bytes, pgno: int) -> tuple[int, list[int]]:
    """(page type, cell offsets)."""
    h = _header_offset(pgno)
    kind = page[h]
    ncells = struct.unpack(">H", page[h + 3:h + 5])[0]
    start = h + (12 if kind in (INTERIOR_TABLE, INTERIOR_INDEX) else 8)
    return kind, list(struct.unpack(f">{ncells}H", page[start:start + 2 * ncells]))


def children(page: bytes, pgno: int) -> list[int]:
    """Child page numbers of an interior page (the right-most pointer last)."""
    h = _header_offset(pgno)
    _, cells = cell_pointers(page, pgno)
    kids = [_U32.unpack_from(page, c)[0] for c in cells]
    kids.append(_U32.unpack_from(page, h + 8)[0])
    return kids


Node = Callable[[int], tuple[int, list[int]]]  # 1-based page number -> (page type, children: [] for a leaf)


def node_reader(get: PageGetter) -> Node:
    """A b-tree page's type and, for an interior page, its children."""
    def node(pgno: int) -> tuple[int, list[int]]:
        page = get(pgno)
        kind = page[_header_offset(pgno)]
        return kind, children(page, pgno) if kind in (INTERIOR_TABLE, INTERIOR_INDEX) else []
    return node


def btree_pages(root: int, node: Node) -> tuple[list[int], "array.array[int]"]:
    """(interior pages, leaf pages) of the b-tree rooted at ``root``, leaves in key order (as
    4-byte numbers: a diff keeps every table's, a list would take 36 bytes a page).

    SQLite's b-trees are balanced (every leaf at the same depth), so a level is known to
    be the leaf level from its first page: the leaves themselves are never read here."""
    interior: list[int] = []
    level = [root]
    while True:
        if node(level[0])[0] in (LEAF_TABLE, LEAF_INDEX):
            return interior, array.array("I", level)
        below = []
        for pgno in level:
            kind, kids = node(pgno)
            if kind not in (INTERIOR_TABLE, INTERIOR_INDEX):
                raise IntegrityError(f"page {pgno} is not an interior b-tree page (type {kind})")
            interior.append(pgno)
            below.extend(kids)
        if len(interior) > 1 << 31 or not below:
            raise IntegrityError(f"b-tree at page {root} is malformed")
        level = below


@dataclass
class Cell:
    """A table leaf cell as stored on its page: the overflow chain is not read yet."""

    rowid: int
    total: int       # payload size
    local: bytes     # the part of the payload on the leaf page
    head: int        # first overflow page (0: none)


def leaf_cells(page: bytes, pgno: int, geo: Geometry) -> Iterator[Cell]:
    kind, cells = cell_pointers(page, pgno)
    if kind != LEAF_TABLE:
        raise IntegrityError(f"page {pgno} is not a table leaf (type {kind})")
    for off in cells:
        total, pos = varint(page, off)
        rowid, pos = varint(page, pos)
        rowid = rowid - (1 << 64) if rowid >= 1 << 63 else rowid
        local = geo.local_payload(total)
        head = struct.unpack(">I", page[pos + local:pos + local + 4])[0] if local < total else 0
        yield Cell(rowid, total, bytes(page[pos:pos + local]), head)


def overflow_cells(page: bytes, pgno: int, geo: Geometry) -> Iterator[Cell]:
    """Only the cells of a table leaf that spill onto overflow pages (rowid not decoded):
    most cells are small and cost one varint."""
    _, cells = cell_pointers(page, pgno)
    limit = geo.usable - 35
    for off in cells:
        if page[off] < 0x80:  # a one-byte size: under 128 bytes
            continue
        total, pos = varint(page, off)
        if total <= limit:
            continue
        _, pos = varint(page, pos)
        local = geo.local_payload(total)
        yield Cell(0, total, bytes(page[pos:pos + local]), _U32.unpack_from(page, pos + local)[0])


def full_payload(cell: Cell, geo: Geometry, get: PageGetter, overflow_seen: list[int],
                 upto: int | None = None) -> bytes:
    """The cell's whole payload, its overflow chain followed (page numbers added to
    ``overflow_seen``); with ``upto``, only until at least that many bytes are known."""
    if not cell.head:
        return cell.local
    payload = bytearray(cell.local)
    want = cell.total if upto is None else min(upto, cell.total)
    nxt = cell.head
    while nxt and len(payload) < want:
        overflow_seen.append(nxt)
        page = get(nxt)
        nxt = _U32.unpack_from(page)[0]
        payload += page[4:4 + min(geo.usable - 4, cell.total - len(payload))]
    return bytes(payload)


def freelist_pages(page1: bytes, get: PageGetter) -> set[int]:
    """Every page on the freelist (trunk and leaf pages)."""
    pages: set[int] = set()
    trunk = struct.unpack(">I", page1[32:36])[0]
    while trunk and trunk not in pages:
        pages.add(trunk)
        page = get(trunk)
        count = struct.unpack(">I", page[4:8])[0]
        pages.update(struct.unpack(f">{count}I", page[8:8 + 4 * count]))
        trunk = struct.unpack(">I", page[:4])[0]
    return pages


def decode_record(payload: bytes, encoding: int, limit: int | None = None) -> list:
    """The column values of a record (text as str, blobs as bytes); only the first ``limit``
    columns when given (a row's key is usually its first column)."""
    header_len, pos = varint(payload, 0)
    types = []
    while pos < header_len and (limit is None or len(types) < limit):
        t, pos = varint(payload, pos)
        types.append(t)
    values, body = [], header_len
    codec = {1: "utf-8", 2: "utf-16-le", 3: "utf-16-be"}.get(encoding, "utf-8")
    for t in types:
        if t == 0:
            values.append(None)
        elif t in (8, 9):
            values.append(t - 8)
        elif t <= 6:
            n = (0, 1, 2, 3, 4, 6, 8)[t]
            values.append(int.from_bytes(payload[body:body + n], "big", signed=True))
            body += n
        elif t == 7:
            values.append(struct.unpack(">d", payload[body:body + 8])[0])
            body += 8
        elif t >= 12:
            n = (t - 12) // 2
            raw = payload[body:body + n]
            values.append(bytes(raw) if t % 2 == 0 else raw.decode(codec, "replace"))
            body += n
        else:
            raise IntegrityError(f"record has reserved serial type {t}")
    return values
