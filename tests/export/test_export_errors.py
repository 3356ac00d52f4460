"""Export refuses bad requests with one line, exit != 0, and changes nothing anywhere."""
from __future__ import annotations


import pytest

from backends import BACKENDS, RepoObjects, repo_location
from helpers import assert_one_line_error, backed_up_agent, ok, run_cli, tree


@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("export-errors")
    repo_path = repo_location(request, request.param, root / "repo")
    agent, _ = backed_up_agent(root, scale=1, seed=61, include_logs=True, repo=repo_path)
    return {"root": root, "agent": agent, "repo_path": repo_path}


def test_unknown_snapshot_id(world, tmp_path):
    before = RepoObjects(world["repo_path"]).state()
    dest = tmp_path / "out"
    assert_one_line_error(run_cli("export", "deadbeef00", dest, repo=world["repo_path"]), "deadbeef00")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == [], "no staging directory may be left behind"
    assert RepoObjects(world["repo_path"]).state() == before


@pytest.mark.parametrize("content", ["file", "hidden-file", "subdirectory"])
def test_destination_not_empty(world, tmp_path, content):
    dest = tmp_path / "out"
    dest.mkdir()
    if content == "file":
        (dest / "notes.txt").write_text("keep me\n")
    elif content == "hidden-file":
        (dest / ".keep").write_text("")
    else:
        (dest / "metadata.json").mkdir()
    before_tree, before_repo = tree(tmp_path), RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("export", "latest", dest, repo=world["repo_path"]), str(dest))
    assert tree(tmp_path) == before_tree, "the destination (and its parent) must be left as they were"
    assert RepoObjects(world["repo_path"]).state() == before_repo


def test_export_into_an_empty_existing_directory_works(world, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    ok(run_cli("export", "latest", dest, repo=world["repo_path"]))
    assert (dest / "metadata.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_destination_parent_is_a_file(world, tmp_path):
    (tmp_path / "plain-file").write_text("x\n")
    before = tree(tmp_path)
    assert_one_line_error(run_cli("export", "latest", tmp_path / "plain-file" / "out", repo=world["repo_path"]),
                          "plain-file")
    assert tree(tmp_path) == before


def test_destination_is_an_existing_file(world, tmp_path):
    dest = tmp_path / "out"
    dest.write_text("keep me\n")
    before = tree(tmp_path)
    assert_one_line_error(run_cli("export", "latest", dest, repo=world["repo_path"]), str(dest))
    assert tree(tmp_path) == before


def test_a_failed_export_leaves_no_hashing_thread_or_open_file(world, tmp_path, monkeypatch):
    import os
    import threading

    from snapstore.errors import SourceError
    from snapstore.export import export_snapshot
    from snapstore.repository import Repository

    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no sqlite3 binary: the dump fails
    with pytest.raises(SourceError, match="sqlite3"):
        export_snapshot(Repository.open(world["repo_path"]), "latest", tmp_path / "out")
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("md5 ")]
    open_deleted = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                    if os.path.exists(f"/proc/self/fd/{fd}") and "(deleted)" in os.readlink(f"/proc/self/fd/{fd}")]
    assert not [p for p in open_deleted if str(tmp_path) in p]


def test_missing_parents_of_the_destination_are_created(world, tmp_path):
    dest = tmp_path / "backups" / "nightly" / "out"
    ok(run_cli("export", "latest", dest, repo=world["repo_path"]))
    assert (dest / "metadata.json").is_file()


def test_a_database_only_snapshot_exports_a_valid_folder(world, tmp_path):
    import json

    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--db", world["agent"].db_path, repo=repo))
    ok(run_cli("export", "latest", tmp_path / "out", repo=repo))
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["backup_info"]["include_config"] is False
    ok(run_cli("verify-folder", tmp_path / "out"))
