"""cleanup_old_backups and monitor_backup_sizes touch backup folders only."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from snapstore import AgentWrapper, cleanup_old_backups, monitor_backup_sizes
from snapstore.errors import UsageError

OLD = 1_000_000_000.0  # 2001: older than any cutoff


def age(path: Path, when: float = OLD) -> None:
    os.utime(path, (when, when), follow_symlinks=False)


@pytest.fixture
def backups(home) -> Path:
    """backups/ with old and recent backups among things that are not backups."""
    agent = AgentWrapper("./configs/mirix.yaml")
    root = Path("backups")
    for name in ("old_snapstore", "recent_snapstore"):
        assert agent.save_agent(root / name)["success"]
    mirix = root / "old_mirix_save"  # the folder the real Mirix save_agent writes
    mirix.mkdir()
    (mirix / "agent_config.json").write_text("{}")
    (mirix / "sqlite.db").write_bytes(b"SQLite format 3\x00")
    (root / "old_photos").mkdir()
    (root / "old_photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    (root / "old_fake").mkdir()  # metadata.json that is not a backup's
    (root / "old_fake" / "metadata.json").write_text(json.dumps({"title": "album"}))
    (root / "old_broken").mkdir()
    (root / "old_broken" / "metadata.json").write_text("{not json")
    (root / "old_notes.txt").write_text("keep me")
    (root / ".old_hidden_backup").mkdir()
    (root / ".old_hidden_backup" / "metadata.json").write_text(json.dumps({"backup_info": {}}))
    elsewhere = Path("elsewhere_backup")
    assert agent.save_agent(elsewhere)["success"]
    (root / "old_link").symlink_to(elsewhere.resolve(), target_is_directory=True)
    for name in ("old_snapstore", "old_mirix_save", "old_photos", "old_fake", "old_broken", "old_notes.txt",
                 ".old_hidden_backup", "old_link"):
        age(root / name)
    age(elsewhere)
    return root


def test_cleanup_removes_only_old_backup_folders(backups):
    assert cleanup_old_backups(backups, days_to_keep=7) == 2
    assert sorted(p.name for p in backups.iterdir()) == [
        ".old_hidden_backup", "old_broken", "old_fake", "old_link", "old_notes.txt", "old_photos",
        "recent_snapstore"]
    assert (backups / "old_photos" / "cat.jpg").exists() and (backups / "old_notes.txt").read_text() == "keep me"
    assert Path("elsewhere_backup/metadata.json").is_file()  # a symlink is never followed


def test_cleanup_keeps_everything_within_the_window(backups):
    before = sorted(p.name for p in backups.iterdir())
    assert cleanup_old_backups(backups, days_to_keep=365 * 100) == 0
    assert sorted(p.name for p in backups.iterdir()) == before and len(before) == 9


def test_cleanup_zero_days_removes_every_backup(backups):
    assert cleanup_old_backups(backups, days_to_keep=0) == 3
    assert not (backups / "recent_snapstore").exists()
    assert (backups / "old_photos").exists()


def test_cleanup_of_a_missing_directory_and_bad_arguments(home):
    assert cleanup_old_backups("./no_backups_yet") == 0
    Path("afile").write_text("x")
    with pytest.raises(UsageError):
        cleanup_old_backups("./afile")
    with pytest.raises(UsageError):
        cleanup_old_backups(".", days_to_keep=-1)


def test_monitor_lists_only_backups_oldest_first(backups):
    stats = monitor_backup_sizes(backups)
    assert [s["name"] for s in stats] == ["old_mirix_save", "old_snapstore", "recent_snapstore"]
    by_name = {s["name"]: s for s in stats}
    snap = by_name["recent_snapstore"]
    meta = json.loads((backups / "recent_snapstore" / "metadata.json").read_text())
    files = [p for p in (backups / "recent_snapstore").rglob("*") if p.is_file()]
    assert snap["size_mb"] == sum(p.stat().st_size for p in files) / (1024 * 1024)
    assert snap["kind"] == "snapstore" and by_name["old_mirix_save"]["kind"] == "mirix"
    from datetime import datetime, timezone

    stamp = datetime.fromisoformat(meta["backup_info"]["timestamp"].replace("Z", "+00:00"))
    assert snap["created"] == stamp.astimezone(timezone.utc).isoformat()  # the backup's own time, ISO, not the folder's
    assert datetime.fromisoformat(by_name["old_mirix_save"]["created"]).tzinfo is not None  # ISO for every kind
    assert monitor_backup_sizes("./no_backups_yet") == []
