"""restic's forget policy on a synthetic calendar, against expectations computed by hand."""
from datetime import datetime, timedelta, timezone

import pytest

from snapstore.errors import UsageError
from snapstore.lifecycle.policy import Duration, Item, Policy, apply_policy, keep_recent, parse_duration


def t(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)


# A hand-made calendar (UTC).  Gaps on purpose: no snapshot on 2026-03-04, none in 2026-02,
# two in the same hour, a week boundary (Sun 2026-03-08 / Mon 2026-03-09), a year boundary.
CALENDAR = [
    "2024-06-01T12:00", "2025-12-31T23:00", "2026-01-01T01:00", "2026-01-15T10:00",
    "2026-03-01T09:00", "2026-03-02T09:00", "2026-03-03T09:00", "2026-03-05T09:00",
    "2026-03-08T22:00", "2026-03-09T08:00", "2026-03-09T08:30", "2026-03-09T18:00",
]
ITEMS = [Item(s, t(s)) for s in CALENDAR]


def kept(policy: Policy, items=ITEMS) -> list[str]:
    return sorted(i.id for i, _ in apply_policy(items, policy).keep)


def test_keep_last_keeps_the_newest_n():
    assert kept(Policy(last=3)) == ["2026-03-09T08:00", "2026-03-09T08:30", "2026-03-09T18:00"]


def test_hourly_takes_the_newest_of_each_hour_and_empty_hours_do_not_count():
    # hours with a snapshot, newest first: 03-09 18h, 03-09 08h (08:30 is its newest), 03-08 22h
    assert kept(Policy(hourly=3)) == ["2026-03-08T22:00", "2026-03-09T08:30", "2026-03-09T18:00"]


def test_daily_skips_days_without_snapshots():
    # days with one: 03-09 (18:00), 03-08, 03-05, 03-03 — 03-04 had none and does not count
    assert kept(Policy(daily=4)) == ["2026-03-03T09:00", "2026-03-05T09:00", "2026-03-08T22:00",
                                     "2026-03-09T18:00"]


def test_weekly_uses_iso_weeks():
    # ISO 2026-W11 (Mon 03-09..): 18:00; W10 (03-02..03-08): Sunday 22:00; W09 (02-23..03-01): 03-01
    assert kept(Policy(weekly=3)) == ["2026-03-01T09:00", "2026-03-08T22:00", "2026-03-09T18:00"]


def test_monthly_and_yearly_skip_empty_buckets():
    # months: 2026-03, (no February), 2026-01 -> its newest is 01-15, 2025-12
    assert kept(Policy(monthly=3)) == ["2025-12-31T23:00", "2026-01-15T10:00", "2026-03-09T18:00"]
    # years: 2026, 2025, (no snapshot in 2024? there is one) 2024
    assert kept(Policy(yearly=5)) == ["2024-06-01T12:00", "2025-12-31T23:00", "2026-03-09T18:00"]


def test_iso_week_spanning_a_year_boundary_is_one_bucket():
    # 2025-12-31 (Wed) and 2026-01-01 (Thu) are both in ISO week 2026-W01: only the newer is kept
    items = [Item(s, t(s)) for s in ("2025-12-31T23:00", "2026-01-01T01:00")]
    assert kept(Policy(weekly=5), items) == ["2026-01-01T01:00"]


def test_rules_combine_and_each_kept_snapshot_names_its_rules():
    decision = apply_policy(ITEMS, Policy(last=1, daily=2, monthly=2, yearly=1))
    reasons = {i.id: r for i, r in decision.keep}
    assert reasons == {
        "2026-03-09T18:00": ["last snapshot", "daily snapshot", "monthly snapshot", "yearly snapshot"],
        "2026-03-08T22:00": ["daily snapshot"],
        "2026-01-15T10:00": ["monthly snapshot"],
    }
    assert len(decision.remove) == len(ITEMS) - 3


def test_keep_within_is_measured_from_the_newest_snapshot():
    # newest 03-09 18:00 minus 1d = 03-08 18:00: 03-08 22:00 and the three of 03-09
    assert kept(Policy(within=parse_duration("1d"))) == [
        "2026-03-08T22:00", "2026-03-09T08:00", "2026-03-09T08:30", "2026-03-09T18:00"]
    # 2m: calendar months back to 2026-01-09 18:00
    assert kept(Policy(within=parse_duration("2m")))[0] == "2026-01-15T10:00"
    assert len(kept(Policy(within=parse_duration("10h")))) == 3


def test_keep_tag_and_unlimited():
    items = [Item("a", t("2026-01-01T00:00"), ["keep"]), Item("b", t("2026-01-02T00:00")),
             Item("c", t("2026-01-03T00:00"))]
    assert kept(Policy(last=1, tags=("keep",)), items) == ["a", "c"]
    assert kept(Policy(daily=-1), items) == ["a", "b", "c"]


def test_durations_parse_like_restic():
    assert parse_duration("7d") == Duration(days=7)
    assert parse_duration("1y6m") == Duration(years=1, months=6)
    assert parse_duration("36h") == Duration(hours=36)
    assert Duration(months=1).before(t("2026-03-31T12:00")) == t("2026-02-28T12:00")
    for bad in ("", "7", "7w", "d7", "1d1d", "-1d"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_negative_counts_other_than_unlimited_are_refused():
    with pytest.raises(UsageError):
        Policy(last=-2)


def test_safety_rule_keeps_by_age_from_now():
    now = t("2026-03-10T00:00")
    items = [Item("old", now - timedelta(days=8)), Item("new", now - timedelta(days=6))]
    decision = keep_recent(items, Duration(days=7), now, "safety")
    assert [i.id for i, _ in decision.keep] == ["new"] and [i.id for i in decision.remove] == ["old"]
