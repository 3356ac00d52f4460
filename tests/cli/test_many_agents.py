"""Many agents and hosts in one repository, through the real CLI.

Every snapshot records its host (``backup --host``) and agent; ``latest`` in a
command that names an agent (``--agent``, or a restore target that belongs to
one) is that agent's newest, and elsewhere an error (exit 2) naming the agents
or hosts when there are several.  How ``backup --db`` names an agent.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dbcompare import assert_same_database, copy_db
from helpers import DB_PATH, cli_env, ok, run_cli
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent, mutate_agent


def bare_copy(db, directory):
    """A copy of a database with no mirix.yaml beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    return shutil.copyfile(db, directory / "sqlite.db")


@pytest.fixture
def two_agents(tmp_path):
    """Agent ``mirix`` (by its config) and agent ``other`` (a bare database), one repository."""
    agent = create_sample_agent(tmp_path / "agent", scale=0.2, seed=11)
    other = bare_copy(agent.db_path, tmp_path / "other")
    mutate_agent(agent.directory, fraction=0.2, seed=12)  # the two databases differ
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--config", agent.config_path, repo=repo))
    ok(run_cli("backup", "--db", other, "--host", "laptop", repo=repo))
    return agent, other, repo


def snapshots(repo, *args):
    return json.loads(ok(run_cli("snapshots", "--json", *args, repo=repo)).stdout)


def one_line_error(result, code, *words):
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snapstore: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_snapshots_record_host_and_agent_and_filter_by_them(two_agents):
    agent, other, repo = two_agents
    rows = snapshots(repo)
    assert [(r["agent"], r["host"] == "laptop") for r in rows] == [("mirix", False), ("other", True)]
    assert [r["agent"] for r in snapshots(repo, "--host", "laptop")] == ["other"]
    assert [r["agent"] for r in snapshots(repo, "--agent", "mirix")] == ["mirix"]
    assert snapshots(repo, "--agent", "mirix", "--host", "laptop") == []
    text = ok(run_cli("snapshots", repo=repo)).stdout
    assert "Host" in text.splitlines()[0] and "laptop" in text


@pytest.mark.parametrize("command", [("show", "latest"), ("ls", "latest"), ("dump", "latest", DB_PATH),
                                     ("verify", "latest"), ("export", "latest", "{tmp}/out"),
                                     ("restore", "latest", "--to", "{tmp}/new.db")])
def test_latest_across_agents_is_an_error_listing_them(two_agents, tmp_path, command):
    _, _, repo = two_agents
    args = [a.format(tmp=tmp_path) for a in command]
    one_line_error(run_cli(*args, repo=repo), 2, "ambiguous", "mirix, other", "--agent")
    assert not (tmp_path / "out").exists() and not (tmp_path / "new.db").exists()


def test_latest_with_agent_or_host_is_that_agents_newest(two_agents, tmp_path):
    agent, other, repo = two_agents
    ids = {r["agent"]: r["id"] for r in snapshots(repo)}
    show = json.loads(ok(run_cli("show", "latest", "--agent", "other", "--json", repo=repo)).stdout)
    assert show["id"] == ids["other"] and show["host"] == "laptop"
    show = json.loads(ok(run_cli("show", "latest", "--host", "laptop", "--json", repo=repo)).stdout)
    assert show["id"] == ids["other"]
    ok(run_cli("export", "latest", tmp_path / "out", "--agent", "mirix", repo=repo))
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["backup_info"]["snapshot_id"] == ids["mirix"]
    dumped = tmp_path / "other.db"
    ok(run_cli("dump", "latest", DB_PATH, "--out", dumped, "--agent", "other", repo=repo))
    assert dumped.read_bytes() == other.read_bytes()
    report = json.loads(ok(run_cli("verify", "--agent", "other", "--json", repo=repo)).stdout)
    assert report["snapshots"] == 1
    one_line_error(run_cli("show", ids["other"][:8], "--agent", "mirix", repo=repo), 2, "is of agent other")
    one_line_error(run_cli("show", "latest", "--agent", "nobody", repo=repo), 2, "no snapshots of agent nobody")


def test_restore_latest_into_an_agents_database_takes_that_agents_snapshot(two_agents, tmp_path):
    """The issue's case: another agent's snapshot is newer; restoring 'latest' over the live
    agent must bring back the live agent's own state, not the other's."""
    agent, other, repo = two_agents
    before = copy_db(agent.db_path, tmp_path / "before.db")
    ok(run_cli("backup", "--db", other, repo=repo))  # the other agent is now the newest
    mutate_agent(agent.directory, fraction=0.3, seed=13)
    doc = json.loads(ok(run_cli("restore", "latest", "--to", agent.db_path, "--json", repo=repo)).stdout)
    assert doc["snapshot_id"] == snapshots(repo, "--agent", "mirix")[0]["id"]
    assert_same_database(before, Path(agent.db_path))


def test_backup_db_takes_the_name_of_the_config_beside_it(tmp_path):
    """`backup --db agent/sqlite.db` continues the history `backup --config agent/mirix.yaml` began."""
    agent = create_sample_agent(tmp_path / "agent", scale=0.05, seed=14)
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--config", agent.config_path, repo=repo))
    second = json.loads(ok(run_cli("backup", "--db", agent.db_path, "--json", repo=repo)).stdout)
    first = snapshots(repo)[0]
    assert second["agent"] == first["agent"] == "mirix"
    one_line_error(run_cli("backup", "--db", agent.db_path, "--agent", "renamed", repo=repo), 2,
                   "names the agent mirix, not renamed")


def test_backup_db_without_config_is_named_by_agent_option_history_or_folder(tmp_path):
    agent = create_sample_agent(tmp_path / "agent", scale=0.05, seed=15)
    db = bare_copy(agent.db_path, tmp_path / "work-agent")
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    first = json.loads(ok(run_cli("backup", "--db", db, "--json", repo=repo)).stdout)
    assert first["agent"] == "work-agent"  # the folder, as --config beside it would name it
    named = json.loads(ok(run_cli("backup", "--db", db, "--agent", "assistant", "--json", repo=repo)).stdout)
    assert named["agent"] == "assistant"
    again = json.loads(ok(run_cli("backup", "--db", db, "--json", repo=repo)).stdout)
    assert again["agent"] == "assistant" and again["parent"] == named["snapshot_id"]  # history, not the folder
    other = shutil.copyfile(agent.db_path, tmp_path / "work-agent" / "notes.db")
    assert json.loads(ok(run_cli("backup", "--db", other, "--json", repo=repo)).stdout)["agent"] == "notes"


def test_backup_without_arguments_uses_mirix_dir_or_is_a_usage_error(tmp_path):
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    empty = tmp_path / "empty-home"
    empty.mkdir()
    one_line_error(run_cli("backup", repo=repo, env=cli_env(MIRIX_DIR=str(empty))), 2, "--config", str(empty))
    agent = create_sample_agent(tmp_path / "mirix-home", scale=0.05, seed=16)
    done = json.loads(ok(run_cli("backup", "--json", repo=repo, env=cli_env(MIRIX_DIR=str(agent.directory)))).stdout)
    snap = list_snapshots(Repository.open(repo))[-1]
    assert done["agent"] == "mirix" and snap.source["config"] == str(Path(agent.config_path).resolve())
    bare = tmp_path / "db-only"
    bare_copy(agent.db_path, bare)
    done = json.loads(ok(run_cli("backup", "--json", repo=repo, env=cli_env(MIRIX_DIR=str(bare)))).stdout)
    assert list_snapshots(Repository.open(repo))[-1].source["database"] == f"sqlite:///{bare / 'sqlite.db'}"


def test_repo_option_is_accepted_before_or_after_the_command(two_agents, tmp_path):
    _, _, repo = two_agents
    for args in (["--repo", str(repo), "snapshots", "--json"], ["snapshots", "--repo", str(repo), "--json"],
                 ["snapshots", "--json", "-r", str(repo)]):
        assert len(json.loads(ok(run_cli(*args)).stdout)) == 2
    ok(run_cli("init", "--repo", tmp_path / "second"))
    assert Repository.open(tmp_path / "second")
    one_line_error(run_cli("snapshots"), 2, "no repository given")


def test_an_imported_folder_keeps_the_agent_and_host_it_came_from(two_agents, tmp_path):
    """An agent of the same name from another machine is not silently the local agent's latest."""
    agent, other, repo = two_agents
    ok(run_cli("export", "latest", tmp_path / "from-laptop", "--host", "laptop", repo=repo))
    second = tmp_path / "repo2"
    ok(run_cli("init", repo=second))
    ok(run_cli("backup", "--db", other, "--host", "server", repo=second))
    ok(run_cli("import", tmp_path / "from-laptop", repo=second))
    rows = snapshots(second)
    assert [(r["agent"], r["host"]) for r in rows] == [("other", "server"), ("other", "laptop")]
    one_line_error(run_cli("show", "latest", "--agent", "other", repo=second), 2, "hosts laptop, server", "--host")
    shown = json.loads(ok(run_cli("show", "latest", "--host", "server", "--json", repo=second)).stdout)
    assert shown["id"] == rows[0]["id"]
