"""User mistakes give one clear line on stderr and a non-zero exit code, never a traceback.

Every case runs the real ``snapstore`` console script.  An error must be exactly
one line starting with ``snapstore: ``, nothing on stdout, no ``Traceback``,
and (where SPEC/errors.py define one) the documented exit code.  The last
tests check that ``--json`` output of every listing parses as JSON.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import blake3
import msgpack
import pytest

from helpers import DB_PATH, cli_env, ok, run_cli, table_checksums
from snapstore import sample_agent
from snapstore.repository import Repository



def assert_user_error(result, code: int | None = None, *mentions: str) -> str:
    """One ``snapstore: ...`` line on stderr, nothing on stdout, the expected exit code."""
    assert result.returncode != 0, f"expected a failure, got success:\n{result.stdout}"
    if code is not None:
        assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("snapstore: ") and len(line) > len("snapstore: ") + 5, line
    assert result.stdout == "", result.stdout
    for word in mentions:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    return line


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A repository holding one snapshot of a small sample agent."""
    root = tmp_path_factory.mktemp("cli")
    agent = sample_agent.create_sample_agent(root / "agent", scale=0.3, seed=77)
    repo = root / "repo"
    ok(run_cli("init", repo=repo))
    backup = json.loads(ok(run_cli("backup", "--config", agent.config_path, "--json", repo=repo)).stdout)
    return {"root": root, "agent": agent, "repo": repo, "snapshot": backup["snapshot_id"]}


# -- the repository ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [("snapshots",), ("show", "latest"), ("ls", "latest"),
                                  ("dump", "latest", DB_PATH), ("repair", "index")])
def test_missing_repository(tmp_path, args):
    missing = tmp_path / "no-such-repo"
    line = assert_user_error(run_cli(*args, repo=missing), 10)
    assert str(missing) in line
    assert not missing.exists(), "a read command must not create the repository"


def test_missing_repository_from_environment(tmp_path, world):
    missing = tmp_path / "gone"
    r = run_cli("backup", "--config", world["agent"].config_path, env=cli_env(SNAPSTORE_REPO=str(missing)))
    assert str(missing) in assert_user_error(r, 10)
    assert not missing.exists()


def test_directory_that_is_not_a_repository(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello")
    assert_user_error(run_cli("snapshots", repo=plain), 10)
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "config").write_bytes(b"\xc1\xc1 not msgpack")
    assert_user_error(run_cli("snapshots", repo=tmp_path / "garbage"), 10)


def test_init_twice(tmp_path):
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    config = (repo / "config").read_bytes()
    assert_user_error(run_cli("init", repo=repo), 2, "already exists")
    assert (repo / "config").read_bytes() == config, "a second init must not touch the repository"


def test_init_into_a_non_empty_directory(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "precious.txt").write_text("keep me")
    assert_user_error(run_cli("init", repo=tmp_path / "full"), 2)
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["precious.txt"]


@pytest.mark.parametrize("args", [("init",), ("snapshots",), ("show", "latest"), ("backup", "--db", "x.db")])
def test_no_repository_given(args):
    line = assert_user_error(run_cli(*args, env=cli_env()), 2)
    assert "--repo" in line and "SNAPSTORE_REPO" in line


def test_repository_of_a_newer_format(tmp_path, world):
    repo = tmp_path / "future"
    ok(run_cli("init", repo=repo))
    cfg = msgpack.unpackb((repo / "config").read_bytes())
    cfg["version"] = 99
    (repo / "config").write_bytes(msgpack.packb(cfg))
    for args in (("snapshots",), ("backup", "--config", world["agent"].config_path), ("repair", "index")):
        line = assert_user_error(run_cli(*args, repo=repo))
        assert "99" in line and "newer" in line.lower(), line
    assert not list((repo / "snapshots").iterdir())
    assert not list((repo / "index").iterdir())


# -- snapshot ids -----------------------------------------------------------------------

@pytest.mark.parametrize("command", ["show", "ls", "dump"])
def test_unknown_snapshot_id(world, command):
    args = [command, "deadbeef"] + ([DB_PATH] if command == "dump" else [])
    line = assert_user_error(run_cli(*args, repo=world["repo"]), 2)
    assert "deadbeef" in line


def test_latest_in_an_empty_repository(tmp_path):
    ok(run_cli("init", repo=tmp_path / "empty"))
    assert_user_error(run_cli("show", "latest", repo=tmp_path / "empty"), 2, "no snapshots")


def test_too_short_snapshot_id(world):
    prefix = world["snapshot"][:3]
    line = assert_user_error(run_cli("show", prefix, repo=world["repo"]), 2)
    assert prefix in line
    # Four characters of a real id are enough.
    shown = json.loads(ok(run_cli("show", world["snapshot"][:4], "--json", repo=world["repo"])).stdout)
    assert shown["id"] == world["snapshot"]


def test_ambiguous_snapshot_id(tmp_path, world):
    # Copy the repository, then add valid manifests (same files, other tags) until two ids
    # share a 4-character prefix (birthday bound: a few hundred tries).
    repo_path = tmp_path / "repo"
    shutil.copytree(world["repo"], repo_path)
    repo = Repository.open(repo_path)
    doc = msgpack.unpackb(repo.read_snapshot_file(world["snapshot"]))
    by_prefix: dict[str, bytes] = {}
    n = 0
    while True:
        n += 1
        doc["tags"] = [f"variant-{n}"]
        data = msgpack.packb(doc)
        prefix = blake3.blake3(data).hexdigest()[:4]
        if prefix in by_prefix:
            first = repo.write_snapshot_file(by_prefix[prefix])
            second = repo.write_snapshot_file(data)
            break
        by_prefix[prefix] = data
    assert first[:4] == second[:4] and first != second
    line = assert_user_error(run_cli("show", first[:4], repo=repo_path), 2, "ambiguous")
    assert first[:4] in line
    assert_user_error(run_cli("dump", first[:4], DB_PATH, repo=repo_path), 2, "ambiguous")
    # A longer prefix resolves, and the crafted snapshot reads back.
    k = next(i for i in range(5, 64) if first[:i] != second[:i])
    shown = json.loads(ok(run_cli("show", first[:k], "--json", repo=repo_path)).stdout)
    assert shown["id"] == first


# -- dump -------------------------------------------------------------------------------

def test_dump_of_a_path_not_in_the_snapshot(tmp_path, world):
    out = tmp_path / "out.db"
    line = assert_user_error(run_cli("dump", "latest", "database/other.db", "--out", out, repo=world["repo"]), 2)
    assert "database/other.db" in line
    assert not out.exists()
    assert not list(tmp_path.iterdir()), "no temporary file may be left behind"


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "database/../../etc/passwd",
                                  "database/./sqlite.db/../../../x"])
def test_dump_of_a_path_that_escapes(tmp_path, world, path):
    out = tmp_path / "out"
    assert_user_error(run_cli("dump", "latest", path, repo=world["repo"]), 2)
    assert_user_error(run_cli("dump", "latest", path, "--out", out, repo=world["repo"]), 2)
    assert not out.exists()


def test_dump_works_for_the_real_path(tmp_path, world):
    out = tmp_path / "restored.db"
    ok(run_cli("dump", world["snapshot"], DB_PATH, "--out", out, repo=world["repo"]))
    assert table_checksums(out) == table_checksums(Path(world["agent"].db_path))


# -- backup -----------------------------------------------------------------------------

def snapshot_count(repo: Path) -> int:
    return len(Repository.open(repo).snapshot_ids())


def test_backup_of_a_missing_database(tmp_path, world):
    before = snapshot_count(world["repo"])
    missing = tmp_path / "nowhere" / "sqlite.db"
    line = assert_user_error(run_cli("backup", "--db", missing, repo=world["repo"]), 3)
    assert str(missing) in line
    assert not missing.exists() and not missing.parent.exists(), "backup must not create the database"
    # The same through a config whose database_url points nowhere.
    cfg = tmp_path / "mirix.yaml"
    cfg.write_text(f"agent_name: ghost\ndatabase_url: sqlite:///{missing}\n")
    assert_user_error(run_cli("backup", "--config", cfg, repo=world["repo"]), 3)
    assert not missing.exists()
    assert snapshot_count(world["repo"]) == before


def test_backup_of_a_file_that_is_not_a_database(tmp_path, world):
    before = snapshot_count(world["repo"])
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database\n" * 400)
    assert_user_error(run_cli("backup", "--db", junk, repo=world["repo"]), 3)
    assert snapshot_count(world["repo"]) == before


def test_backup_with_an_invalid_yaml_config(tmp_path, world):
    before = snapshot_count(world["repo"])
    cfg = tmp_path / "mirix.yaml"
    cfg.write_text("agent_name: [unclosed\n  database_url: : :\n\t- tab\n")
    line = assert_user_error(run_cli("backup", "--config", cfg, repo=world["repo"]), 3)
    assert str(cfg) in line
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- just\n- a list\n")
    assert_user_error(run_cli("backup", "--config", not_a_mapping, repo=world["repo"]), 3)
    missing_cfg = tmp_path / "absent.yaml"
    assert_user_error(run_cli("backup", "--config", missing_cfg, repo=world["repo"]))
    assert snapshot_count(world["repo"]) == before


def test_backup_without_an_agent_is_a_usage_error(world, tmp_path):
    """Neither --config nor --db, and no agent in $MIRIX_DIR: exit 2 (a usage error), not 3."""
    assert_user_error(run_cli("backup", repo=world["repo"], env=cli_env(MIRIX_DIR=str(tmp_path))), 2, "--config")


# -- --json -----------------------------------------------------------------------------

def test_json_outputs_parse(tmp_path):
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=0.2, seed=3)
    repo = tmp_path / "repo"

    init = json.loads(ok(run_cli("init", "--json", repo=repo)).stdout)
    assert init["id"] == Repository.open(repo).config.repo_id and init["version"] >= 1

    empty = json.loads(ok(run_cli("snapshots", "--json", repo=repo)).stdout)
    assert empty == []

    backup = json.loads(ok(run_cli("backup", "--config", agent.config_path, "--json", repo=repo)).stdout)
    sid = backup["snapshot_id"]
    assert len(sid) == 64 and backup["added_bytes"] > 0 and backup["files"] >= 2
    second = json.loads(ok(run_cli("backup", "--db", agent.db_path, "--json", repo=repo)).stdout)

    rows = json.loads(ok(run_cli("snapshots", "--json", repo=repo)).stdout)
    assert [r["id"] for r in rows] == [sid, second["snapshot_id"]]
    for r in rows:
        assert {"id", "short_id", "time", "agent", "total_size", "added_bytes"} <= set(r)

    show = json.loads(ok(run_cli("show", sid, "--json", repo=repo)).stdout)
    assert show["id"] == sid and DB_PATH in show["paths"]
    show_latest = json.loads(ok(run_cli("show", "latest", "--json", repo=repo)).stdout)
    assert show_latest["id"] == second["snapshot_id"]

    files = json.loads(ok(run_cli("ls", sid, "--json", repo=repo)).stdout)
    by_path = {f["path"]: f for f in files}
    assert by_path[DB_PATH]["size"] == Path(agent.db_path).stat().st_size
    assert "config/mirix.yaml" in by_path

    report = json.loads(ok(run_cli("repair", "index", "--json", repo=repo)).stdout)
    assert report["bad_packs"] == [] and report["blobs"] > 0

    # Errors stay plain one-liners with --json too.
    assert_user_error(run_cli("show", "ffffffff", "--json", repo=repo), 2)


# -- settings -----------------------------------------------------------------------------

def test_invalid_lock_wait_setting(world):
    r = run_cli("snapshots", repo=world["repo"], env=cli_env(SNAPSTORE_LOCK_WAIT="ten seconds"))
    assert_user_error(r, None, "SNAPSTORE_LOCK_WAIT")


def test_show_prints_readable_values(world):
    out = ok(run_cli("show", "latest", repo=world["repo"])).stdout
    assert "b'" not in out and 'b"' not in out


def test_a_reader_that_goes_away_ends_the_command_quietly(world):
    import subprocess as sp

    from helpers import SNAPSTORE, cli_env

    proc = sp.Popen([*SNAPSTORE, "--repo", str(world["repo"]), "snapshots"], stdout=sp.PIPE, stderr=sp.PIPE,
                    env=cli_env())
    proc.stdout.close()  # `| head -0`: gone before the command prints
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == "", err
