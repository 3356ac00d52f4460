"""Key-ordered ranges of a table and their fingerprints: what makes PostgreSQL capture incremental.

A table with a one-column primary key is cut into ranges by boundary keys
(``bounds``; range ``i`` holds keys ``bounds[i-1] <= k < bounds[i]``, the first and
last ranges are open).  A range's fingerprint is its row count and the sum of
64-bit hashes of ``(key, xmin)`` (kept as one 64-bit digest): every new row version
(INSERT, UPDATE, even a HOT or no-op update) has a new ``xmin``, and a DELETE drops a pair, so an equal
fingerprint means the range holds the same row versions as in the parent
snapshot.  Reading ``(key, xmin)`` never detoasts a column, so fingerprinting a
table costs a scan of its heap, not of its embeddings; only ranges whose
fingerprint changed are read again with COPY.

Tables without a primary key (or with a composite one) are one range,
fingerprinted by ``(ctid, xmin)`` (or ``(key row, xmin)``) and read whole.
Boundaries are kept from snapshot to snapshot (stable ranges are the point) and
chosen again only when a range has grown past ``REBALANCE`` times its target.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import psycopg

from .layout import TableInfo, quote_ident

RANGE_BYTES = 32 << 10   # target stored size of one range (heap + TOAST); see docs/design.md
RANGE_ROWS = 8           # at most this many rows per range (random-key writes touch 1-(1-p)^rows ranges)...
MAX_RANGES = 20000       # ...unless a table would need more ranges than this
REBALANCE = 4


@dataclass
class RangePlan:
    bounds: list[str]           # boundary keys as text, cast back to the key's type in queries
    target_rows: int            # rows per range when the bounds were chosen
    rows: list[int]             # rows per range in this snapshot
    fingerprints: list[str]     # per range
    ctids: list[str] = field(default_factory=list)  # per range: its rows' ctids, "(p,i)" joined by ",";
                                                    # none for a table that is one range


def ranged_key(table: TableInfo) -> tuple[str, str] | None:
    """(column, type) of the one-column primary key ranges are cut on, or None."""
    if len(table.primary_key) != 1:
        return None
    types = dict(table.columns)
    return table.primary_key[0], types[table.primary_key[0]]


def _order_by(table: TableInfo) -> str:
    return ", ".join(quote_ident(c) for c in table.primary_key)


def fingerprint_expr(table: TableInfo) -> str:
    if table.primary_key:
        if len(table.primary_key) == 1:
            return f"{quote_ident(table.primary_key[0])}::text || '/' || xmin::text"
        return f"ROW({_order_by(table)})::text || '/' || xmin::text"
    return "ctid::text || '/' || xmin::text"


def array_literal(values: list[str]) -> str:
    """A ``text[]`` literal: sent as one string, where psycopg's list adapter spends ~15 µs
    of Python per element (0.4 s for the benchmark agent's 25 000 bounds)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _grouped(table: TableInfo, bounds: list[str], extra: str) -> tuple[str, tuple]:
    """Rows of the table with their range number ``grp`` (and ``extra`` columns), for ranges cut
    by ``bounds``.  The bounds are merged into the key-ordered rows as marker rows and counted
    by a running sum: one sort of the keys, where ``width_bucket(key, bounds)`` would cost a walk
    of the whole bounds array for every row (measured 10x slower at 7500 bounds)."""
    col, typ = ranged_key(table)
    key = quote_ident(col)
    return (f"SELECT {extra} FROM (SELECT *, sum(m::int) OVER (ORDER BY k, m DESC ROWS UNBOUNDED PRECEDING) AS grp "
            f"FROM (SELECT {key} AS k, false AS m, ctid AS c, xmin AS x FROM {table.qualified} "
            f"UNION ALL SELECT b, true, NULL::tid, NULL::xid FROM unnest(%s::text[]::{typ}[]) AS b) u) s "
            f"WHERE NOT m", (array_literal(bounds),))


def fingerprints(conn: psycopg.Connection, table: TableInfo, bounds: list[str]) -> RangePlan:
    """Row count, fingerprint and row ctids of each of the ``len(bounds) + 1`` ranges, in one
    scan (the ctids let the COPY of changed ranges find their rows without a second one);
    ``target_rows`` is left 0 for the caller."""
    if ranged_key(table) and bounds:
        inner, params = _grouped(table, bounds, "grp, c, hashtextextended(k::text || '/' || x::text, 0) AS h")
        query = f"SELECT grp, count(*), sum(h)::text, array_agg(c)::text FROM ({inner}) g GROUP BY grp"
    else:
        query = (f"SELECT 0, count(*), sum(hashtextextended({fingerprint_expr(table)}, 0))::text, '' "
                 f"FROM {table.qualified}")
        params = ()
    counts = [0] * (len(bounds) + 1)
    prints = ["0"] * (len(bounds) + 1)
    ctids = [""] * (len(bounds) + 1)
    for b, n, h, c in conn.execute(query, params).fetchall():
        if n:
            counts[b] = n
            prints[b] = hashlib.blake2b(f"{n}:{h}".encode(), digest_size=8).hexdigest()
            ctids[b] = c[1:-1]
    return RangePlan(bounds, 0, counts, prints, ctids if bounds else [])


def choose_bounds(conn: psycopg.Connection, table: TableInfo, total_rows: int) -> tuple[list[str], int]:
    """Boundary keys giving ranges of about ``RANGE_BYTES`` each, and the rows per range."""
    key = ranged_key(table)
    if key is None or total_rows == 0:
        return [], max(total_rows, 1)
    size = conn.execute("SELECT pg_table_size(%s::regclass)", (table.qualified,)).fetchone()[0]
    per_range = max(1, min(math.ceil(RANGE_BYTES * total_rows / max(size, 1)), RANGE_ROWS),
                    math.ceil(total_rows / MAX_RANGES))
    if per_range >= total_rows:
        return [], per_range
    col = quote_ident(key[0])
    bounds = [r[0] for r in conn.execute(
        f"SELECT k::text FROM (SELECT {col} AS k, row_number() OVER (ORDER BY {col}) AS rn "
        f"FROM {table.qualified}) s WHERE rn > 1 AND (rn - 1) %% %s = 0 ORDER BY rn", (per_range,))]
    return bounds, per_range


def plan_ranges(conn: psycopg.Connection, table: TableInfo, parent: TableInfo | None) -> tuple[RangePlan, bool]:
    """This snapshot's ranges, and whether they are the parent's (same bounds, comparable prints)."""
    prev = parent.ranges if parent is not None and parent.columns == table.columns \
        and parent.primary_key == table.primary_key else {}
    if prev and "bounds" in prev:
        plan = fingerprints(conn, table, prev["bounds"])
        if max(plan.rows) <= REBALANCE * prev["target_rows"] or ranged_key(table) is None:
            plan.target_rows = prev["target_rows"]
            return plan, True
    total = conn.execute(f"SELECT count(*) FROM {table.qualified}").fetchone()[0]
    bounds, per_range = choose_bounds(conn, table, total)
    plan = fingerprints(conn, table, bounds)
    plan.target_rows = per_range
    return plan, False


def range_query(table: TableInfo, ctids: list[str] | None) -> tuple[str, tuple]:
    """``COPY (SELECT …) TO STDOUT`` in key order of the rows at ``ctids`` (the ranges'
    entries of ``RangePlan.ctids``; ``None``: every row), in one statement: a TID scan (in
    this snapshot a row version stays where it is), so only those rows are detoasted and sent.
    A table without a key is read whole in physical order, as pg_dump reads it."""
    cols = table.column_list()
    if not table.primary_key:
        return f"COPY {table.qualified} ({cols}) TO STDOUT", ()
    cond, params = "", ()
    if ctids is not None:
        cond, params = " WHERE ctid = ANY(%s::tid[])", ("{" + ",".join(c for c in ctids if c) + "}",)
    return (f"COPY (SELECT {cols} FROM {table.qualified}{cond} ORDER BY {_order_by(table)}) TO STDOUT", params)
