"""Cutting one COPY stream into per-range streams.

COPY TEXT ends every row with exactly one ``\\n`` (newlines inside values are
escaped), so a stream of ranges read with one ``COPY … ORDER BY key`` splits at
row counts the fingerprint query already gave: no key is parsed or compared here.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from ...errors import SourceError


class RowSplitter:
    """Yields, for each expected row count in turn, an iterator over exactly that many rows."""

    def __init__(self, blocks: Iterable[bytes], label: str):
        self._blocks = iter(blocks)
        self._pending = b""
        self.label = label
        self.bytes_read = 0

    def _next_block(self) -> bytes | None:
        block = next(self._blocks, None)
        if block is not None:
            block = bytes(block)
            self.bytes_read += len(block)
        return block

    def rows(self, count: int) -> Iterator[bytes]:
        """The next ``count`` rows, as blocks (the last ends at a row boundary)."""
        left = count
        while left:
            block = self._pending or self._next_block()
            self._pending = b""
            if block is None:
                raise SourceError(f"COPY of {self.label} ended {left} rows early; the table changed shape "
                                  "under the snapshot? retry the backup")
            lines = block.count(b"\n")
            if lines < left:
                left -= lines
                yield block
                continue
            cut = -1
            for _ in range(left):
                cut = block.index(b"\n", cut + 1)
            self._pending = block[cut + 1:]
            left = 0
            yield block[:cut + 1]

    def finish(self) -> None:
        """Every row was taken: anything left means the counts and the data disagree."""
        rest = self._pending or self._next_block()
        while rest is not None and not rest:
            rest = self._next_block()
        if rest:
            raise SourceError(f"COPY of {self.label} returned more rows than its fingerprint counted; "
                              "retry the backup")
