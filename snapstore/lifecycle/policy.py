"""restic's forget policy, as a pure function: snapshots + policy + now -> keep/remove with reasons.

Semantics follow ``restic forget`` (so a policy written for restic means the same here):

* snapshots are walked newest first; ``--keep-last N`` keeps the N newest;
* ``--keep-hourly/daily/weekly/monthly/yearly N`` keep the newest snapshot of each of
  the N most recent hours/days/ISO weeks/months/years *that have a snapshot* (a bucket
  with no snapshot does not use up one of the N);
* ``--keep-within D`` keeps every snapshot within D of the newest snapshot of the
  group (not of "now": a machine whose backups stopped keeps its last ones);
* ``--keep-tag T`` keeps every snapshot carrying tag T.

Buckets are computed on UTC times (snapshot times are stored in UTC).  Nothing here
touches a repository: forget.py applies the decisions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from ..errors import UsageError

UNLIMITED = -1


@dataclass(frozen=True)
class Duration:
    """restic's ``1y2m3d4h``: calendar years, months, days and hours (months are calendar months)."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    def before(self, t: datetime) -> datetime:
        """``t`` minus this duration, months and years on the calendar (day clamped to the month)."""
        month0 = t.month - 1 - self.months - 12 * self.years
        year, month = t.year + month0 // 12, month0 % 12 + 1
        day = min(t.day, _days_in_month(year, month))
        return t.replace(year=year, month=month, day=day) - timedelta(days=self.days, hours=self.hours)

    def __str__(self) -> str:
        parts = [f"{v}{u}" for v, u in ((self.years, "y"), (self.months, "m"), (self.days, "d"),
                                          (self.hours, "h")) if v]
        return "".join(parts) or "0h"


def _days_in_month(year: int, month: int) -> int:
    nxt = datetime(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


_DURATION = re.compile(r"(\d+)([ymdh])")


def parse_duration(text: str) -> Duration:
    """``7d``, ``36h``, ``2m`` (months), ``1y6m``; a one-line error for anything else."""
    s = text.strip().lower()
    parts = _DURATION.findall(s)
    if not s or "".join(n + u for n, u in parts) != s or len({u for _, u in parts}) != len(parts):
        raise UsageError(f"invalid duration {text!r}: use a number with y, m (months), d or h, e.g. 7d or 1y6m")
    values = {u: int(n) for n, u in parts}
    return Duration(values.get("y", 0), values.get("m", 0), values.get("d", 0), values.get("h", 0))


# Bucket keys exactly as restic computes them (ISO year and week for weekly).
BUCKETS: dict[str, Callable[[datetime], int]] = {
    "hourly": lambda t: ((t.year * 100 + t.month) * 100 + t.day) * 100 + t.hour,
    "daily": lambda t: (t.year * 100 + t.month) * 100 + t.day,
    "weekly": lambda t: t.isocalendar()[0] * 100 + t.isocalendar()[1],
    "monthly": lambda t: t.year * 100 + t.month,
    "yearly": lambda t: t.year,
}


@dataclass
class Policy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Duration | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("last", *BUCKETS):
            n = getattr(self, name)
            if isinstance(n, bool) or not isinstance(n, int) or n < UNLIMITED:
                raise UsageError(f"--keep-{name} must be a count >= 0 (or -1 for unlimited), not {n!r}")

    def empty(self) -> bool:
        return not (self.last or any(getattr(self, b) for b in BUCKETS) or self.within or self.tags)

    def describe(self) -> str:
        parts = [f"keep-{name} {getattr(self, name)}" for name in ("last", *BUCKETS) if getattr(self, name)]
        if self.within:
            parts.append(f"keep-within {self.within}")
        parts += [f"keep-tag {t}" for t in self.tags]
        return ", ".join(parts) or "no policy"


class Item:
    """What the policy needs of a snapshot: its time, tags and an identity."""

    def __init__(self, ident: str, time: datetime, tags: Sequence[str] = ()):
        self.id, self.time, self.tags = ident, time, tuple(tags)

    def __repr__(self) -> str:
        return f"Item({self.id!r}, {self.time.isoformat()})"


@dataclass
class Decision:
    keep: list[tuple[Item, list[str]]] = field(default_factory=list)  # (item, reasons), newest first
    remove: list[Item] = field(default_factory=list)                   # newest first


def parse_time(stamp: str) -> datetime:
    t = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def apply_policy(items: Sequence[Item], policy: Policy) -> Decision:
    """Split one group of snapshots into kept (with the rules that keep each) and removed."""
    ordered = sorted(items, key=lambda i: (i.time, i.id), reverse=True)
    counts = {name: getattr(policy, name) for name in BUCKETS}
    last_key: dict[str, int | None] = {name: None for name in BUCKETS}
    cutoff = policy.within.before(ordered[0].time) if policy.within and ordered else None
    decision = Decision()
    for nr, item in enumerate(ordered):
        reasons = []
        if policy.last == UNLIMITED or nr < policy.last:
            reasons.append("last snapshot" if policy.last == 1 else f"{nr + 1} of last {policy.last}"
                           if policy.last != UNLIMITED else "last (unlimited)")
        for name, bucket in BUCKETS.items():
            if counts[name] == 0:
                continue
            key = bucket(item.time)
            if key != last_key[name]:
                last_key[name] = key
                reasons.append(f"{name} snapshot")
                if counts[name] > 0:
                    counts[name] -= 1
        if cutoff is not None and item.time >= cutoff:
            reasons.append(f"within {policy.within} of the newest")
        reasons += [f"tag {t}" for t in policy.tags if t in item.tags]
        if reasons:
            decision.keep.append((item, reasons))
        else:
            decision.remove.append(item)
    return decision


def keep_recent(items: Sequence[Item], age: Duration, now: datetime, reason: str) -> Decision:
    """Keep what is younger than ``age`` measured from ``now`` (the safety snapshots' default)."""
    cutoff = age.before(now)
    decision = Decision()
    for item in sorted(items, key=lambda i: (i.time, i.id), reverse=True):
        if item.time >= cutoff:
            decision.keep.append((item, [reason]))
        else:
            decision.remove.append(item)
    return decision
