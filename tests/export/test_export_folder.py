"""Export of a snapshot as the portable folder (SPEC.md §4, issue 3 "What it must show").

Everything is real: a scale-1 sample agent, a real repository, the real
``md5sum``, ``jq`` and ``sqlite3`` binaries (run with argument lists, the dump fed
on stdin) and the ``snapstore`` console script for the CLI flags.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import yaml
import zstandard

import snapstore
from dbcompare import assert_same_database, copy_db, ro
from backends import BACKENDS, repo_location
from helpers import ok, run_cli
from snapstore.backup import backup_agent
from snapstore.export import export_snapshot
from snapstore.folder.layout import FOLDER_VERSION
from snapstore.memory_types import DEFAULT_MEMORY_TABLES, memory_file_name
from snapstore.repository import Repository
from snapstore.sample_agent import FTS_COLUMNS, create_sample_agent
from snapstore.sanitize import MARKER, is_secret, parse_env
from snapstore.sources.agent import load_agent_source

EXPECTED_FILES = {
    "metadata.json", "database/mirix_dump.sql", "database/schema_info.json", "database/sqlite.db",
    "config/mirix.yaml", "config/environment.env", "logs/agent.log", "logs/security.log",
    "verification/checksums.md5", "verification/backup_report.txt",
    *(f"memories/{memory_file_name(kind)}" for kind in DEFAULT_MEMORY_TABLES),
}


# -- helpers -------------------------------------------------------------------------------

def folder_listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in folder_listing(root)}


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def secret_values(agent) -> list[str]:
    env_text = (Path(agent.directory) / ".env").read_text()
    values = [v for k, v in parse_env(env_text) if is_secret(k, v)]
    config = yaml.safe_load(Path(agent.config_path).read_text())
    values.append(config["llm_config"]["api_key"])
    assert len(values) >= 5 and all(len(v) >= 12 for v in values)
    return values


def grep_folder(root: Path, needle: str) -> list[str]:
    data = needle.encode()
    return [rel for rel, content in folder_bytes(root).items() if data in content]


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def world(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("export")
    agent = create_sample_agent(root / "agent", scale=1, seed=31)
    repo_path = repo_location(request, request.param, root / "repo")
    repo = Repository.init(repo_path)
    snap = backup_agent(repo, load_agent_source(agent.config_path), include_logs=True).snapshot
    source_db = copy_db(agent.db_path, root / "source.db")  # nothing writes to the agent in these tests
    folder = root / "exported"
    export_snapshot(repo, snap.id, folder)
    return {"root": root, "agent": agent, "repo": repo, "repo_path": repo_path, "snap": snap,
            "source_db": source_db, "folder": folder}


# -- the folder ----------------------------------------------------------------------------

def test_layout_is_the_documented_one(world):
    assert folder_listing(world["folder"]) == EXPECTED_FILES


def test_md5sum_check_passes_inside_the_folder(world):
    result = subprocess.run(["md5sum", "-c", "--strict", "verification/checksums.md5"], cwd=world["folder"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = {line.rsplit(": ", 1)[0] for line in result.stdout.splitlines() if line.endswith(": OK")}
    assert checked == EXPECTED_FILES - {"verification/checksums.md5"}


def test_jq_reads_every_json_file(world):
    json_files = sorted(p for p in world["folder"].rglob("*.json"))
    assert len(json_files) == 8  # metadata, schema_info and the six memory files
    for path in json_files:
        result = subprocess.run(["jq", ".", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"jq . {path}: {result.stderr}"
        assert json.loads(result.stdout) == json.loads(path.read_text())


def test_sql_dump_rebuilds_the_database_with_sqlite3(world, tmp_path):
    rebuilt = tmp_path / "new.db"
    with open(world["folder"] / "database/mirix_dump.sql", "rb") as dump:
        result = subprocess.run(["sqlite3", str(rebuilt)], stdin=dump, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    assert_same_database(world["source_db"], rebuilt)


def test_database_file_in_the_folder_is_the_snapshot(world):
    assert_same_database(world["source_db"], world["folder"] / "database/sqlite.db")


def test_memory_json_row_counts_equal_the_database(world):
    conn = ro(world["source_db"])
    try:
        for kind, table in DEFAULT_MEMORY_TABLES.items():
            doc = json.loads((world["folder"] / "memories" / memory_file_name(kind)).read_text())
            count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            assert count > 0
            assert doc["row_count"] == count, kind
            assert len(doc["rows"]) == count, kind
            ids = conn.execute(f'SELECT rowid, id FROM "{table}" ORDER BY rowid').fetchall()
            assert [(r["$rowid"], r["id"]) for r in doc["rows"]] == ids, kind
    finally:
        conn.close()


def test_metadata_holds_true_values(world):
    folder, snap = world["folder"], world["snap"]
    meta = json.loads((folder / "metadata.json").read_text())
    info = meta["backup_info"]
    files = folder_listing(folder)

    assert info["version"] == FOLDER_VERSION
    assert datetime.fromisoformat(info["timestamp"].replace("Z", "+00:00")) == datetime.fromisoformat(snap.time)
    assert isinstance(info["mirix_version"], str) and info["mirix_version"]
    assert info["database_type"] == "sqlite"
    assert info["snapstore_version"] == snapstore.__version__
    assert info["file_count"] == len(files)
    listed = set(meta["checksums"])
    assert listed == files - {"metadata.json", "verification/checksums.md5"}
    for rel, digest in meta["checksums"].items():
        assert md5_of(folder / rel) == digest, rel
    listed_size = sum((folder / rel).stat().st_size for rel in listed)
    total_size = sum((folder / rel).stat().st_size for rel in files)
    assert listed_size <= info["backup_size_bytes"] <= total_size

    ver = meta["verification"]
    assert ver["integrity_check"] == "passed"
    assert ver["completeness_check"] == "passed"
    conn = ro(world["source_db"])
    try:
        counts = {kind: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                  for kind, t in DEFAULT_MEMORY_TABLES.items()}
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        conn.close()
    assert ver["memory_counts"] == counts
    assert ver["conversation_count"] == messages
    assert isinstance(ver["compression_ratio"], (int, float)) and ver["compression_ratio"] > 0


def test_schema_info_describes_the_database(world):
    info = json.loads((world["folder"] / "database/schema_info.json").read_text())
    conn = ro(world["source_db"])
    try:
        for table in ("block", "episodic_memory", "semantic_memory", "messages", "agents"):
            assert info["tables"][table]["row_count"] == conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            columns = [c[1] for c in conn.execute(f'PRAGMA table_info("{table}")')]
            assert [c["name"] for c in info["tables"][table]["columns"]] == columns
        indexes = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")}
        triggers = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    finally:
        conn.close()
    assert {i["name"] for i in info["indexes"]} == indexes
    assert {t["name"] for t in info["triggers"]} == triggers and len(triggers) == 3 * len(FTS_COLUMNS)


def test_backup_report_counts_memories_conversations_and_sanitising(world):
    report = (world["folder"] / "verification/backup_report.txt").read_text()
    conn = ro(world["source_db"])
    try:
        for kind, table in DEFAULT_MEMORY_TABLES.items():
            count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            assert re.search(rf"\b{kind}\b\s+{count}\b", report), f"no count for {kind} in report"
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        conn.close()
    assert re.search(rf"conversations\s+{messages}\b", report)
    for key in ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY", "MIRIX_PG_PASSWORD", "api_key"):
        assert key in report, f"report does not say that {key} was removed"


def test_logs_are_exported_as_they_were(world):
    for name in ("agent.log", "security.log"):
        assert (world["folder"] / "logs" / name).read_bytes() == (Path(world["agent"].directory) / "logs" / name).read_bytes()


def test_no_secret_leaks_into_the_folder(world):
    for secret in secret_values(world["agent"]):
        assert grep_folder(world["folder"], secret) == [], "a secret leaked"
    config = yaml.safe_load((world["folder"] / "config/mirix.yaml").read_text())
    assert config["llm_config"]["api_key"] == MARKER
    env = dict(parse_env((world["folder"] / "config/environment.env").read_text()))
    assert env["OPENAI_API_KEY"] == MARKER and env["MIRIX_PG_PASSWORD"] == MARKER
    assert env["MIRIX_LOG_LEVEL"] == "INFO"


def test_no_sanitize_keeps_the_settings_secrets(world, tmp_path):
    dest = tmp_path / "unsanitized"
    ok(run_cli("export", world["snap"].id, dest, "--no-sanitize", repo=world["repo_path"]))
    original = Path(world["agent"].config_path).read_bytes()
    assert (dest / "config/mirix.yaml").read_bytes() == original
    api_key = yaml.safe_load(original)["llm_config"]["api_key"]
    assert grep_folder(dest, api_key) == ["config/mirix.yaml"]
    assert json.loads((dest / "metadata.json").read_text())["backup_info"]["sanitized"] is False
    env_file = Path(world["agent"].directory) / ".env"
    assert (dest / "config/environment.env").read_bytes() == env_file.read_bytes()
    for secret in secret_values(world["agent"])[:-1]:  # the agent's .env, as it is
        assert grep_folder(dest, secret) == ["config/environment.env"]
    assert subprocess.run(["md5sum", "-c", "--quiet", "verification/checksums.md5"], cwd=dest).returncode == 0


def test_exporting_twice_gives_byte_identical_folders(world, tmp_path):
    export_snapshot(world["repo"], world["snap"].id, tmp_path / "again")
    ok(run_cli("export", world["snap"].id, tmp_path / "cli", repo=world["repo_path"]))
    first = folder_bytes(world["folder"])
    assert folder_bytes(tmp_path / "again") == first
    assert folder_bytes(tmp_path / "cli") == first


def test_compressed_export(world, tmp_path):
    dest = tmp_path / "compressed"
    ok(run_cli("export", world["snap"].id, dest, "--compress", repo=world["repo_path"]))
    files = folder_listing(dest)
    meta = json.loads((dest / "metadata.json").read_text())
    info = meta["backup_info"]
    zst = {f for f in files if f.endswith(".zst")}
    assert zst, "a 5 MB database must be written compressed"
    assert info["compressed"] is True
    assert set(info["compressed_files"]) == zst
    assert info["file_count"] == len(files)
    assert set(meta["checksums"]) == files - {"metadata.json", "verification/checksums.md5"}
    plain = folder_bytes(world["folder"])
    for name, entry in info["compressed_files"].items():
        original = name[:-len(".zst")]
        assert entry["original"] == original and original not in files
        data = zstandard.ZstdDecompressor().decompressobj().decompress((dest / name).read_bytes())
        assert hashlib.md5(data).hexdigest() == entry["original_md5"] == md5_of(world["folder"] / original)
        assert len(data) == entry["original_size"]
        assert data == plain[original]
    for rel in files - zst - {"metadata.json", "verification/checksums.md5", "verification/backup_report.txt"}:
        assert (dest / rel).read_bytes() == plain[rel], rel
    result = subprocess.run(["md5sum", "-c", "--strict", "verification/checksums.md5"], cwd=dest,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

    again = tmp_path / "compressed-again"
    ok(run_cli("export", world["snap"].id, again, "--compress", repo=world["repo_path"]))
    assert folder_bytes(again) == folder_bytes(dest)

    imported = json.loads(ok(run_cli("import", dest, "--json", repo=world["repo_path"])).stdout)
    target = tmp_path / "from-compressed.db"
    ok(run_cli("restore", imported["snapshot_id"], "--to", target, repo=world["repo_path"]))
    assert_same_database(world["source_db"], target)



def test_progress_counts_every_byte_of_database_dump_and_memories(world, tmp_path):
    counted = []
    export_snapshot(world["repo"], world["snap"].id, tmp_path / "again", progress=counted.append)
    root = tmp_path / "again"
    written = sum((root / rel).stat().st_size for rel in
                  ["database/sqlite.db", "database/mirix_dump.sql",
                   *(f"memories/{memory_file_name(kind)}" for kind in DEFAULT_MEMORY_TABLES)])
    assert all(n > 0 for n in counted) and sum(counted) == written


def test_exported_config_keeps_the_users_lines_and_comments(world):
    """Only the secret values change (in place); comments, order and every other line stay."""
    original = Path(world["agent"].config_path).read_text().splitlines()
    exported = (world["folder"] / "config/mirix.yaml").read_text().splitlines()
    assert len(exported) == len(original) and original[0].startswith("#") and exported[0] == original[0]
    changed = [(a, b) for a, b in zip(original, exported) if a != b]
    assert changed and all(b.endswith(f"'{MARKER}'") and a.split(":")[0] == b.split(":")[0] for a, b in changed)
