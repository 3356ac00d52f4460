"""Restore refuses bad requests with one line, exit != 0, and changes neither repository nor target."""
from __future__ import annotations

import json
import shutil

import pytest

from backends import BACKENDS, RepoObjects, repo_location
from helpers import assert_one_line_error, backed_up_agent, ok, run_cli, tree


@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("restore-errors")
    repo_path = repo_location(request, request.param, root / "repo")
    agent, _ = backed_up_agent(root, scale=1, seed=71, include_logs=True, repo=repo_path)
    folder = root / "folder"
    ok(run_cli("export", "latest", folder, repo=repo_path))
    more = {name: repo_location(request, request.param, root / name) for name in ("repo-no-logs", "repo-no-logs-2")}
    return {"root": root, "agent": agent, "repo_path": repo_path, "folder": folder, "more_repos": more}


@pytest.fixture
def target(world, tmp_path):
    """An existing database (a copy of the agent's) to restore into."""
    path = tmp_path / "target.db"
    shutil.copyfile(world["agent"].db_path, path)
    return path


def test_unknown_snapshot_id(world, tmp_path, target):
    before_tree, before_repo = tree(tmp_path), RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("restore", "deadbeef00", "--to", target, repo=world["repo_path"]), "deadbeef00")
    assert tree(tmp_path) == before_tree
    assert RepoObjects(world["repo_path"]).state() == before_repo


def test_unknown_snapshot_id_for_a_new_target(world, tmp_path):
    assert_one_line_error(run_cli("restore", "deadbeef00", "--to", tmp_path / "new.db", repo=world["repo_path"]),
                          "deadbeef00")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["latest", "folder"])
def test_target_inside_a_path_that_is_a_file(world, tmp_path, source):
    """Unwritable target (the tests run as root, so no permission bits): its directory is a file."""
    (tmp_path / "plain-file").write_text("not a directory\n")
    bad_target = tmp_path / "plain-file" / "agent.db"
    before_tree, before_repo = tree(tmp_path), RepoObjects(world["repo_path"]).state()
    src = world["folder"] if source == "folder" else "latest"
    assert_one_line_error(run_cli("restore", src, "--to", bad_target, repo=world["repo_path"]), "plain-file")
    assert tree(tmp_path) == before_tree
    assert RepoObjects(world["repo_path"]).state() == before_repo


def test_target_is_an_existing_directory(world, tmp_path):
    bad_target = tmp_path / "a-directory"
    bad_target.mkdir()
    (bad_target / "inside.txt").write_text("keep me\n")
    before_tree, before_repo = tree(tmp_path), RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("restore", "latest", "--to", bad_target, repo=world["repo_path"]), "a-directory")
    assert tree(tmp_path) == before_tree
    assert RepoObjects(world["repo_path"]).state() == before_repo


def test_target_is_not_a_database(world, tmp_path):
    bad_target = tmp_path / "notes.db"
    bad_target.write_bytes(b"these are notes, not an SQLite database\n" * 200)
    before_tree, before_repo = tree(tmp_path), RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("restore", "latest", "--to", bad_target, repo=world["repo_path"]), "notes.db")
    assert tree(tmp_path) == before_tree
    assert RepoObjects(world["repo_path"]).state() == before_repo


@pytest.mark.parametrize("args, mention", [
    (("--only", "memories,secrets"), "secrets"),
    (("--memory-type", "dreams"), "dreams"),
    (("--only", "database,memories"), "database"),
    (("--memory-type", ""), "--memory-type is empty"),  # an empty variable must never mean "everything"
    (("--only", ","), "--only is empty"),
    (("--only", ""), "--only is empty"),
])
def test_bad_components(world, tmp_path, target, args, mention):
    before_tree, before_repo = tree(tmp_path), RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("restore", "latest", "--to", target, *args, repo=world["repo_path"]), mention)
    assert tree(tmp_path) == before_tree
    assert RepoObjects(world["repo_path"]).state() == before_repo


def test_selective_restore_into_a_missing_database(world, tmp_path):
    missing = tmp_path / "missing.db"
    before_repo = RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("restore", "latest", "--to", missing, "--memory-type", "episodic",
                                  repo=world["repo_path"]), "missing.db")
    assert list(tmp_path.iterdir()) == []
    assert RepoObjects(world["repo_path"]).state() == before_repo


def test_memory_type_with_only_conversations_restores_both(world, tmp_path, target):
    doc = json.loads(ok(run_cli("restore", "latest", "--to", target, "--only", "conversations",
                                "--memory-type", "episodic", "--dry-run", "--json", repo=world["repo_path"])).stdout)
    assert doc["components"] == ["conversations", "memories"]
    assert sorted(doc["tables"]) == ["episodic_memory", "messages"]


@pytest.mark.parametrize("source, mention", [("./no-such-folder", "no backup folder ./no-such-folder"),
                                             ("e6d", "too short")])
def test_sources_that_name_nothing(world, tmp_path, source, mention):
    assert_one_line_error(run_cli("restore", source, "--to", tmp_path / "new.db", repo=world["repo_path"]), mention)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [("restore", "latest", "--to", "/proc/snapstore-test.db"),
                                     ("export", "latest", "/proc/snapstore-test-export"),
                                     ("dump", "latest", "database/sqlite.db", "--out", "/proc/snapstore-test.db")])
def test_a_destination_the_system_refuses_is_one_line(world, command):
    result = run_cli(*command, repo=world["repo_path"])
    assert_one_line_error(result)
    assert result.returncode in (1, 2)


def test_parts_the_source_lacks_and_conflicts_are_reported_before_writing(world, tmp_path):
    snap_repo = world["more_repos"]["repo-no-logs"]
    ok(run_cli("init", repo=snap_repo))
    ok(run_cli("backup", "--config", world["agent"].config_path, repo=snap_repo))  # no --include-logs
    files = tmp_path / "files"
    for extra in ((), ("--dry-run",)):
        assert_one_line_error(run_cli("restore", "latest", "--to", tmp_path / "t.db", "--only", "logs",
                                      "--files-dir", files, *extra, repo=snap_repo), "has no logs")
    assert not files.exists()
    (files / "logs").mkdir(parents=True)
    (files / "logs" / "security.log").write_text("mine\n")
    for extra in (("--dry-run",), ()):
        assert_one_line_error(run_cli("restore", "latest", "--to", tmp_path / "t.db", "--only", "config,logs",
                                      "--files-dir", files, *extra, repo=world["repo_path"]), "already exists")
    assert sorted(p.relative_to(files).as_posix() for p in files.rglob("*")) == ["logs", "logs/security.log"]


def test_a_refused_file_part_changes_no_table(world, tmp_path, target):
    snap_repo = world["more_repos"]["repo-no-logs-2"]
    ok(run_cli("init", repo=snap_repo))
    ok(run_cli("backup", "--config", world["agent"].config_path, repo=snap_repo))  # no logs in it
    before_tree, before_repo = tree(tmp_path), RepoObjects(snap_repo).state()
    assert_one_line_error(run_cli("restore", "latest", "--to", target, "--only", "memories,logs",
                                  repo=snap_repo), "has no logs")
    assert tree(tmp_path) == before_tree  # the database too, byte for byte
    assert RepoObjects(snap_repo).state() == before_repo  # and no safety snapshot was taken


def test_library_restore_with_only_and_an_empty_memory_type_list(world, tmp_path, target):
    from snapstore import restore
    from snapstore.repository import Repository

    result = restore(Repository.open(world["repo_path"]), "latest", target, only=["conversations"],
                     memory_types=[], dry_run=True)
    assert result.components == ["conversations"] and list(result.tables) == ["messages"]


def test_latest_is_the_snapshot_even_beside_a_folder_named_latest(world, tmp_path):
    (tmp_path / "latest").mkdir()
    doc = json.loads(ok(run_cli("restore", "latest", "--to", tmp_path / "new.db", "--dry-run", "--json",
                                repo=world["repo_path"], cwd=tmp_path)).stdout)
    assert doc["source"].startswith("snapshot ")


def test_a_file_given_as_source_is_named_as_a_file(world, tmp_path):
    assert_one_line_error(run_cli("restore", world["agent"].config_path, "--to", tmp_path / "new.db",
                                  repo=world["repo_path"]), "is a file")


def test_a_folder_source_is_named_as_a_folder(world, tmp_path):
    out = ok(run_cli("restore", world["folder"], "--to", tmp_path / "new.db", "--dry-run",
                     repo=world["repo_path"])).stdout
    assert f"of folder {world['folder'].name} into" in out
