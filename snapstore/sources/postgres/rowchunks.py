"""Cutting a range's COPY rows into chunks at row boundaries (chunker ``rows-16k``).

FastCDC over a memory table cuts chunks of ~25 KiB that straddle rows, so one
changed row (~33 KiB of text with its embeddings) costs about two new chunks of
its neighbours' bytes as well (measured: 63 KiB of new chunks per changed row on
the benchmark agent).  Cutting at row ends instead, a changed or inserted row
costs its own bytes: rows of 16 KiB or more are chunks of their own, smaller
rows are grouped and a group ends after a row whose CRC says so (content-defined,
so an insert regroups only its neighbourhood) or at 16 KiB; rows over 64 KiB are
cut inside by FastCDC, alone.
"""
from __future__ import annotations

import zlib
from typing import Iterable, Iterator

from pyfastcdc import FastCDC

CHUNKER = "rows-16k"
GROUP_MIN = 4 << 10
GROUP_MAX = 16 << 10
BIG_ROW = 64 << 10
GROUP_CUT_MASK = 7  # after a group reached GROUP_MIN, about one row in eight ends it


def _rows(blocks: Iterable[bytes]) -> Iterator[bytes]:
    pending = b""
    for block in blocks:
        data = pending + block if pending else bytes(block)
        lines = data.split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending


def row_chunks(blocks: Iterable[bytes], cdc: FastCDC) -> Iterator[bytes]:
    """Chunks of whole rows (of one range: the stream ends at a row end)."""
    group = bytearray()
    for row in _rows(blocks):
        if len(row) > BIG_ROW:
            if group:
                yield bytes(group)
                group.clear()
            for chunk in cdc.cut_buf(row):
                yield bytes(chunk.data)
            continue
        group += row
        if len(group) >= GROUP_MAX or (len(group) >= GROUP_MIN and not zlib.crc32(row) & GROUP_CUT_MASK):
            yield bytes(group)
            group.clear()
    if group:
        yield bytes(group)
