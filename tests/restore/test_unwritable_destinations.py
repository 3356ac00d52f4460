"""Destinations that cannot take the data: a full disk under an export or a restore (one line
naming where, exit 1, nothing left behind, nothing changed) and read-only targets (refused,
left alone; a dry run still works).  Needs tmpfs mounts, so root with the right to mount
(skipped otherwise)."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from backends import BACKENDS, repo_location
from helpers import assert_one_line_error, backed_up_agent, run_cli, table_checksums
from snapstore.sample_agent import create_sample_agent


def tmpfs(tmp_path: Path, size: str):
    """A fresh tmpfs of ``size`` under ``tmp_path`` (skips the test where mounting is not allowed)."""
    mount_point = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()[:100]}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    yield from tmpfs(tmp_path, "6m")


@pytest.fixture
def read_only_dir(tmp_path):
    """Made read-only for everyone (root included) by the test, once it holds a database."""
    yield from tmpfs(tmp_path, "64m")


@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request):
    """A database of ~14 MiB backed up once (into a local and an S3 repository)."""
    root = tmp_path_factory.mktemp("disk-full")
    agent, repo_path = backed_up_agent(root, scale=3, seed=13, repo=repo_location(request, request.param, root / "repo"))
    return {"root": root, "agent": agent, "repo_path": repo_path}


def test_export_onto_a_full_disk(world, small_disk):
    dest = small_disk / "nightly" / "2026" / "out"  # parents it creates go again on failure
    result = run_cli("export", "latest", dest, repo=world["repo_path"])
    assert_one_line_error(result, "disk full", str(dest))
    assert result.returncode == 1
    assert list(small_disk.iterdir()) == []


def test_restore_to_a_new_file_on_a_full_disk(world, small_disk):
    result = run_cli("restore", "latest", "--to", small_disk / "new.db", repo=world["repo_path"])
    assert_one_line_error(result, "disk full", str(small_disk / "new.db"), "unchanged")
    assert list(small_disk.iterdir()) == []


def test_restore_over_a_database_on_a_full_disk_leaves_it_as_it_was(world, small_disk, tmp_path):
    small = create_sample_agent(tmp_path / "small", scale=0.1, seed=14)
    target = small_disk / "agent.db"
    shutil.copyfile(small.db_path, target)
    before = table_checksums(target)
    result = run_cli("restore", "latest", "--to", target, repo=world["repo_path"])
    assert_one_line_error(result, "disk full", str(target), "unchanged")
    assert table_checksums(target) == before
    assert [p.name for p in small_disk.iterdir()] == ["agent.db"]


def test_read_only_targets_are_refused_and_left_alone(world, read_only_dir, tmp_path):
    target = read_only_dir / "agent.db"
    shutil.copyfile(world["agent"].db_path, target)
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_dir)], check=True)
    before = target.read_bytes()
    for args in (("restore", "latest", "--to", target),
                 ("restore", "latest", "--to", target, "--memory-type", "episodic"),
                 ("restore", "latest", "--to", read_only_dir / "new.db"),
                 ("export", "latest", read_only_dir / "out")):
        result = run_cli(*args, repo=world["repo_path"])
        assert_one_line_error(result)
        assert result.returncode != 0
    assert target.read_bytes() == before
    assert [p.name for p in read_only_dir.iterdir()] == ["agent.db"]
    # a dry run only reads: it works on a read-only target
    dry = run_cli("restore", "latest", "--to", target, "--dry-run", repo=world["repo_path"])
    assert dry.returncode == 0, dry.stderr
