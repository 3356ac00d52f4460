"""Memory-level diff of two SQLite database images, reading only the pages they do not share.

Each side is a list of page chunk ids (a snapshot's chunk list, or the BLAKE3 of
each live page) plus a way to read a page.  Interior pages say which leaves each
table owns; a leaf that both sides own for the same table with the same chunk id
holds the same rows on both sides, so those rows cancel and only the other
leaves are decoded.  A row is keyed by its primary key (rowid when there is
none); same key with a different record is "changed".

Overflow pages: a row can change in its overflow chain while its leaf's bytes stay
equal.  Every page whose id differs must therefore be accounted for on each side
(a b-tree page, a freelist page, or an overflow page of a decoded row); if one is
not, the diff falls back to decoding every leaf, which is always right.
"""
from __future__ import annotations

import sqlite3
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import blake3

from ...chunklist import load_list
from ...manifest import Snapshot
from ...repository import Repository
from ...sources.sqlite import SQLiteImageReader
from .model import DiffResult, TableChanges, summarize
from .sqlite_btree import INTERIOR_INDEX, LEAF_INDEX, Geometry, btree_pages, decode_record, freelist_pages, leaf_cells

DB_PATH = "database/sqlite.db"


class PageSide:
    """One side of the diff: page chunk ids (32 bytes per page) and a page reader with a small cache."""

    CACHE = 4096

    def __init__(self, ids: bytes, read: Callable[[int], bytes]):
        self.ids, self._read = ids, read
        self.page_count = len(ids) // 32
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self.reads = 0

    def page_id(self, pgno: int) -> bytes | None:
        return self.ids[(pgno - 1) * 32:pgno * 32] if 1 <= pgno <= self.page_count else None

    def get(self, pgno: int) -> bytes:
        page = self._cache.get(pgno)
        if page is None:
            page = self._read(pgno)
            self.reads += 1
            self._cache[pgno] = page
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        return page


@contextmanager
def snapshot_side(repo: Repository, snap: Snapshot) -> Iterator[PageSide]:
    entry = snap.file(DB_PATH)
    with repo.reader() as reader:
        ids = load_list(entry.chunks, reader)
        yield PageSide(ids, lambda pgno: reader.read(ids[(pgno - 1) * 32:pgno * 32]))


@contextmanager
def live_side(path: Path) -> Iterator[PageSide]:
    """The live database under SQLite's read transaction; every page is hashed once (no copy)."""
    with SQLiteImageReader(path) as image:
        ids = bytearray()
        for page in image.pages(0, image.page_count):
            ids += blake3.blake3(page).digest()
        yield PageSide(bytes(ids), lambda pgno: bytes(next(image.pages(pgno - 1, 1))))


class _Schema:
    """Tables of one side: root page, columns, key columns (from sqlite_master)."""

    def __init__(self, side: PageSide, geo: Geometry):
        rows = []
        for leaf in btree_pages(1, side.get)[1]:
            for _, payload in leaf_cells(side.get(leaf), leaf, geo, side.get):
                rows.append(decode_record(payload, geo.text_encoding))
        self.btrees = [r[3] for r in rows if isinstance(r[3], int) and r[3] > 0]
        virtual = [r[1] for r in rows if r[0] == "table" and (r[4] or "").upper().startswith("CREATE VIRTUAL")]
        self.tables: dict[str, dict] = {}
        mem = sqlite3.connect(":memory:")
        for kind, name, _, root, sql in (r[:5] for r in rows):
            if kind != "table" or not root or name.startswith("sqlite_") or sql is None:
                continue
            mem.execute(sql)
            info = mem.execute(f'PRAGMA table_info("{name.replace(chr(34), chr(34) * 2)}")').fetchall()
            columns = [r[1] for r in info]
            pk = sorted((r[5], r[0], r[2]) for r in info if r[5])
            rowid_alias = len(pk) == 1 and pk[0][2].upper() == "INTEGER"
            key = [] if rowid_alias else [idx for _, idx, _ in pk] if pk else None  # None: no key
            if side.get(root)[100 if root == 1 else 0] in (INTERIOR_INDEX, LEAF_INDEX):
                continue  # WITHOUT ROWID (FTS5's own bookkeeping): an index b-tree, not rows
            shadow = any(name.startswith(v + "_") for v in virtual)
            self.tables[name] = {"root": root, "columns": columns, "key": key, "shadow": shadow}
        mem.close()


def _rows(side: PageSide, geo: Geometry, table: dict, leaves: list[int], overflow: list[int]) -> dict:
    """key -> record payload for the cells of these leaves; for a table without a declared key
    (whose rowids VACUUM may renumber), payload -> how many rows hold it."""
    out: dict = {}
    for leaf in leaves:
        for rowid, payload in leaf_cells(side.get(leaf), leaf, geo, side.get, overflow):
            if table["key"] is None:
                out[payload] = out.get(payload, 0) + 1
                continue
            if table["key"]:
                values = decode_record(payload, geo.text_encoding)
                key = tuple(values[i] for i in table["key"])
            else:
                key = rowid
            out[key] = payload
    return out


def _multiset(changes: TableChanges, rows_a: dict, rows_b: dict, ta, tb, geo_a, geo_b, limit: int) -> None:
    for rows, other, kind, table, geo in ((rows_b, rows_a, "added", tb, geo_b), (rows_a, rows_b, "removed", ta, geo_a)):
        for payload, n in rows.items():
            for _ in range(n - other.get(payload, 0)):
                changes.note(kind, "-", summarize(table["columns"], decode_record(payload, geo.text_encoding)), limit)


def diff_sqlite(a: PageSide, b: PageSide, rows: int = 3) -> DiffResult:
    geo_a, geo_b = Geometry.from_page1(a.get(1)), Geometry.from_page1(b.get(1))
    schema_a, schema_b = _Schema(a, geo_a), _Schema(b, geo_b)
    leaves = {}
    accounted = []
    for side, schema in ((a, schema_a), (b, schema_b)):
        seen = {1} | freelist_pages(side.get(1), side.get)
        per_table = {}
        for root in schema.btrees:
            interior, leaf_pages = btree_pages(root, side.get)
            seen.update(interior)
            seen.update(leaf_pages)
            per_table[root] = leaf_pages
        leaves[id(side)] = per_table
        accounted.append(seen)
    differing = {p for p in range(1, max(a.page_count, b.page_count) + 1) if a.page_id(p) != b.page_id(p)}
    result = _diff_tables(a, b, geo_a, geo_b, schema_a, schema_b, leaves, differing, rows, accounted)
    if result is None:  # a changed page no side can explain: decode everything
        result = _diff_tables(a, b, geo_a, geo_b, schema_a, schema_b, leaves, None, rows, accounted)
    result.read |= {"pages": max(a.page_count, b.page_count), "pages_differing": len(differing)}
    return result


def _diff_tables(a, b, geo_a, geo_b, schema_a, schema_b, leaves, differing, limit, accounted) -> DiffResult | None:
    result = DiffResult("sqlite")
    overflow_a: list[int] = []
    overflow_b: list[int] = []
    decoded = 0
    for name in sorted(set(schema_a.tables) | set(schema_b.tables)):
        ta, tb = schema_a.tables.get(name), schema_b.tables.get(name)
        la = leaves[id(a)][ta["root"]] if ta else []
        lb = leaves[id(b)][tb["root"]] if tb else []
        if differing is None or not ta or not tb or ta["columns"] != tb["columns"] or ta["key"] != tb["key"]:
            shared: set[int] = set()
        else:
            shared = set(la) & set(lb) - differing
        only_a = [p for p in la if p not in shared]
        only_b = [p for p in lb if p not in shared]
        decoded += len(only_a) + len(only_b)
        rows_a = _rows(a, geo_a, ta, only_a, overflow_a) if ta else {}
        rows_b = _rows(b, geo_b, tb, only_b, overflow_b) if tb else {}
        if (ta or tb)["shadow"]:
            continue
        changes = TableChanges()
        columns_b = (tb or ta)["columns"]
        if (tb or ta)["key"] is None or (ta and ta["key"] is None):
            _multiset(changes, rows_a, rows_b, ta, tb, geo_a, geo_b, limit)
            result.tables[name] = changes
            continue
        for key, payload in rows_b.items():
            old = rows_a.get(key)
            if old is None:
                changes.note("added", key, summarize(columns_b, decode_record(payload, geo_b.text_encoding)), limit)
            elif old != payload:
                changes.note("changed", key, summarize(columns_b, decode_record(payload, geo_b.text_encoding)), limit)
        for key, payload in rows_a.items():
            if key not in rows_b:
                changes.note("removed", key, summarize(ta["columns"], decode_record(payload, geo_a.text_encoding)),
                             limit)
        result.tables[name] = changes
    if differing is not None:
        for side, seen, overflow in zip((a, b), accounted, (overflow_a, overflow_b)):
            if {p for p in differing if p <= side.page_count} - seen - set(overflow):
                return None
    result.read = {"leaf_pages_decoded": decoded, "overflow_pages_read": len(overflow_a) + len(overflow_b),
                   "fallback_full": differing is None}
    return result
