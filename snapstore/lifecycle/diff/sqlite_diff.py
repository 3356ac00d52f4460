"""Memory-level diff of two SQLite database images, reading only the pages they do not share.

Each side is a list of page chunk ids (a snapshot's chunk list, or the BLAKE3 of
each live page) plus a way to read a page.  Interior pages say which leaves each
table owns; a leaf that both sides own for the same table with the same chunk id
holds the same rows on both sides, so those rows cancel and only the other
leaves are decoded.  A row is keyed by its primary key (rowid when there is
none); same key with a different record is "changed".

Overflow pages: a row can change in its overflow chain while its leaf's bytes stay
equal.  Such a row starts its chain on the same page on both sides, so the first
page of the chain that differs has the same number on both sides and, on both,
belongs to that row's chain only: it is no b-tree or freelist page on either
side, lies within both files, and is in no chain of a decoded row.  So every
page whose id differs must be accounted for on at least one side (a b-tree page,
a freelist page, beyond that side's end, or an overflow page of a decoded row);
if one is not, the diff falls back to decoding every leaf, which is always right.
Chains of decoded rows are read only while some differing page is unexplained.
"""
from __future__ import annotations

import bisect
import functools
import os
import struct
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ...chunklist import IdList, diff_positions, load_list, load_pair
from ...errors import UnsupportedFormat
from ...manifest import Snapshot
from ...repository import Repository
from .model import SUMMARY_CHARS, SUMMARY_COLUMNS, DiffResult, TableChanges, summarize
from .sqlite_btree import (INTERIOR_INDEX, LEAF_INDEX, Cell, Geometry, btree_pages, decode_record, freelist_pages,
                           full_payload, leaf_cells, node_reader, overflow_cells, varint)

DB_PATH = "database/sqlite.db"


class NodeCache:
    """B-tree pages parsed -- (page type, children) -- by chunk id: shared by both sides of a
    diff, and kept in the local cache for the next one (``path``).  A user who diffs daily
    diffs today against yesterday: the ~250 interior pages of a 1 GB database that the older
    side needs were parsed by yesterday's diff, and each would cost a payload decompressed.
    Keyed by content (a chunk id), an entry is never stale; the file holds what the last
    diff used, checked by its BLAKE3, and is rewritten (no fsync: a cache) only when that
    diff parsed a page it did not hold.  It also keeps the tables' columns and keys as
    SQLite read them from the CREATE statements (``_declared``), keyed by those statements.  Unencrypted repositories only: an encrypted one
    keeps even the shape of its databases out of the local cache."""

    MAGIC = b"snapstore-diff-cache-1\n"

    def __init__(self, path: Path | None = None):
        self.path = path
        stored = self._load() if path is not None else {}
        self.stored: dict[bytes, bytes] = stored.get("nodes") or {}
        self.schemas: dict[bytes, list] = stored.get("schemas") or {}
        self.used: dict[bytes, tuple[int, list[int]]] = {}
        self.used_schemas: dict[bytes, list] = {}
        self.fresh = 0

    def _load(self) -> dict:
        import blake3
        import msgpack

        try:
            data = self.path.read_bytes()
        except OSError:
            return {}
        head, digest, body = data[:len(self.MAGIC)], data[len(self.MAGIC):len(self.MAGIC) + 32], \
            data[len(self.MAGIC) + 32:]
        if head != self.MAGIC or blake3.blake3(body).digest() != digest:
            return {}  # damaged or another format: parsed afresh, rewritten
        try:
            stored = msgpack.unpackb(body)
        except ValueError:
            return {}
        return stored if isinstance(stored, dict) and all(isinstance(stored.get(k, {}), dict)
                                                          for k in ("nodes", "schemas")) else {}

    def declared(self, tables: tuple[tuple[str, str], ...]) -> dict:
        """``_declared(tables)``, from the file when a diff asked it before."""
        import blake3
        import msgpack

        key = blake3.blake3(msgpack.packb(tables)).digest()
        rows = self.schemas.get(key)
        try:
            out = {name: (tuple(columns), None if pk is None else tuple(pk)) for name, columns, pk in rows}
        except (TypeError, ValueError):  # not there (or not in this shape)
            out = _declared(tables)
            rows = [[name, list(columns), None if pk is None else list(pk)] for name, (columns, pk) in out.items()]
            self.fresh += 1
        self.used_schemas[key] = rows
        return out

    def get(self, key: bytes) -> tuple[int, list[int]] | None:
        got = self.used.get(key)
        if got is None:
            raw = self.stored.get(key)
            if isinstance(raw, bytes) and raw and len(raw) % 4 == 1:
                got = self.used[key] = (raw[0], list(struct.unpack(f">{len(raw) // 4}I", raw[1:])))
        return got

    def put(self, key: bytes, node: tuple[int, list[int]]) -> None:
        self.used[key] = node
        self.fresh += 1

    def save(self) -> None:
        if self.path is None or not self.fresh:
            return
        import blake3
        import msgpack

        body = msgpack.packb({"nodes": {key: bytes([kind]) + struct.pack(f">{len(kids)}I", *kids)
                                        for key, (kind, kids) in self.used.items()},
                              "schemas": self.used_schemas})
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(self.MAGIC + blake3.blake3(body).digest() + body)
            os.replace(tmp, self.path)
        except OSError:  # a cache that cannot be written costs the next diff time, nothing else
            tmp.unlink(missing_ok=True)


class PageSide:
    """One side of the diff: page chunk ids and a page reader (given the page number and its
    chunk id) with a small cache, keyed by chunk id: two snapshots' sides share theirs (an
    unchanged page is usually read once), and share the b-tree pages they parsed (``node``:
    the interior pages both sides hold are read once, for the first side's walk)."""

    CACHE = 256  # pages: 4096 saved 77 of ~4000 reads but cost 15 MiB of fresh memory (page faults)

    def __init__(self, ids: IdList, read: Callable[[int, bytes], bytes],
                 cache: "OrderedDict[bytes, bytes] | None" = None, nodes: NodeCache | None = None):
        self.ids, self._read = ids, read
        self.page_count = ids.count
        self._cache: OrderedDict[bytes, bytes] = OrderedDict() if cache is None else cache
        self.nodes = NodeCache() if nodes is None else nodes
        self._node = node_reader(self.get)
        self.reads = 0

    def get(self, pgno: int) -> bytes:
        chunk = self.ids.id(pgno - 1)
        page = self._cache.get(chunk)
        if page is None:
            page = self._read(pgno, chunk)
            self.reads += 1
            self._cache[chunk] = page
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        return page

    def node(self, pgno: int) -> tuple[int, list[int]]:
        """The b-tree page's type and children (``sqlite_btree.node_reader``), parsed once per
        chunk id (page 1's header moves its b-tree header: it is keyed apart)."""
        key = self.ids.id(pgno - 1) + (b"1" if pgno == 1 else b"")
        got = self.nodes.get(key)
        if got is None:
            got = self._node(pgno)
            self.nodes.put(key, got)
        return got


KEEP_FRAMES = 16  # decompressed payloads kept (16 pages each, 1 MiB): an overflow chain's pages share a few; more
# would save decompressions but cost more in fresh memory (page faults) than they save


def _paged(snap: Snapshot):
    entry = snap.file(DB_PATH)
    if not entry.chunker.startswith("fixed-"):  # every writer stores it page by page; refuse anything else
        raise UnsupportedFormat(f"snapshot {snap.short_id} stores its database as {entry.chunker} chunks, "
                                "not one chunk per page: this snapstore cannot diff it")
    return entry.chunks


def _snapshot_reader(repo: Repository):
    """One reader for both sides: only the blobs the diff reads are looked up (``Repository.lookup``)."""
    return repo.reader(repo.lookup(), keep_frames=KEEP_FRAMES)


def _side(ids: IdList, reader, cache: OrderedDict | None = None, nodes: NodeCache | None = None) -> PageSide:
    return PageSide(ids, lambda pgno, chunk: reader.read(chunk), cache, nodes)


@contextmanager
def snapshot_sides(repo: Repository, a: Snapshot, b: Snapshot) -> Iterator[tuple[PageSide, PageSide, list[int]]]:
    """Both snapshots' databases and the 0-based positions of the pages whose chunk ids differ."""
    ref_a, ref_b = _paged(a), _paged(b)
    with _snapshot_reader(repo) as reader:
        ids_a, ids_b, differing = load_pair(ref_a, ref_b, reader)
        shared: OrderedDict[bytes, bytes] = OrderedDict()
        cached = repo.lookup_cache is not None and not repo.cipher.encrypted
        nodes = NodeCache(repo.lookup_cache.parent.parent / "btree" / f"{repo.config.repo_id}" if cached else None)
        yield _side(ids_a, reader, shared, nodes), _side(ids_b, reader, shared, nodes), differing
        nodes.save()


@contextmanager
def snapshot_side(repo: Repository, snap: Snapshot) -> Iterator[PageSide]:
    ref = _paged(snap)
    with _snapshot_reader(repo) as reader:
        yield _side(IdList(load_list(ref, reader), ref.count), reader)


@contextmanager
def live_side(path: Path, blob_id: Callable[[bytes], bytes]) -> Iterator[PageSide]:
    """The live database under SQLite's read transaction; every page is hashed once (no copy),
    with the repository's ``blob_id`` (keyed in an encrypted one) so ids compare with the snapshot's."""
    from ...sources.sqlite import SQLiteImageReader  # only a live diff reads a database file

    with SQLiteImageReader(path) as image:
        ids = bytearray()
        for page in image.pages(0, image.page_count):
            ids += blob_id(page)
        yield PageSide(IdList(bytes(ids), image.page_count), lambda pgno, chunk: bytes(next(image.pages(pgno - 1, 1))))


class _Schema:
    """Tables of one side: root page, columns, key columns (from sqlite_master)."""

    def __init__(self, side: PageSide, geo: Geometry):
        rows = []
        self.overflow: list[int] = []  # sqlite_master's own overflow pages (long CREATE statements)
        for leaf in btree_pages(1, side.node)[1]:
            for cell in leaf_cells(side.get(leaf), leaf, geo):
                rows.append(decode_record(full_payload(cell, geo, side.get, self.overflow), geo.text_encoding))
        self.btrees = [1] + [r[3] for r in rows if isinstance(r[3], int) and r[3] > 0]
        virtual = [r[1] for r in rows if r[0] == "table" and (r[4] or "").upper().startswith("CREATE VIRTUAL")]
        self.tables: dict[str, dict] = {}
        tables = [(name, root, sql) for kind, name, _, root, sql in (r[:5] for r in rows)
                  if kind == "table" and root and not name.startswith("sqlite_") and sql is not None]
        declared = side.nodes.declared(tuple((name, sql) for name, _, sql in tables))
        for name, root, _ in tables:
            if side.node(root)[0] in (INTERIOR_INDEX, LEAF_INDEX):
                continue  # WITHOUT ROWID (FTS5's own bookkeeping): an index b-tree, not rows
            columns, key = declared[name]
            shadow = any(name.startswith(v + "_") for v in virtual)
            self.tables[name] = {"root": root, "columns": list(columns), "key": None if key is None else list(key),
                                "shadow": shadow}


@functools.lru_cache(maxsize=2)  # both sides of a diff usually have the same schema: asked once
def _declared(tables: tuple[tuple[str, str], ...]) -> dict[str, tuple[tuple[str, ...], tuple[int, ...] | None]]:
    """name -> (columns, key column indexes: () for a rowid alias, None for no key), from the
    CREATE statements as SQLite itself reads them."""
    import sqlite3  # only when no diff asked before (NodeCache)

    out = {}
    mem = sqlite3.connect(":memory:")
    try:
        for name, sql in tables:
            mem.execute(sql)
            info = mem.execute(f'PRAGMA table_info("{name.replace(chr(34), chr(34) * 2)}")').fetchall()
            pk = sorted((r[5], r[0], r[2]) for r in info if r[5])
            rowid_alias = len(pk) == 1 and pk[0][2].upper() == "INTEGER"
            key = () if rowid_alias else tuple(idx for _, idx, _ in pk) if pk else None  # None: no key
            out[name] = (tuple(r[1] for r in info), key)
    finally:
        mem.close()
    return out


class _Side:
    """One side's geometry and the overflow pages read so far (every chain read is recorded,
    and the chains read whole: a walk need not read them again)."""

    def __init__(self, pages: PageSide, geo: Geometry):
        self.pages, self.geo = pages, geo
        self.overflow: list[int] = []
        self.chains_read: set[int] = set()  # first overflow pages of the chains read to their end

    def payload(self, cell: Cell) -> bytes:
        if cell.head:
            self.chains_read.add(cell.head)
        return full_payload(cell, self.geo, self.pages.get, self.overflow)

    def key_values(self, cell: Cell, limit: int) -> list:
        """The first ``limit`` columns, from the part of the record on the leaf page."""
        return decode_record(cell.local, self.geo.text_encoding, limit)

    def summary(self, columns: list[str], cell: Cell) -> Callable[[], str]:
        """The row's summary, its overflow chain read only when the row is shown (and then
        only as far as the summary needs, ``_prefix_summary``)."""
        def make() -> str:
            if cell.head:
                line = _prefix_summary(self, columns, cell)
                if line is not None:
                    return line
            return summarize(columns, decode_record(self.payload(cell), self.geo.text_encoding))
        return make


def _prefix_summary(side: _Side, columns: list[str], cell: Cell) -> str | None:
    """``summarize`` of a row whose payload spills onto overflow pages, from as little of its
    chain as decides it: a row's summary is its first long text column cut to SUMMARY_CHARS,
    and a message of 40 KB needs only the pages up to its first hundred characters (a text
    that may be blank is read further, 4 times more each time).  None for UTF-16 text or a
    record header that does not fit on the leaf: the caller reads the whole row."""
    local = cell.local
    if side.geo.text_encoding != 1:
        return None
    header_len, pos = varint(local, 0)
    if header_len > len(local):
        return None
    where: dict[str, tuple[int, int, int]] = {}  # column -> (serial type, start, length)
    body = header_len
    for name in columns:
        if pos >= header_len:
            break
        t, pos = varint(local, pos)
        if t in (10, 11):
            return None  # reserved: decode_record reports it
        n = (0, 1, 2, 3, 4, 6, 8, 8, 0, 0)[t] if t < 10 else (t - 12) // 2
        where[name] = (t, body, n)
        body += n
    for name in SUMMARY_COLUMNS:
        t, start, n = where.get(name, (0, 0, 0))
        if t < 13 or t % 2 == 0:  # not text (or empty text): summarize would pass it over too
            continue
        step = 1024
        while True:
            need = start + min(n, step)
            raw = full_payload(cell, side.geo, side.pages.get, side.overflow, need)[start:need]
            if len(raw) >= n:  # the whole value is read: decide as summarize does
                text = " ".join(raw.decode("utf-8", "replace").split())
                if not text:
                    break  # blank: the next column
                return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"
            # A prefix: its last character may be a cut multi-byte sequence (the last four are
            # dropped, to be safe); what is left, normalised, starts the value's normalised text.
            line = " ".join(raw.decode("utf-8", "replace")[:-4].split())
            if len(line) > SUMMARY_CHARS:
                return line[:SUMMARY_CHARS - 1] + "…"
            step *= 4
    return None


def _cells(side: _Side, table: dict, leaves: list[int]) -> dict:
    """key -> Cell for the cells of these leaves; for a table without a declared key (whose
    rowids VACUUM may renumber), whole payload -> how many rows hold it."""
    out: dict = {}
    for leaf in leaves:
        for cell in leaf_cells(side.pages.get(leaf), leaf, side.geo):
            if table["key"] is None:
                payload = side.payload(cell)
                out[payload] = out.get(payload, 0) + 1
            elif table["key"]:
                values = side.key_values(cell, max(table["key"]) + 1)
                out[tuple(values[i] for i in table["key"])] = cell
            else:
                out[cell.rowid] = cell
    return out


def _multiset(changes: TableChanges, rows_a: dict, rows_b: dict, ta, tb, sa: _Side, sb: _Side, limit: int) -> None:
    for rows, other, kind, table, side in ((rows_b, rows_a, "added", tb, sb), (rows_a, rows_b, "removed", ta, sa)):
        for payload, n in rows.items():
            for _ in range(n - other.get(payload, 0)):
                changes.note(kind, "-", lambda payload=payload, table=table, side=side: summarize(
                    table["columns"], decode_record(payload, side.geo.text_encoding)), limit)


def diff_sqlite(a: PageSide, b: PageSide, rows: int = 3, positions: list[int] | None = None) -> DiffResult:
    """``positions``: the 0-based pages whose chunk ids differ, if the caller knows them already."""
    geo_a, geo_b = Geometry.from_page1(a.get(1)), Geometry.from_page1(b.get(1))
    schema_a, schema_b = _Schema(a, geo_a), _Schema(b, geo_b)
    if positions is None:
        longer, shorter = sorted((bytes(a.ids), bytes(b.ids)), key=len, reverse=True)
        positions = diff_positions(longer, shorter)
    differing = {pos + 1 for pos in positions}
    leaves = {}
    accounted = []  # per side, the differing pages its schema, freelist and b-trees explain
    for side, schema in ((a, schema_a), (b, schema_b)):
        # Only differing pages are kept: a set of every b-tree page (~100k) is MiBs of fresh memory.
        seen = differing.intersection({1, *schema.overflow} | freelist_pages(side.get(1), side.get))
        per_table = {}
        for root in schema.btrees:
            interior, leaf_pages = btree_pages(root, side.node)
            seen |= differing.intersection(interior)
            seen |= differing.intersection(leaf_pages)
            per_table[root] = leaf_pages
        leaves[id(side)] = per_table
        accounted.append(seen)
    result = _diff_tables(a, b, geo_a, geo_b, schema_a, schema_b, leaves, differing, rows, accounted)
    if result is None:  # a changed page no side can explain: decode everything
        result = _diff_tables(a, b, geo_a, geo_b, schema_a, schema_b, leaves, None, rows, accounted)
    result.read |= {"pages": max(a.page_count, b.page_count), "pages_differing": len(differing)}
    return result


def _chain_pages(side: "_Side", cell: Cell) -> int:
    return -(-(cell.total - len(cell.local)) // (side.geo.usable - 4))


def _walk_chains(walks: list[tuple["_Side", Cell]], left: set[int], walked: set[int], likely_only: bool = False
                 ) -> set[int]:
    """Read overflow chains until the pages in ``left`` are all explained (or every chain is read).

    Most unexplained pages are found in few chains: first those starting on such a page,
    then those that would reach one if their pages were allocated one after another
    (as SQLite usually does), and only then (unless ``likely_only``) the rest.  A chain
    read whole already (a changed row's, compared) is not read again: its pages are known.
    ``walked``: the indexes into ``walks`` done so far."""
    def reaches_left(side: "_Side", cell: Cell, pages: list[int]) -> bool:
        i = bisect.bisect_right(pages, cell.head)
        return i < len(pages) and pages[i] < cell.head + _chain_pages(side, cell)

    tiers = (lambda side, cell, pages: cell.head in left, reaches_left, lambda side, cell, pages: True)
    for wanted in tiers[:2] if likely_only else tiers:
        pages = sorted(left)
        for n, (side, cell) in enumerate(walks):
            if not left:
                return left
            if n in walked or not cell.head or not wanted(side, cell, pages):
                continue
            walked.add(n)
            if cell.head in side.chains_read:
                continue
            before = len(side.overflow)
            side.payload(cell)
            left = left.difference(side.overflow[before:])
    return left


def _diff_tables(a, b, geo_a, geo_b, schema_a, schema_b, leaves, differing, limit, accounted) -> DiffResult | None:
    """Rows whose leaf cells are equal on both sides (same overflow head) are deferred, and the
    overflow chains of added, removed and visibly changed rows are walked only while some
    differing page is left unexplained (module docstring)."""
    result = DiffResult("sqlite")
    sa, sb = _Side(a, geo_a), _Side(b, geo_b)
    deferred: list[tuple[TableChanges, list, object, Cell, Cell]] = []
    walks: list[tuple[_Side, Cell]] = []           # chains that explain pages if read
    shadow_leaves: list[tuple[_Side, int]] = []    # FTS leaves: their overflow chains, likewise
    decoded = 0
    for name in sorted(set(schema_a.tables) | set(schema_b.tables)):
        ta, tb = schema_a.tables.get(name), schema_b.tables.get(name)
        la = leaves[id(a)][ta["root"]] if ta else []
        lb = leaves[id(b)][tb["root"]] if tb else []
        if differing is None or not ta or not tb or ta["columns"] != tb["columns"] or ta["key"] != tb["key"]:
            only_a, only_b = list(la), list(lb)
        elif la == lb:  # the same leaves (most tables, on a day of use): only the differing ones
            only_a = only_b = [p for p in la if p in differing]
        else:
            shared = set(la) & set(lb) - differing
            only_a = [p for p in la if p not in shared]
            only_b = [p for p in lb if p not in shared]
        decoded += len(only_a) + len(only_b)
        if (ta or tb)["shadow"]:  # FTS bookkeeping: not reported
            shadow_leaves += [(sa, leaf) for leaf in only_a] + [(sb, leaf) for leaf in only_b]
            continue
        rows_a = _cells(sa, ta, only_a) if ta else {}
        rows_b = _cells(sb, tb, only_b) if tb else {}
        changes = result.tables[name] = TableChanges()
        if (tb or ta)["key"] is None or (ta and ta["key"] is None):
            _multiset(changes, rows_a, rows_b, ta, tb, sa, sb, limit)
            continue
        columns_b = (tb or ta)["columns"]
        for key, cell in rows_b.items():
            old = rows_a.get(key)
            if old is None:
                changes.note("added", key, sb.summary(columns_b, cell), limit)
                walks.append((sb, cell))
            elif (old.total, old.local, old.head) == (cell.total, cell.local, cell.head) and differing is not None:
                deferred.append((changes, columns_b, key, old, cell))
            elif (old.total, old.local) != (cell.total, cell.local):  # the payloads differ: no need to read them
                changes.note("changed", key, sb.summary(columns_b, cell), limit)
                walks += [(sa, old), (sb, cell)]
            elif sa.payload(old) != sb.payload(cell):  # only the chains can tell
                changes.note("changed", key, sb.summary(columns_b, cell), limit)
        for key, cell in rows_a.items():
            if key not in rows_b:
                changes.note("removed", key, sa.summary(ta["columns"], cell), limit)
                walks.append((sa, cell))
    if differing is not None:
        def unexplained() -> set[int]:
            """Differing pages no side explains (a page beyond a side's end is explained there)."""
            left = differing
            for side, seen in zip((sa, sb), accounted):
                left = {p for p in left if p <= side.pages.page_count} - seen - set(side.overflow)
            return left

        left = unexplained()
        walks.sort(key=lambda walk: (walk[0] is sa, walk[1].head))  # B first, in page order: near pages share payloads
        walked: set[int] = set()
        # The FTS leaves are read for their chains only if the rows' likely chains leave pages unexplained.
        left = _walk_chains(walks, left, walked, likely_only=bool(shadow_leaves))
        if left and shadow_leaves:
            shadow = [(side, cell) for side, leaf in shadow_leaves
                      for cell in overflow_cells(side.pages.get(leaf), leaf, side.geo)]
            walks += sorted(shadow, key=lambda walk: (walk[0] is sa, walk[1].head))
            left = _walk_chains(walks, left, walked)
        if left and deferred:
            for changes, columns, key, old, cell in deferred:
                if sa.payload(old) != sb.payload(cell):
                    changes.note("changed", key, sb.summary(columns, cell), limit)
            deferred = []
            left = unexplained()
        if left:
            return None
    result.read = {"leaf_pages_decoded": decoded, "overflow_pages_read": len(sa.overflow) + len(sb.overflow),
                   "rows_deferred": len(deferred), "fallback_full": differing is None}
    return result
