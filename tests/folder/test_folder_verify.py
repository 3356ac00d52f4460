"""verify_backup(path): the reference's result shape; each kind of damage fails its own check."""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from backends import BACKENDS, repo_location
from helpers import run_cli

from snapstore import backup_agent, export_snapshot, load_agent_source, verify_backup
from snapstore.folder.layout import CHECKSUMS, METADATA, md5_line, parse_md5_file
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent


@pytest.fixture(scope="module", params=BACKENDS)
def exported(tmp_path_factory, request):
    """(repository, root): a snapshot exported to ``root/clean`` from a local and an S3 repository."""
    root = tmp_path_factory.mktemp("vf")
    info = create_sample_agent(root / "agent", scale=1, seed=21)
    repo = Repository.init(repo_location(request, request.param, root / "repo"))
    backup_agent(repo, load_agent_source(info.config_path), include_logs=True)
    export_snapshot(repo, "latest", root / "clean")
    return repo, root


def fresh_copy(exported, tmp_path) -> Path:
    _, root = exported
    dest = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(root / "clean"), str(dest)], check=True)
    return dest


def reseal(folder: Path, rel: str) -> None:
    """Re-record one file's checksum in both lists, so only the deeper checks can see the damage."""
    digest = hashlib.md5((folder / rel).read_bytes()).hexdigest()
    meta = json.loads((folder / METADATA).read_text())
    meta["checksums"][rel] = digest
    (folder / METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    sums = parse_md5_file((folder / CHECKSUMS).read_text())
    sums[rel] = digest
    sums[METADATA] = hashlib.md5((folder / METADATA).read_bytes()).hexdigest()
    (folder / CHECKSUMS).write_text("".join(md5_line(p, d) for p, d in sorted(sums.items())))


def failed(report: dict) -> set[str]:
    return {check for check, ok in report["results"].items() if not ok}


def test_clean_folder_is_valid(exported):
    report = verify_backup(exported[1] / "clean")
    assert report["valid"] is True and failed(report) == set() and report["errors"] == {}
    assert set(report["results"]) == {"file_integrity", "database_integrity", "memory_completeness", "config_validity"}


def test_tampered_file_fails_file_integrity_naming_it(exported, tmp_path):
    folder = fresh_copy(exported, tmp_path)
    with open(folder / "config" / "environment.env", "a") as f:
        f.write("EXTRA=1\n")
    report = verify_backup(folder)
    assert failed(report) == {"file_integrity"}
    assert "config/environment.env" in report["errors"]["file_integrity"][0]


def test_missing_file_is_named(exported, tmp_path):
    folder = fresh_copy(exported, tmp_path)
    (folder / "database" / "schema_info.json").unlink()
    report = verify_backup(folder)
    assert "file_integrity" in failed(report)
    assert any("database/schema_info.json" in e for e in report["errors"]["file_integrity"])


def test_broken_dump_fails_database_integrity(exported, tmp_path):
    folder = fresh_copy(exported, tmp_path)
    dump = folder / "database" / "mirix_dump.sql"
    dump.write_text(dump.read_text().replace("CREATE TABLE", "CREATE TABEL", 1))
    reseal(folder, "database/mirix_dump.sql")
    report = verify_backup(folder)
    assert failed(report) == {"database_integrity"}
    assert "mirix_dump.sql" in report["errors"]["database_integrity"][0]


def test_dropped_memory_row_fails_completeness(exported, tmp_path):
    folder = fresh_copy(exported, tmp_path)
    path = folder / "memories" / "semantic_memory.json"
    doc = json.loads(path.read_text())
    doc["rows"].pop()
    path.write_text(json.dumps(doc))
    reseal(folder, "memories/semantic_memory.json")
    report = verify_backup(folder)
    assert failed(report) == {"memory_completeness"}
    assert "semantic_memory.json" in report["errors"]["memory_completeness"][0]


def test_config_without_agent_fails_config_validity(exported, tmp_path):
    folder = fresh_copy(exported, tmp_path)
    (folder / "config" / "mirix.yaml").write_text("timezone: UTC\n")
    reseal(folder, "config/mirix.yaml")
    report = verify_backup(folder)
    assert failed(report) == {"config_validity"}


def test_not_a_folder_and_newer_version(exported, tmp_path):
    assert verify_backup(tmp_path / "absent")["valid"] is False
    folder = fresh_copy(exported, tmp_path)
    meta = json.loads((folder / METADATA).read_text())
    meta["backup_info"]["version"] = "7.0.0"
    (folder / METADATA).write_text(json.dumps(meta))
    report = verify_backup(folder)
    assert report["valid"] is False and "7.0.0" in report["errors"]["file_integrity"][0]


def test_cli_exit_codes(exported, tmp_path):
    ok = run_cli("verify-folder", exported[1] / "clean", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    folder = fresh_copy(exported, tmp_path)
    (folder / "memories" / "core_memory.json").write_text("{}")
    bad = run_cli("verify-folder", folder)
    assert bad.returncode == 4 and "core_memory.json" in bad.stdout


@pytest.mark.parametrize("rel", ["memories/episodic_memory.json", "config/mirix.yaml", "database/sqlite.db"])
def test_a_link_out_of_the_folder_stops_every_check_before_anything_is_read(exported, tmp_path, rel):
    folder = fresh_copy(exported, tmp_path)
    outside = tmp_path / "outside"
    outside.write_bytes((folder / rel).read_bytes())  # a perfectly good file: it must still not be used
    (folder / rel).unlink()
    (folder / rel).symlink_to(outside)
    result = verify_backup(folder)
    assert result["valid"] is False and result["results"]["file_integrity"] is False
    for check in ("database_integrity", "memory_completeness", "config_validity"):
        assert result["results"][check] is False
        assert result["errors"][check] == ["not checked: the folder failed file_integrity"]


def test_cli_newer_version_is_unsupported_not_damage(exported, tmp_path):
    folder = fresh_copy(exported, tmp_path)
    meta = json.loads((folder / METADATA).read_text())
    meta["backup_info"]["version"] = "7.0.0"
    (folder / METADATA).write_text(json.dumps(meta))
    result = run_cli("verify-folder", folder)
    assert result.returncode == 2 and "7.0.0" in result.stderr and "Traceback" not in result.stderr
