"""Import of backup folders: Mirix's own ``save_agent`` layout, and folders that must be refused.

A refused folder gives exactly one ``snapstore: ...`` line on stderr naming the
fault, exit code != 0, no traceback, and changes nothing: not one file of the
repository (every object's name and content) and not one byte of a restore target.
Every test runs on a local and on an S3 repository.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from dbcompare import check_database, ro
from backends import BACKENDS, RepoObjects, repo_location
from helpers import assert_one_line_error, ok, run_cli
from snapstore.backup import backup_agent
from snapstore.export import export_snapshot
from snapstore.folder.layout import FOLDER_VERSION
from snapstore.importer import import_folder
from snapstore.manifest import load_snapshot
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent
from snapstore.sources.agent import load_agent_source


# -- helpers -------------------------------------------------------------------------------

def table_state(path: Path) -> dict[str, list[tuple]]:
    """Every ordinary table and FTS table (not the shadow tables), rows with rowids in order."""
    conn = ro(path)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                            "ORDER BY name").fetchall()
        virtual = [n for n, s in rows if s.upper().startswith("CREATE VIRTUAL")]
        names = [n for n, _ in rows if not any(n.startswith(v + "_") for v in virtual)]
        state = {n: conn.execute(f'SELECT rowid, * FROM "{n}" ORDER BY rowid').fetchall() for n in names}
        state["<schema>"] = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        return state
    finally:
        conn.close()


def rewrite_checksums(folder: Path, changed: list[str]) -> None:
    """Record new MD5s of ``changed`` files in checksums.md5 (and metadata.json unless it is one)."""
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    for rel in changed:
        if rel != "metadata.json":
            meta["checksums"][rel] = hashlib.md5((folder / rel).read_bytes()).hexdigest()
    if any(rel != "metadata.json" for rel in changed):
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    lines = (folder / "verification/checksums.md5").read_text().splitlines()
    out = []
    for line in lines:
        digest, path = line.split("  ", 1)
        if path in changed or path == "metadata.json":
            digest = hashlib.md5((folder / path).read_bytes()).hexdigest()
        out.append(f"{digest}  {path}")
    (folder / "verification/checksums.md5").write_text("\n".join(out) + "\n")


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    return create_sample_agent(tmp_path_factory.mktemp("importer") / "agent", scale=1, seed=53)


@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request, agent):
    root = tmp_path_factory.mktemp("importer")
    repo_path = repo_location(request, request.param, root / "repo")
    repo = Repository.init(repo_path)
    snap = backup_agent(repo, load_agent_source(agent.config_path), include_logs=True).snapshot
    folder = root / "good-folder"
    export_snapshot(repo, snap.id, folder)
    return {"root": root, "agent": agent, "repo": repo, "repo_path": repo_path, "snap": snap, "folder": folder}


@pytest.fixture
def folder_copy(world, tmp_path):
    dest = tmp_path / "folder"
    shutil.copytree(world["folder"], dest)
    return dest


# -- Mirix save_agent layout ---------------------------------------------------------------

def make_mirix_save_agent_folder(agent, dest: Path, with_yaml: bool = True) -> Path:
    """What Mirix's ``AgentWrapper.save_agent`` writes for an SQLite agent: a copy of the database
    as ``sqlite.db`` (made here with SQLite's backup API, so it is consistent), ``agent_config.json``
    with the wrapper's fields, and (newer versions) the config file as ``mirix_config.yaml``."""
    dest.mkdir()
    src, dst = sqlite3.connect(agent.db_path), sqlite3.connect(dest / "sqlite.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    (dest / "agent_config.json").write_text(json.dumps({
        "agent_name": "mirix", "model_name": "gemini-2.0-flash", "memory_model_name": "gemini-2.0-flash",
        "timezone_str": "America/New_York", "active_persona_name": "helpful_assistant",
        "include_recent_screenshots": True, "is_screen_monitor": False,
        "backup_type": "sqlite", "backup_timestamp": "2025-07-01T12:00:00.000000",
    }, indent=2))
    if with_yaml:
        shutil.copyfile(agent.config_path, dest / "mirix_config.yaml")
    return dest


def test_import_of_a_mirix_save_agent_folder(agent, tmp_path, repo_url):
    folder = make_mirix_save_agent_folder(agent, tmp_path / "mirix-backup")
    repo_path = repo_url
    ok(run_cli("init", repo=repo_path))
    doc = json.loads(ok(run_cli("import", folder, "--json", repo=repo_path)).stdout)

    snap = load_snapshot(Repository.open(repo_path), doc["snapshot_id"])
    assert "imported" in snap.tags
    assert {f.path for f in snap.files} >= {"database/sqlite.db", "config/mirix.yaml", "config/agent_config.json"}
    dumped = tmp_path / "mirix_config.yaml"
    ok(run_cli("dump", snap.id, "config/mirix.yaml", "--out", dumped, repo=repo_path))
    assert dumped.read_bytes() == Path(agent.config_path).read_bytes()
    dumped_json = tmp_path / "agent_config.json"
    ok(run_cli("dump", snap.id, "config/agent_config.json", "--out", dumped_json, repo=repo_path))
    assert dumped_json.read_bytes() == (folder / "agent_config.json").read_bytes()

    target = tmp_path / "restored.db"
    ok(run_cli("restore", snap.id, "--to", target, repo=repo_path))
    assert table_state(target) == table_state(folder / "sqlite.db") == table_state(Path(agent.db_path))
    check_database(target)

    # and the imported snapshot exports as a complete, checkable folder
    out = tmp_path / "export"
    ok(run_cli("export", snap.id, out, repo=repo_path))
    assert subprocess.run(["md5sum", "-c", "--quiet", "verification/checksums.md5"], cwd=out).returncode == 0


def test_mirix_folder_is_deduplicated_against_the_repository(world, tmp_path):
    folder = make_mirix_save_agent_folder(world["agent"], tmp_path / "mirix-backup")
    result = import_folder(world["repo"], folder)
    db_size = (folder / "sqlite.db").stat().st_size
    assert result.new_data_bytes < db_size // 50, result.as_dict()


@pytest.mark.parametrize("with_yaml", [True, False], ids=["with-mirix_config.yaml", "database-and-json-only"])
def test_restore_straight_from_a_mirix_folder(agent, tmp_path, repo_url, with_yaml):
    folder = make_mirix_save_agent_folder(agent, tmp_path / "mirix-backup", with_yaml=with_yaml)
    repo_path = repo_url
    ok(run_cli("init", repo=repo_path))
    target = tmp_path / "restored.db"
    ok(run_cli("restore", folder, "--to", target, repo=repo_path))
    assert table_state(target) == table_state(folder / "sqlite.db")


# -- folders that must be refused ----------------------------------------------------------

def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def tamper(folder: Path) -> str:
    flip_byte(folder / "memories/episodic_memory.json")
    return "memories/episodic_memory.json"


def remove(folder: Path) -> str:
    (folder / "memories/semantic_memory.json").unlink()
    return "memories/semantic_memory.json"


def tamper_database(folder: Path) -> str:
    flip_byte(folder / "database/sqlite.db", 5000)
    return "database/sqlite.db"


def newer_version(folder: Path) -> str:
    meta = json.loads((folder / "metadata.json").read_text())
    meta["backup_info"]["version"] = "9.0.0"
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    rewrite_checksums(folder, ["metadata.json"])  # the only fault left is the version
    return "9.0.0"


def dotdot_path(folder: Path) -> str:
    outside = folder.parent / "outside"
    outside.write_text("not part of the backup\n")
    digest = hashlib.md5(outside.read_bytes()).hexdigest()
    with open(folder / "verification/checksums.md5", "a") as f:
        f.write(f"{digest}  ../outside\n")
    return "../outside"


def absolute_path(folder: Path) -> str:
    digest = hashlib.md5(Path("/etc/hostname").read_bytes()).hexdigest() if Path("/etc/hostname").exists() else "0" * 32
    with open(folder / "verification/checksums.md5", "a") as f:
        f.write(f"{digest}  /etc/hostname\n")
    return "/etc/hostname"


def symlink_with_same_content(folder: Path) -> str:
    """logs/agent.log replaced by a link to an identical file outside: checksums still match."""
    outside = folder.parent / "agent.log.outside"
    shutil.copyfile(folder / "logs/agent.log", outside)
    (folder / "logs/agent.log").unlink()
    (folder / "logs/agent.log").symlink_to(outside)
    return "logs/agent.log"


def extra_symlink(folder: Path) -> str:
    (folder / "logs/passwd").symlink_to("/etc/passwd")
    return "logs/passwd"


BAD_FOLDERS = {
    "tampered-file": (tamper, []),
    "missing-file": (remove, []),
    "tampered-database": (tamper_database, []),
    "newer-version": (newer_version, [FOLDER_VERSION]),
    "dotdot-path": (dotdot_path, []),
    "absolute-path": (absolute_path, []),
    "symlink-outside-same-content": (symlink_with_same_content, ["symlink"]),
    "extra-symlink-outside": (extra_symlink, ["symlink"]),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_folder_is_refused_by_import(world, folder_copy, case):
    damage, more = BAD_FOLDERS[case]
    named = damage(folder_copy)
    before = RepoObjects(world["repo_path"]).state()
    line = assert_one_line_error(run_cli("import", folder_copy, repo=world["repo_path"]), named, *more)
    assert RepoObjects(world["repo_path"]).state() == before, f"the repository changed: {line}"


@pytest.mark.parametrize("case", ["tampered-file", "missing-file", "newer-version", "dotdot-path",
                                  "symlink-outside-same-content"])
def test_bad_folder_is_refused_by_restore(world, folder_copy, tmp_path, case):
    damage, more = BAD_FOLDERS[case]
    named = damage(folder_copy)
    target = tmp_path / "target.db"
    shutil.copyfile(world["agent"].db_path, target)
    target_bytes = target.read_bytes()
    before = RepoObjects(world["repo_path"]).state()
    line = assert_one_line_error(run_cli("restore", folder_copy, "--to", target, repo=world["repo_path"]),
                                 named, *more)
    assert RepoObjects(world["repo_path"]).state() == before, f"the repository changed: {line}"
    assert target.read_bytes() == target_bytes
    left = {p.name for p in tmp_path.iterdir()} - {"folder", "target.db", "outside", "agent.log.outside"}
    assert left == set(), f"restore left files beside the target: {left}"


def test_mirix_folder_with_a_corrupt_database_is_refused(world, tmp_path):
    folder = make_mirix_save_agent_folder(world["agent"], tmp_path / "mirix-backup")
    with open(folder / "sqlite.db", "r+b") as f:
        f.truncate(4096 * 3 + 100)
    before = RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("import", folder, repo=world["repo_path"]), "sqlite.db")
    assert RepoObjects(world["repo_path"]).state() == before


def test_mirix_folder_with_a_symlinked_database_is_refused(world, tmp_path):
    folder = tmp_path / "mirix-backup"
    folder.mkdir()
    (folder / "sqlite.db").symlink_to(world["agent"].db_path)
    shutil.copyfile(world["agent"].config_path, folder / "mirix_config.yaml")
    before = RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("import", folder, repo=world["repo_path"]), "sqlite.db", "symlink")
    assert RepoObjects(world["repo_path"]).state() == before


def test_folder_that_is_not_a_backup(world, tmp_path):
    (tmp_path / "empty").mkdir()
    before = RepoObjects(world["repo_path"]).state()
    assert_one_line_error(run_cli("import", tmp_path / "empty", repo=world["repo_path"]), str(tmp_path / "empty"))
    assert_one_line_error(run_cli("import", tmp_path / "missing", repo=world["repo_path"]), str(tmp_path / "missing"))
    assert RepoObjects(world["repo_path"]).state() == before


def test_a_live_agent_directory_is_not_imported_as_a_backup(world, tmp_path):
    """A directory with sqlite.db and mirix.yaml but none of Mirix's backup files is an agent,
    not a backup: refused, pointing at `backup` (which captures it consistently)."""
    live = Path(world["agent"].directory)
    before = RepoObjects(world["repo_path"]).state()
    result = run_cli("import", live, repo=world["repo_path"])
    assert result.returncode == 2
    assert_one_line_error(result, "agent_config.json", f"snapstore backup --config {live / 'mirix.yaml'}")
    assert_one_line_error(run_cli("restore", live, "--to", tmp_path / "x.db", repo=world["repo_path"]),
                          "not a backup folder")
    assert RepoObjects(world["repo_path"]).state() == before and not (tmp_path / "x.db").exists()
