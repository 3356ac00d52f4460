"""Point in time: which snapshot ``restore --at TIME`` and ``load_agent(at=TIME)`` read.

One rule for both: the newest snapshot of the agent taken at or before TIME
(``Selection.at``; safety snapshots never count).  The granularity is what was
recorded: every tick of ``snapstore watch`` (its ``--interval``, or a SIGUSR1), or
every backup -- ``snapshots`` shows the covered ranges (lifecycle/coverage.py).
"""
from __future__ import annotations

import dataclasses
from datetime import datetime

from ..errors import UsageError
from ..manifest import Selection


def parse_time(value: str | datetime) -> datetime:
    """'2026-12-01 14:32[:05]' in local time, ISO 8601 with an offset, or a datetime (naive:
    local time); an aware datetime."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"invalid time {value!r}: use 'YYYY-MM-DD HH:MM[:SS]' (local) or ISO 8601 "
                             "with an offset") from None
    else:
        raise UsageError(f"invalid time {value!r}: give a datetime or a string such as '2026-12-01 14:32'")
    return when.astimezone() if when.tzinfo is None else when


def point_in_time(source: str | None, at: str | datetime | None, chosen: Selection) -> tuple[str, Selection]:
    """(what to restore, its selection): ``at`` narrows ``latest`` to snapshots taken at or before it."""
    if at is None:
        if source is None:
            raise UsageError("give what to restore: ID, latest or FOLDER (or --at TIME)")
        return source, chosen
    if source is not None and source.lower() != "latest":
        raise UsageError("--at chooses the snapshot itself: give no ID or FOLDER with it (or 'latest')")
    return "latest", dataclasses.replace(chosen, at=parse_time(at))
