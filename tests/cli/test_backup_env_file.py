"""The environment a backup stores is the agent's (issue 13): ``backup --db`` run from a
directory holding a ``.env`` does not take it, ``--env-file`` does, and snapstore's own
process environment is never stored."""
from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import pytest

from helpers import cli_env, ok, run_cli
from snapstore.sample_agent import create_sample_agent

CWD_TOKEN = "cwd-PLANTED-" + secrets.token_hex(10)
FILE_TOKEN = "file-PLANTED-" + secrets.token_hex(10)
PROCESS_KEY = "sk-process-PLANTED-" + secrets.token_hex(10)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("envfile")
    agent = create_sample_agent(root / "agent", scale=0.2, seed=3)
    db = root / "bare" / "agent.db"  # a database with no mirix.yaml beside it
    db.parent.mkdir()
    shutil.copyfile(agent.db_path, db)
    cwd = root / "cwd"
    cwd.mkdir()
    (cwd / ".env").write_text(f"HF_TOKEN={CWD_TOKEN}\nMIRIX_FROM_CWD=1\n")
    settings = root / "agent-settings.env"
    settings.write_text(f"# the agent's settings\nGITHUB_TOKEN={FILE_TOKEN}\nMIRIX_LOG_LEVEL=DEBUG\n")
    repo = root / "repo"
    ok(run_cli("init", repo=repo))
    env = cli_env(OPENAI_API_KEY=PROCESS_KEY, MIRIX_PROCESS_ONLY="process-value-" + secrets.token_hex(4))
    return {"root": root, "agent": agent, "db": db, "cwd": cwd, "settings": settings, "repo": repo, "env": env}


def stored_env(world, snapshot_id: str, out: Path) -> bytes:
    ok(run_cli("dump", snapshot_id, "config/environment.env", "--out", out, repo=world["repo"]))
    return out.read_bytes()


def backup(world, *args) -> dict:
    result = ok(run_cli("backup", "--json", *args, repo=world["repo"], env=world["env"], cwd=world["cwd"]))
    return json.loads(result.stdout)


def test_db_backup_ignores_the_current_directorys_env_and_the_process_environment(world, tmp_path):
    snap = backup(world, "--db", world["db"])
    assert stored_env(world, snap["snapshot_id"], tmp_path / "env") == b""
    raw = tmp_path / "raw"
    ok(run_cli("export", snap["snapshot_id"], raw, "--no-sanitize", repo=world["repo"]))
    for path in raw.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in (CWD_TOKEN, "MIRIX_FROM_CWD", PROCESS_KEY, "MIRIX_PROCESS_ONLY"):
                assert needle.encode() not in data, f"{needle} in {path}"


def test_env_file_is_stored_as_it_is_and_exported_sanitised(world, tmp_path):
    snap = backup(world, "--db", world["db"], "--env-file", world["settings"])
    assert stored_env(world, snap["snapshot_id"], tmp_path / "env") == world["settings"].read_bytes()
    out, raw = tmp_path / "out", tmp_path / "raw"
    ok(run_cli("export", snap["snapshot_id"], out, repo=world["repo"]))
    ok(run_cli("export", snap["snapshot_id"], raw, "--no-sanitize", repo=world["repo"]))
    assert FILE_TOKEN not in (out / "config/environment.env").read_text()
    assert "MIRIX_LOG_LEVEL=DEBUG\n" in (out / "config/environment.env").read_text()
    assert "removed secret: config/environment.env:GITHUB_TOKEN" in (out / "verification/backup_report.txt").read_text()
    assert FILE_TOKEN in (raw / "config/environment.env").read_text()


def test_env_file_relative_to_where_the_command_runs(world, tmp_path):
    snap = backup(world, "--db", world["db"], "--env-file", ".env")
    assert stored_env(world, snap["snapshot_id"], tmp_path / "env") == (world["cwd"] / ".env").read_bytes()


def test_config_backup_takes_the_env_beside_the_config_not_the_cwds(world, tmp_path):
    agent_env = Path(world["agent"].directory) / ".env"
    snap = backup(world, "--config", world["agent"].config_path)
    assert stored_env(world, snap["snapshot_id"], tmp_path / "env") == agent_env.read_bytes()


def test_a_missing_env_file_is_a_usage_error(world):
    result = run_cli("backup", "--db", world["db"], "--env-file", world["root"] / "nope.env", repo=world["repo"],
                     cwd=world["cwd"])
    assert result.returncode == 2 and "nope.env" in result.stderr and "Traceback" not in result.stderr


def test_schedule_passes_the_env_file_on(world):
    result = ok(run_cli("schedule", "--db", world["db"], "--env-file", "../agent-settings.env", "--every", "1h",
                        "--print-cron", repo=world["repo"], cwd=world["cwd"]))
    assert f"--env-file {world['settings']}" in result.stdout
