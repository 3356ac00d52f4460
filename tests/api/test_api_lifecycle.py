"""cleanup_old_backups and monitor_backup_sizes on a repository's snapshots and on a directory of
exported folders, where only snapstore exports are ever removed (decoys stay)."""
import json
import os
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from helpers import backed_up_agent, ok, run_cli
from snapstore import cleanup_old_backups, monitor_backup_sizes
from snapstore.manifest import list_snapshots, save_snapshot
from snapstore.repository import Repository


def test_cleanup_and_monitor_on_a_repository(tmp_path, repo_url):
    _, repo_path = backed_up_agent(tmp_path, scale=0.05, seed=1, repo=repo_url)
    repo = Repository.open(repo_path)
    base = list_snapshots(repo)[0]
    now = datetime.now(timezone.utc)
    made = {}
    for agent, ages in (("alice", (1, 5, 9, 20)), ("stale", (30, 40))):
        for days in ages:
            made[(agent, days)] = save_snapshot(repo, replace(
                base, agent=agent, time=(now - timedelta(days=days)).isoformat(), id=""))
    assert cleanup_old_backups(repo_path, days_to_keep=7) == 3
    left = set(Repository.open(repo_path).snapshot_ids())
    # alice keeps 1 and 5 days old; the stale agent keeps its newest; the real backup (now) stays
    assert left == {base.id, made[("alice", 1)], made[("alice", 5)], made[("stale", 30)]}
    ok(run_cli("verify", repo=repo_path))
    stats = monitor_backup_sizes(repo_path)
    assert [s["name"] for s in stats] == [s.short_id for s in list_snapshots(Repository.open(repo_path))]
    assert all(s["kind"] == "snapshot" and s["size_mb"] > 0 for s in stats)
    assert stats[0]["created"] < stats[-1]["created"]


def test_cleanup_on_folders_removes_only_old_snapstore_exports(tmp_path):
    _, repo_path = backed_up_agent(tmp_path, scale=0.05, seed=2)
    backups = tmp_path / "backups"
    for name in ("old_export", "new_export"):
        ok(run_cli("export", "latest", backups / name, repo=repo_path))
    decoys = {
        "not_ours": {"metadata.json": json.dumps({"something": "else"})},
        "fake_info": {"metadata.json": json.dumps({"backup_info": "a string, not ours"})},
        "photos": {"a.jpg": "jpeg bytes"},
    }
    for name, files in decoys.items():
        (backups / name).mkdir()
        for rel, text in files.items():
            (backups / name / rel).write_text(text)
    (backups / "notes.txt").write_text("keep me")
    old = time.time() - 40 * 86400
    for name in ("old_export", *decoys, "notes.txt"):
        os.utime(backups / name, (old, old))
    assert cleanup_old_backups(backups, days_to_keep=7) == 1
    assert sorted(p.name for p in backups.iterdir()) == ["fake_info", "new_export", "not_ours", "notes.txt",
                                                         "photos"]
    assert (backups / "photos" / "a.jpg").read_text() == "jpeg bytes"
    assert [b["name"] for b in monitor_backup_sizes(backups)] == ["new_export"]
    assert cleanup_old_backups(tmp_path / "missing", days_to_keep=1) == 0
