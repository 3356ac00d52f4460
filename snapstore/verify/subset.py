"""``--read-subset``: which packs a partial full check reads.

``K/N`` assigns each pack to one of N slices by its id (the first 8 bytes of a
BLAKE3 hash, modulo N), so the slice of a pack never changes as packs are added
or pruned, and running 1/N ... N/N (one a day) reads every pack exactly once.
``P%`` picks a random share, for spot checks.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Iterable

from ..errors import UsageError

_SLICE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class ReadSubset:
    text: str
    slice: tuple[int, int] | None = None  # (K, N), 1-based
    percent: float | None = None

    def contains(self, pack_id: bytes) -> bool:
        """For K/N: whether the pack belongs to slice K."""
        assert self.slice is not None
        k, n = self.slice
        return int.from_bytes(pack_id[:8], "big") % n == k - 1

    def select(self, pack_ids: Iterable[bytes], rng: random.Random | None = None) -> list[bytes]:
        ids = sorted(pack_ids)
        if self.slice is not None:
            return [pid for pid in ids if self.contains(pid)]
        count = min(len(ids), math.ceil(len(ids) * self.percent / 100))
        return sorted((rng or random.SystemRandom()).sample(ids, count))


def parse_read_subset(text: str | ReadSubset) -> ReadSubset:
    if isinstance(text, ReadSubset):
        return text
    m = _SLICE.match(text)
    if m:
        k, n = int(m.group(1)), int(m.group(2))
        if not 1 <= k <= n:
            raise UsageError(f"--read-subset {text}: need 1 <= K <= N in K/N")
        return ReadSubset(text.strip(), slice=(k, n))
    m = _PERCENT.match(text)
    if m:
        pct = float(m.group(1))
        if not 0 < pct <= 100:
            raise UsageError(f"--read-subset {text}: the share must be above 0% and at most 100%")
        return ReadSubset(text.strip(), percent=pct)
    raise UsageError(f"--read-subset {text!r}: expected K/N (e.g. 1/7) or a share P% (e.g. 10%)")
