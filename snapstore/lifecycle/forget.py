"""Applying a forget policy to a repository: group, decide, remove snapshot files.

Only snapshot manifests are removed (through ``Repository.remove_snapshot_file``,
the one place that deletes them), under the exclusive repository lock so no
backup, restore or verify reads a manifest as it goes.  The packs they referenced
stay: freeing unreferenced data is a separate step (prune.py; ``forget --prune``).

Safety snapshots (tag ``pre-restore``, taken by restore before it overwrites) are
kept for ``safety`` (7 days) and then removed, unless the policy names them
(``--tag pre-restore`` or ``--keep-tag pre-restore``): then the policy decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Sequence

from ..errors import UsageError
from ..manifest import SAFETY_TAG, Snapshot, list_snapshots, resolve_snapshot
from ..repository import Repository
from .policy import Decision, Duration, Item, Policy, apply_policy, keep_recent, parse_time

GROUP_FIELDS = ("host", "agent", "tags")
DEFAULT_SAFETY_AGE = Duration(days=7)


def parse_group_by(text: str) -> tuple[str, ...]:
    """``host,agent`` (the default), any subset of host/agent/tags, or ``""`` for one group."""
    fields = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in fields if f not in GROUP_FIELDS]
    if bad:
        raise UsageError(f"--group-by takes host, agent and/or tags, not {', '.join(bad)}")
    return fields


@dataclass
class Filter:
    """Which snapshots forget considers at all (None/empty: any)."""

    host: str | None = None
    agent: str | None = None
    tags: tuple[str, ...] = ()

    def matches(self, snap: Snapshot) -> bool:
        return ((self.host is None or snap.host == self.host) and (self.agent is None or snap.agent == self.agent)
                and all(t in snap.tags for t in self.tags))


@dataclass
class GroupPlan:
    key: dict                     # the group's host/agent/tags values
    kind: str                     # "policy" or "safety"
    decision: Decision


@dataclass
class ForgetPlan:
    groups: list[GroupPlan] = field(default_factory=list)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)

    @property
    def remove_ids(self) -> list[str]:
        return [item.id for g in self.groups for item in g.decision.remove]

    def as_dict(self) -> dict:
        def row(item: Item, reasons: list[str] | None = None) -> dict:
            s = self.snapshots[item.id]
            doc = {"id": s.id, "short_id": s.short_id, "time": s.time, "host": s.host, "agent": s.agent,
                   "tags": s.tags}
            if reasons is not None:
                doc["reasons"] = reasons
            return doc
        return {"groups": [{"group": g.key, "kind": g.kind,
                            "keep": [row(i, r) for i, r in g.decision.keep],
                            "remove": [row(i) for i in g.decision.remove]} for g in self.groups]}


def _item(snap: Snapshot) -> Item:
    return Item(snap.id, parse_time(snap.time), snap.tags)


def _group_key(snap: Snapshot, fields: Sequence[str]) -> tuple:
    return tuple((f, ",".join(sorted(snap.tags)) if f == "tags" else getattr(snap, f)) for f in fields)


def plan_forget(snaps: Iterable[Snapshot], policy: Policy, *, group_by: Sequence[str] = ("host", "agent"),
                selection: Filter = Filter(), safety: Duration = DEFAULT_SAFETY_AGE,
                now: datetime | None = None) -> ForgetPlan:
    """Decide, per group, what the policy keeps; safety snapshots by their own rule."""
    if policy.empty():
        raise UsageError("no policy given: pass --keep-last/--keep-daily/… or snapshot IDs to forget")
    now = now or datetime.now(timezone.utc)
    chosen = [s for s in snaps if selection.matches(s)]
    policy_names_safety = SAFETY_TAG in policy.tags or SAFETY_TAG in selection.tags
    plan = ForgetPlan(snapshots={s.id: s for s in chosen})
    groups: dict[tuple, list[Snapshot]] = {}
    safety_groups: dict[tuple, list[Snapshot]] = {}
    for s in chosen:
        target = safety_groups if SAFETY_TAG in s.tags and not policy_names_safety else groups
        target.setdefault(_group_key(s, group_by), []).append(s)
    for key, members in sorted(groups.items()):
        plan.groups.append(GroupPlan(dict(key), "policy", apply_policy([_item(s) for s in members], policy)))
    for key, members in sorted(safety_groups.items()):
        plan.groups.append(GroupPlan(dict(key), "safety", keep_recent(
            [_item(s) for s in members], safety, now, f"safety snapshot younger than {safety}")))
    return plan


def plan_older_than(snaps: Iterable[Snapshot], age: Duration, now: datetime | None = None) -> ForgetPlan:
    """The API's ``cleanup_old_backups`` on a repository: per host and agent, remove snapshots
    older than ``age`` but always keep the newest one (an agent whose backups stopped keeps
    its last state)."""
    now = now or datetime.now(timezone.utc)
    snaps = list(snaps)
    plan = ForgetPlan(snapshots={s.id: s for s in snaps})
    groups: dict[tuple, list[Snapshot]] = {}
    for s in snaps:
        groups.setdefault(_group_key(s, ("host", "agent")), []).append(s)
    for key, members in sorted(groups.items()):
        decision = keep_recent([_item(s) for s in members], age, now, f"younger than {age}")
        if not decision.keep and decision.remove:
            decision.keep.append((decision.remove.pop(0), ["newest of its agent"]))
        plan.groups.append(GroupPlan(dict(key), "age", decision))
    return plan


def forget_snapshots(repo: Repository, snapshot_ids: Iterable[str]) -> list[str]:
    """Remove these snapshot manifests under the exclusive lock; returns the ids removed."""
    removed = []
    with repo.lock(exclusive=True):
        for sid in snapshot_ids:
            repo.remove_snapshot_file(sid)
            removed.append(sid)
    return removed


def resolve_ids(repo: Repository, refs: Sequence[str]) -> list[Snapshot]:
    """``forget ID…``: every ref must name a snapshot ('latest' included); duplicates once."""
    seen: dict[str, Snapshot] = {}
    for ref in refs:
        snap = resolve_snapshot(repo, ref)
        seen.setdefault(snap.id, snap)
    return list(seen.values())


def plan_for_repository(repo: Repository, policy: Policy, **kwargs) -> ForgetPlan:
    return plan_forget(list_snapshots(repo), policy, **kwargs)
