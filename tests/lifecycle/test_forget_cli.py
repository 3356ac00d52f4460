"""snapstore forget through the CLI on a repository of snapshots with chosen times, hosts and agents."""
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from snapstore.manifest import list_snapshots, save_snapshot
from snapstore.repository import Repository
from helpers import assert_one_line_error, backed_up_agent, cli_env, ok, run_cli

NOW = datetime.now(timezone.utc)


def _at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat(timespec="microseconds")


def history(tmp_path, repo_url):
    """One real backup, copied as snapshots of two agents on two hosts over ten days, plus
    safety snapshots 2 and 9 days old.  Returns (repo path, {label: id})."""
    _, repo_path = backed_up_agent(tmp_path, scale=0.05, seed=3, repo=repo_url)
    repo = Repository.open(repo_path)
    base = list_snapshots(repo)[0]
    ids = {}
    for day in range(10):
        for agent, host in (("alice", "h1"), ("bob", "h1"), ("alice", "h2")):
            snap = replace(base, time=_at(day + 0.5), agent=agent, host=host, tags=[], id="")
            ids[f"{agent}@{host}-{day}"] = save_snapshot(repo, snap)
    for day in (2, 9):
        ids[f"safety-{day}"] = save_snapshot(repo, replace(base, time=_at(day), agent="alice", host="h1",
                                                             tags=["pre-restore"], id=""))
    repo.remove_snapshot_file(base.id)
    return repo_path, ids


def test_dry_run_lists_removals_and_reasons_and_changes_nothing(tmp_path, repo_url):
    repo_path, ids = history(tmp_path, repo_url)
    before = sorted(Repository.open(repo_path).snapshot_ids())
    out = ok(run_cli("forget", "--keep-last", "2", "--keep-daily", "4", "--dry-run", "--json", repo=repo_path))
    doc = json.loads(out.stdout)
    assert sorted(Repository.open(repo_path).snapshot_ids()) == before
    groups = {(g["group"].get("host"), g["group"].get("agent"), g["kind"]): g for g in doc["groups"]}
    assert set(groups) == {("h1", "alice", "policy"), ("h1", "bob", "policy"), ("h2", "alice", "policy"),
                           ("h1", "alice", "safety")}
    alice = groups[("h1", "alice", "policy")]
    # one snapshot a day: last 2 and daily 4 keep days 0..3, each with its rules
    assert {s["id"] for s in alice["keep"]} == {ids[f"alice@h1-{d}"] for d in range(4)}
    reasons = {s["id"]: s["reasons"] for s in alice["keep"]}
    assert reasons[ids["alice@h1-0"]] == ["1 of last 2", "daily snapshot"]
    assert reasons[ids["alice@h1-3"]] == ["daily snapshot"]
    safety = groups[("h1", "alice", "safety")]
    assert [s["id"] for s in safety["keep"]] == [ids["safety-2"]]
    assert [s["id"] for s in safety["remove"]] == [ids["safety-9"]]
    assert len(doc["remove"]) == 3 * 6 + 1 and doc["removed"] == 0
    text = ok(run_cli("forget", "--keep-last", "2", "--keep-daily", "4", "-n", repo=repo_path)).stdout
    assert "would remove" in text and "(1 of last 2; daily snapshot)" in text and "nothing changed" in text


def test_forget_removes_only_snapshot_files_and_filters_by_host_and_agent(tmp_path, repo_url):
    repo_path, ids = history(tmp_path, repo_url)
    packs_before = Repository.open(repo_path).pack_names()
    out = ok(run_cli("forget", "--keep-last", "1", "--host", "h1", "--agent", "bob", repo=repo_path)).stdout
    assert "9 snapshots removed; the data only they used stays in the repository" in out
    left = set(Repository.open(repo_path).snapshot_ids())
    assert left == set(ids.values()) - {ids[f"bob@h1-{d}"] for d in range(1, 10)}
    assert Repository.open(repo_path).pack_names() == packs_before
    ok(run_cli("verify", repo=repo_path))
    # the kept snapshots still restore
    ok(run_cli("dump", ids["bob@h1-0"][:12], "database/sqlite.db", "--out", tmp_path / "db", repo=repo_path))


def test_group_by_nothing_and_keep_within_and_tags(tmp_path, repo_url):
    repo_path, ids = history(tmp_path, repo_url)
    doc = json.loads(ok(run_cli("forget", "--keep-within", "2d", "--group-by", "", "--dry-run", "--json",
                                repo=repo_path)).stdout)
    policy = [g for g in doc["groups"] if g["kind"] == "policy"]
    assert len(policy) == 1 and policy[0]["group"] == {}
    # within 2 days of the newest (0.5 days ago): days 0, 1, 2 of the three series
    assert {s["id"] for s in policy[0]["keep"]} == {ids[f"{a}-{d}"] for a in ("alice@h1", "bob@h1", "alice@h2")
                                                    for d in range(3)}
    # a policy that names pre-restore decides for safety snapshots too
    doc = json.loads(ok(run_cli("forget", "--tag", "pre-restore", "--keep-last", "1", "--json",
                                repo=repo_path)).stdout)
    assert [s["id"] for s in doc["remove"]] == [ids["safety-9"]] and doc["removed"] == 1


def test_forget_by_id_and_bad_input(tmp_path, repo_url):
    repo_path, ids = history(tmp_path, repo_url)
    ok(run_cli("forget", ids["alice@h2-5"][:10], ids["alice@h2-6"], repo=repo_path))
    assert not {ids["alice@h2-5"], ids["alice@h2-6"]} & set(Repository.open(repo_path).snapshot_ids())
    for args, mention in ((["forget"], "no policy given"),
                          (["forget", "--keep-within", "7w"], "invalid duration"),
                          (["forget", "--keep-last", "1", "--group-by", "colour"], "--group-by"),
                          (["forget", "--keep-last", "-3"], "--keep-last"),
                          (["forget", "abcdef12"], "no snapshot"),
                          (["forget", ids["alice@h1-1"], "--keep-last", "1"], "not both")):
        result = run_cli(*args, repo=repo_path)
        assert result.returncode == 2, (args, result.stderr)
        assert_one_line_error(result, mention)
    assert len(Repository.open(repo_path).snapshot_ids()) == len(ids) - 2


def test_forget_waits_for_the_exclusive_lock(tmp_path, repo_url):
    repo_path, _ = history(tmp_path, repo_url)
    repo = Repository.open(repo_path)
    with repo.lock():  # a reader (backup, export, verify) holds the shared lock
        result = run_cli("forget", "--keep-last", "1", repo=repo_path, env=cli_env(SNAPSTORE_LOCK_WAIT="0"))
    assert result.returncode == 11
    assert_one_line_error(result, "exclusive")
    assert len(repo.snapshot_ids()) == 32
