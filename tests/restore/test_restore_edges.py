"""Restore's rough edges, through the real CLI: a pasteable undo line, missing parents made
(as export and dump do), no-op restores that change nothing, private restored files, and
``--only config``/``logs`` behaving as the API's ``load_agent`` does."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from backends import RepoObjects
from helpers import assert_one_line_error, backed_up_agent, cli_env, ok, run_cli
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.sample_agent import mutate_agent


@pytest.fixture
def world(tmp_path, repo_url):
    """An agent backed up into a local directory, then into an S3 prefix."""
    agent, repo_path = backed_up_agent(tmp_path, scale=0.2, seed=31, include_logs=True, repo=repo_url)
    return agent, repo_path


def safety_snapshots(repo_path):
    return [s for s in list_snapshots(Repository.open(repo_path)) if "pre-restore" in s.tags]


@pytest.mark.local_only("a relative --repo directory is printed absolute")
def test_undo_line_pastes_as_printed_when_the_repository_was_relative(world, tmp_path):
    agent, repo_path = world
    mutate_agent(agent.directory, fraction=0.3, seed=32)
    # --repo and --to relative, --repo after the command: the undo line must still work anywhere
    result = ok(run_cli("restore", "latest", "--to", "agent/sqlite.db", "--repo", "repo", cwd=tmp_path))
    line = re.search(r"to undo: (snapstore .+)$", result.stdout, re.M).group(1)
    args = shlex.split(line)
    assert args[1:3] == ["--repo", str(repo_path)] and args[-1] == str(Path(agent.db_path))
    ok(run_cli(*args[1:], cwd="/", env=cli_env()))
    doc = json.loads(ok(run_cli("restore", "latest", "--to", agent.db_path, "--dry-run", "--json",
                                repo=repo_path)).stdout)
    assert any(c["deleted"] or c["inserted"] for c in doc["tables"].values()), "undo must bring the change back"


def test_restore_into_a_missing_directory_creates_it_private(world, tmp_path):
    agent, repo_path = world
    target = tmp_path / "new" / "sub" / "agent.db"
    ok(run_cli("restore", "latest", "--to", target, repo=repo_path))
    assert target.is_file()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # as private as dump's output and the repository
    assert {stat.S_IMODE(d.stat().st_mode) for d in (tmp_path / "new", tmp_path / "new" / "sub")} == {0o700}


def test_a_failed_restore_removes_the_directories_it_made(world, tmp_path):
    agent, repo_path = world
    target = tmp_path / "made" / "agent.db"
    assert_one_line_error(run_cli("restore", "deadbeef", "--to", target, repo=repo_path), "deadbeef")
    assert not (tmp_path / "made").exists()


def test_dump_makes_parents_and_never_overwrites(world, tmp_path):
    agent, repo_path = world
    out = tmp_path / "a" / "b" / "agent.db"
    ok(run_cli("dump", "latest", "database/sqlite.db", "--out", out, repo=repo_path))
    assert out.read_bytes() == Path(agent.db_path).read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    out.write_bytes(b"precious")
    assert_one_line_error(run_cli("dump", "latest", "database/sqlite.db", "--out", out, repo=repo_path),
                          str(out), "already exists")
    assert out.read_bytes() == b"precious"


def test_a_restore_that_changes_nothing_says_so_and_takes_no_safety_snapshot(world):
    agent, repo_path = world
    before = RepoObjects(repo_path).state()
    mtime = Path(agent.db_path).stat().st_mtime_ns
    for only in ([], ["--only", "memories"], ["--memory-type", "episodic"]):
        result = ok(run_cli("restore", "latest", "--to", agent.db_path, *only, repo=repo_path))
        assert result.stdout.startswith("no changes:"), result.stdout
        assert "undo" not in result.stdout
    doc = json.loads(ok(run_cli("restore", "latest", "--to", agent.db_path, "--json", repo=repo_path)).stdout)
    assert doc["unchanged"] is True and doc["safety_snapshot_id"] is None and doc["undo"] is None
    assert RepoObjects(repo_path).state() == before and safety_snapshots(repo_path) == []
    assert Path(agent.db_path).stat().st_mtime_ns == mtime


def test_a_schema_change_alone_is_a_change(world):
    import sqlite3

    agent, repo_path = world
    conn = sqlite3.connect(agent.db_path)
    conn.execute("CREATE INDEX extra_idx ON messages(created_at)")
    conn.commit()
    conn.close()
    result = ok(run_cli("restore", "latest", "--to", agent.db_path, repo=repo_path))
    assert not result.stdout.startswith("no changes") and len(safety_snapshots(repo_path)) == 1
    conn = sqlite3.connect(agent.db_path)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name='extra_idx'").fetchone() == (0,)
    conn.close()


def test_only_config_merges_into_the_live_config_as_the_api_does(world):
    agent, repo_path = world
    config = Path(agent.config_path)
    doc = yaml.safe_load(config.read_text())
    doc["model_name"] = "changed-model"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = ok(run_cli("restore", "latest", "--to", agent.db_path, "--only", "config", repo=repo_path))
    assert f"merged into {config}" in result.stdout
    merged = yaml.safe_load(config.read_text())
    assert merged["model_name"] != "changed-model" and merged["database_url"] == doc["database_url"]
    assert not list(config.parent.glob("restored-*"))  # nothing written beside it
    safety = safety_snapshots(repo_path)
    assert len(safety) == 1 and safety[0].source["config"] == str(config.resolve())  # the whole agent was captured


def test_config_merge_keeps_the_users_comments_and_changes_only_what_differs(world):
    agent, repo_path = world
    config = Path(agent.config_path)
    original = config.read_text()
    assert "model_name: gemini-2.0-flash" in original
    edited = "# my own notes\n" + original.replace("model_name: gemini-2.0-flash",
                                                  "model_name: my-model   # tried this week")
    config.write_text(edited)
    ok(run_cli("restore", "latest", "--to", agent.db_path, "--only", "config", repo=repo_path))
    assert config.read_text() == "# my own notes\n" + original.replace(
        "model_name: gemini-2.0-flash", "model_name: gemini-2.0-flash   # tried this week")
    safety = len(safety_snapshots(repo_path))
    before = config.stat().st_mtime_ns
    doc = json.loads(ok(run_cli("restore", "latest", "--to", agent.db_path, "--only", "config", "--json",
                                repo=repo_path)).stdout)
    assert doc["config"]["changed"] is False and config.stat().st_mtime_ns == before  # nothing to merge: untouched
    assert len(safety_snapshots(repo_path)) in (safety, safety + 1)


def test_only_config_without_an_agent_config_is_refused_before_anything_changes(world, tmp_path):
    agent, repo_path = world
    lone = tmp_path / "lone" / "agent.db"
    lone.parent.mkdir()
    shutil.copyfile(agent.db_path, lone)
    before = RepoObjects(repo_path).state()
    assert_one_line_error(run_cli("restore", "latest", "--to", lone, "--only", "config", repo=repo_path),
                          "--config", "--files-dir")
    assert RepoObjects(repo_path).state() == before and sorted(p.name for p in lone.parent.iterdir()) == ["agent.db"]
    # --files-dir writes the backup's config files there instead, as documented
    out = tmp_path / "files"
    ok(run_cli("restore", "latest", "--to", lone, "--only", "config", "--files-dir", out, repo=repo_path))
    assert (out / "config" / "mirix.yaml").is_file()


def test_only_logs_go_beside_the_config_never_over_the_live_logs(world):
    agent, repo_path = world
    live_logs = sorted(p.read_bytes() for p in (Path(agent.directory) / "logs").rglob("*") if p.is_file())
    result = ok(run_cli("restore", "latest", "--to", agent.db_path, "--only", "logs", "--json", repo=repo_path))
    files = [Path(f) for f in json.loads(result.stdout)["files"]]
    assert files and all(f.parent.parent.parent == Path(agent.directory) for f in files), files
    assert all(f.parent.parent.name.startswith("restored-logs-") for f in files)
    assert sorted(p.read_bytes() for p in (Path(agent.directory) / "logs").rglob("*") if p.is_file()) == live_logs
