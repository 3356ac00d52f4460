"""Which times a point-in-time restore can reach, and how finely (``snapstore snapshots``).

``restore --at TIME`` restores the newest snapshot at or before TIME, so what it brings
back is only as fresh as the snapshots around TIME.  Snapshots written by one
``snapstore watch`` process share a run id (``database.watch.run``, watch.py); watch
checks every ``interval_s`` and writes a snapshot whenever something changed, so between
the first and the last snapshot of a run every moment is reached to within one interval
(no snapshot in between means nothing changed).  Anywhere else -- before the first run,
between runs (watch not running, or killed), after the last -- only the moments of single
snapshots (plain backups) are reached: those spans are gaps.  A run whose last snapshot is
not ``final`` ended without one (killed) or is still running: its coverage ends at that
snapshot.  Full reads inside a run (a WAL gap watch could not follow) lose no coverage --
every snapshot is a whole state -- and are listed as notes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby

from ..manifest import SAFETY_TAG, Snapshot
from ..sources.sqlite_follow import FIRST_SNAPSHOT


@dataclass
class Span:
    """One stretch of an agent's timeline: a watch run (covered) or a gap between runs."""

    kind: str  # "watch" | "gap"
    agent: str
    host: str
    start: str  # ISO times of the snapshots that bound it
    end: str
    snapshots: int = 0  # snapshots inside (a gap's: plain backups, each one point in time)
    run: str | None = None
    interval_s: float | None = None  # a run's granularity (None: ticks on demand only)
    stopped: bool = False  # the run's last snapshot was taken at a clean exit
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "agent": self.agent, "host": self.host, "start": self.start, "end": self.end,
                "snapshots": self.snapshots, "run": self.run, "interval_s": self.interval_s,
                "granularity": self.granularity, "stopped": self.stopped, "notes": self.notes}

    @property
    def granularity(self) -> str:
        if self.kind == "gap":
            return "each snapshot" if self.snapshots else "none"
        return f"every {self.interval_s:g} s" if self.interval_s else "each snapshot (ticks on demand)"


def _watch(snap: Snapshot) -> dict | None:
    run = snap.database.get("watch") if isinstance(snap.database, dict) else None
    return run if isinstance(run, dict) and run.get("run") else None


def coverage(snaps: list[Snapshot]) -> list[Span]:
    """The spans of each agent (and host), oldest first; safety snapshots never count."""
    spans: list[Span] = []
    useful = sorted((s for s in snaps if SAFETY_TAG not in s.tags), key=lambda s: (s.agent, s.host, s.time))
    for (agent, host), group in groupby(useful, key=lambda s: (s.agent, s.host)):
        spans += _agent_spans(agent, host, list(group))
    return spans


def _agent_spans(agent: str, host: str, snaps: list[Snapshot]) -> list[Span]:
    runs: dict[str, Span] = {}
    for snap in snaps:
        run = _watch(snap)
        if run is None:
            continue
        span = runs.get(run["run"])
        if span is None:
            span = runs[run["run"]] = Span("watch", agent, host, snap.time, snap.time, run=run["run"],
                                           interval_s=run.get("interval_s"))
        span.end, span.snapshots, span.stopped = snap.time, span.snapshots + 1, bool(run.get("final"))
        reason = snap.database.get("full_reason")
        if snap.database.get("capture") == "full" and reason and reason != FIRST_SNAPSHOT:
            span.notes.append(f"full read at {snap.time}: {reason}")
    for span in runs.values():
        if not span.stopped:
            span.notes.append("no final snapshot: watch was killed or is still running")
    ordered = sorted(runs.values(), key=lambda s: s.start)
    spans: list[Span] = []
    edge = snaps[0].time  # where the next gap starts
    for span in ordered:
        if span.start > edge:
            spans.append(_gap(agent, host, edge, span.start, snaps))
        spans.append(span)
        edge = max(edge, span.end)
    if snaps[-1].time > edge or not ordered:
        spans.append(_gap(agent, host, edge, snaps[-1].time, snaps))
    return spans


def _gap(agent: str, host: str, start: str, end: str, snaps: list[Snapshot]) -> Span:
    inside = [s for s in snaps if start <= s.time <= end and _watch(s) is None]
    return Span("gap", agent, host, start, end, snapshots=len(inside),
                notes=["watch not running: only the moments of these snapshots are reached"])


def span_length(span: Span) -> float:
    return (datetime.fromisoformat(span.end) - datetime.fromisoformat(span.start)).total_seconds()
