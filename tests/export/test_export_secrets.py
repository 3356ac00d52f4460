"""Secrets in what an export writes (issue 13, part 3).

A sample agent gets planted secrets: an API key in ``mirix.yaml``, a password in a
PostgreSQL URL (config and ``.env``), tokens in ``.env``, and knowledge vault secrets
of each sensitivity (plus one of an unknown level, and a deleted high row whose bytes
stay in the database file's free space).  Every byte of each exported folder is
searched for each of them.  Kinds of files in a folder and how they are searched:
text (JSON, SQL, YAML, env, report, checksums, logs) byte for byte; ``.zst`` files
decompressed first; SQLite files byte for byte (free space included) *and* as the
rows ``iterdump`` gives, since a value could straddle two overflow pages of the
file.  ``test_every_file_is_of_a_searched_kind`` fails on any other kind.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
import zstandard

from dbcompare import ro
from helpers import ok, run_cli, table_checksums
from snapstore.agent_api import verify_backup
from snapstore.errors import UsageError
from snapstore.export import export_snapshot
from snapstore.export.vault import LEVELS
from snapstore.manifest import resolve_snapshot
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent
from snapstore.sanitize import MARKER
from snapstore.sqlite_uri import sqlite_uri

TEXT_KINDS = (".json", ".sql", ".yaml", ".env", ".txt", ".md5", ".log")


def planted(tag: str) -> str:
    return f"{tag}-PLANTED-{secrets.token_hex(12)}"


API_KEY = "sk-" + planted("llmkey")
PG_PASSWORD = planted("pgpw")
PG_ENV_PASSWORD = planted("pgenvpw")
TOKEN = "hf_" + planted("token")
GITHUB_TOKEN = planted("ghtoken")
SETTINGS = {"api key in mirix.yaml": API_KEY, "postgres URL password in mirix.yaml": PG_PASSWORD,
            "postgres URL password in .env": PG_ENV_PASSWORD, "token in .env": TOKEN,
            "token under a *_TOKEN key in .env": GITHUB_TOKEN}
VAULT = {"high": planted("vaulthigh"), "medium": planted("vaultmedium"), "low": planted("vaultlow"),
         "top-secret": planted("vaultunknown"), "deleted-high": planted("vaultdeleted")}


# -- searching every byte ----------------------------------------------------------------------

def folder_contents(root: Path) -> dict[str, bytes]:
    """Every file of the folder (decompressed); SQLite files also as their rows (``... (rows)``)."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        if rel.endswith(".zst"):
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
            rel = rel[:-len(".zst")]
        out[rel] = data
        if rel.endswith(".db"):
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / "copy.db"
                copy.write_bytes(data)
                conn = sqlite3.connect(sqlite_uri(copy, mode="ro"), uri=True)
                try:
                    out[rel + " (rows)"] = "\n".join(conn.iterdump()).encode()
                finally:
                    conn.close()
    return out


def hits(root: Path, needle: str) -> list[str]:
    return sorted(rel for rel, data in folder_contents(root).items() if needle.encode() in data)


# -- the agent, its backup and its exports ----------------------------------------------------

def plant_vault(db_path: Path) -> dict[str, str]:
    """Vault rows with the planted secrets; returns {sensitivity: row id}.  The deleted rows are
    inserted and deleted with ``secure_delete`` off, as a build without it leaves them: their
    bytes stay in the file's free pages."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete=OFF")
        cols = [r[1] for r in conn.execute("PRAGMA table_info(knowledge_vault)")]
        ids = [i for (i,) in conn.execute("SELECT id FROM knowledge_vault ORDER BY rowid")]
        assert len(ids) >= 4
        placed = {}
        for row_id, level in zip(ids, ("high", "medium", "low", "top-secret")):
            conn.execute("UPDATE knowledge_vault SET sensitivity = ?, secret_value = ? WHERE id = ?",
                         (level, VAULT[level], row_id))
            placed[level] = row_id
        row = list(conn.execute("SELECT * FROM knowledge_vault WHERE id = ?", (ids[0],)).fetchone())
        for n in range(40):  # more pages than redacting the rows above rewrites
            row[cols.index("id")] = f"kv_deleted_{n}"
            row[cols.index("secret_value")] = VAULT["deleted-high"]
            conn.execute(f"INSERT INTO knowledge_vault VALUES ({', '.join('?' * len(cols))})", row)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("DELETE FROM knowledge_vault WHERE id LIKE 'kv_deleted_%'")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    assert VAULT["deleted-high"].encode() in db_path.read_bytes(), "the deleted row's bytes must stay in the file"
    return placed


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets")
    agent = create_sample_agent(root / "agent", scale=0.3, seed=13)
    cfg = Path(agent.config_path)
    text = cfg.read_text()
    text = text.replace(yaml.safe_load(text)["llm_config"]["api_key"], API_KEY)
    cfg.write_text(text + f"pg_replica_url: postgresql://mirix:{PG_PASSWORD}@replica.internal:5432/mirix\n")
    env = Path(agent.directory) / ".env"
    env.write_text(env.read_text() + f"# tokens\nHF_TOKEN={TOKEN}\nGITHUB_TOKEN=\"{GITHUB_TOKEN}\"\n"
                   f"export MIRIX_PG_URI='postgresql://mirix:{PG_ENV_PASSWORD}@db:5432/mirix'\n")
    vault_ids = plant_vault(Path(agent.db_path))
    repo_path = root / "repo"
    ok(run_cli("init", repo=repo_path))
    ok(run_cli("backup", "--config", cfg, "--include-logs", repo=repo_path))
    repo = Repository.open(repo_path)
    snap = resolve_snapshot(repo, "latest")
    folders = {"default": root / "default", "compressed": root / "compressed", "raw": root / "raw",
               "high": root / "high", "medium": root / "medium"}
    export_snapshot(repo, snap.id, folders["default"])
    export_snapshot(repo, snap.id, folders["compressed"], compress=True)
    ok(run_cli("export", "latest", folders["raw"], "--no-sanitize", repo=repo_path))
    ok(run_cli("export", "latest", folders["high"], "--redact-vault", "HIGH", "--compress", repo=repo_path))
    ok(run_cli("export", "latest", folders["medium"], "--redact-vault", "medium", repo=repo_path))
    return {"root": root, "agent": agent, "repo": repo, "repo_path": repo_path, "snap": snap,
            "folders": folders, "vault_ids": vault_ids}


def report(folder: Path) -> str:
    return (folder / "verification/backup_report.txt").read_text()


def memory_rows(folder: Path) -> dict[str, dict]:
    doc = json.loads((folder / "memories/knowledge_vault.json").read_text())
    return {row["id"]: row for row in doc["rows"]}


# -- tests ------------------------------------------------------------------------------------

def test_every_file_is_of_a_searched_kind(world):
    for folder in world["folders"].values():
        for rel in folder_contents(folder):
            assert rel.endswith(" (rows)") or rel.endswith(TEXT_KINDS) or rel == "database/sqlite.db", rel


def test_the_search_sees_each_planted_secret_where_it_is_kept(world):
    """The positive control: the unsanitised folder holds each setting in its file, and a
    folder without --redact-vault holds the vault's (as the agent does)."""
    raw = world["folders"]["raw"]
    assert hits(raw, API_KEY) == hits(raw, PG_PASSWORD) == ["config/mirix.yaml"]
    for value in (PG_ENV_PASSWORD, TOKEN, GITHUB_TOKEN):
        assert hits(raw, value) == ["config/environment.env"]
    agent_dir = Path(world["agent"].directory)
    assert (raw / "config/mirix.yaml").read_bytes() == Path(world["agent"].config_path).read_bytes()
    assert (raw / "config/environment.env").read_bytes() == (agent_dir / ".env").read_bytes()
    for level in ("high", "medium", "low", "top-secret"):
        assert hits(world["folders"]["default"], VAULT[level]) == [
            "database/mirix_dump.sql", "database/sqlite.db", "database/sqlite.db (rows)",
            "memories/knowledge_vault.json"]
    assert hits(world["folders"]["default"], VAULT["deleted-high"]) == ["database/sqlite.db"]
    assert "off (exported with --no-sanitize)" in report(raw)


@pytest.mark.parametrize("name", ["default", "compressed", "high", "medium"])
def test_no_setting_secret_in_a_sanitised_folder(world, name):
    folder = world["folders"][name]
    for what, value in SETTINGS.items():
        assert hits(folder, value) == [], f"{what} leaked into the {name} export"


def test_report_names_what_was_removed_and_the_files_keep_their_shape(world):
    folder = world["folders"]["default"]
    text = report(folder)
    for item in ("config/mirix.yaml:llm_config.api_key", "config/mirix.yaml:pg_replica_url",
                 "config/environment.env:HF_TOKEN", "config/environment.env:GITHUB_TOKEN",
                 "config/environment.env:MIRIX_PG_URI", "config/environment.env:OPENAI_API_KEY",
                 "config/environment.env:MIRIX_PG_PASSWORD"):
        assert f"removed secret: {item}\n" in text
    assert "MIRIX_LOG_LEVEL" not in text and "MIRIX_PG_USER" not in text
    config = yaml.safe_load((folder / "config/mirix.yaml").read_text())
    assert config["llm_config"]["api_key"] == MARKER
    assert config["pg_replica_url"] == f"postgresql://mirix:{MARKER}@replica.internal:5432/mirix"
    env = (folder / "config/environment.env").read_text()
    assert f"export MIRIX_PG_URI='postgresql://mirix:{MARKER}@db:5432/mirix'\n" in env
    assert f'GITHUB_TOKEN="{MARKER}"\n' in env and "# tokens\n" in env and "MIRIX_LOG_LEVEL=INFO\n" in env
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["backup_info"]["sanitized"] is True and meta["backup_info"]["vault_redaction"] is None


@pytest.mark.parametrize("name", ["default", "compressed", "high"])
def test_sanitised_and_redacted_folders_verify(world, name):
    folder = world["folders"][name]
    check = subprocess.run(["md5sum", "-c", "--strict", "--quiet", "verification/checksums.md5"], cwd=folder,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    meta = json.loads((folder / "metadata.json").read_text())
    for rel, digest in meta["checksums"].items():
        assert hashlib.md5((folder / rel).read_bytes()).hexdigest() == digest, rel
    result = verify_backup(folder)
    assert result["valid"], result["errors"]
    ok(run_cli("verify-folder", folder))


def test_sanitised_folder_imports_and_restores(world, tmp_path):
    folder = world["folders"]["default"]
    other = tmp_path / "repo"
    ok(run_cli("init", repo=other))
    ok(run_cli("import", folder, repo=other))
    restored = tmp_path / "restored.db"
    ok(run_cli("restore", folder, "--to", restored, repo=other))
    assert table_checksums(restored) == table_checksums(Path(world["agent"].db_path))


def test_redact_vault_high_removes_high_and_unknown_keeps_the_rest(world):
    folder = world["folders"]["high"]
    for level in ("high", "top-secret", "deleted-high"):
        assert hits(folder, VAULT[level]) == [], f"vault secret of sensitivity {level} left in the export"
    for level in ("medium", "low"):
        assert hits(folder, VAULT[level]) == [
            "database/mirix_dump.sql", "database/sqlite.db", "database/sqlite.db (rows)",
            "memories/knowledge_vault.json"]
    rows = memory_rows(folder)
    ids = world["vault_ids"]
    assert rows[ids["high"]]["secret_value"] == rows[ids["top-secret"]]["secret_value"] == MARKER
    assert rows[ids["low"]]["secret_value"] == VAULT["low"]
    # everything but the secret is as it was, rowids included (the memory files of both agree)
    plain = memory_rows(world["folders"]["default"])
    assert set(rows) == set(plain)
    for row_id, row in rows.items():
        assert {k: v for k, v in row.items() if k != "secret_value"} == \
               {k: v for k, v in plain[row_id].items() if k != "secret_value"}
    redacted = sum(1 for r in plain.values() if r["sensitivity"] not in ("low", "medium"))
    assert sum(1 for r in rows.values() if r["secret_value"] == MARKER) == redacted
    assert f"redacted: {redacted} rows of knowledge_vault" in report(folder)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["backup_info"]["vault_redaction"] == {"level": "high", "table": "knowledge_vault",
                                                     "redacted": redacted, "kept": len(rows) - redacted}


def test_redact_vault_medium_also_removes_medium(world):
    folder = world["folders"]["medium"]
    for level in ("high", "medium", "top-secret", "deleted-high"):
        assert hits(folder, VAULT[level]) == []
    assert "memories/knowledge_vault.json" in hits(folder, VAULT["low"])
    conn = ro(folder / "database/sqlite.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = dict(conn.execute("SELECT sensitivity, secret_value FROM knowledge_vault WHERE sensitivity = 'low'"))
    finally:
        conn.close()
    assert kept["low"] != MARKER
    rebuilt = world["root"] / "from-dump.db"
    with open(folder / "database/mirix_dump.sql", "rb") as dump:
        assert subprocess.run(["sqlite3", str(rebuilt)], stdin=dump, capture_output=True).returncode == 0
    assert table_checksums(rebuilt) == table_checksums(folder / "database/sqlite.db")


def test_an_unknown_level_is_refused_before_anything_is_written(world, tmp_path):
    result = run_cli("export", "latest", tmp_path / "x", "--redact-vault", "secret", repo=world["repo_path"])
    assert result.returncode == 2 and "secret" in result.stderr and not (tmp_path / "x").exists()
    with pytest.raises(UsageError, match="low, medium, high"):
        export_snapshot(world["repo"], world["snap"].id, tmp_path / "y", redact_vault="top")
    assert not (tmp_path / "y").exists() and LEVELS == ("low", "medium", "high")


def test_save_agent_redacts_the_vault_when_asked(world, tmp_path, monkeypatch):
    from snapstore.agent_api import AgentWrapper

    monkeypatch.setenv("SNAPSTORE_REPO", str(tmp_path / "repo"))
    agent = AgentWrapper(world["agent"].config_path)
    result = agent.save_agent(tmp_path / "saved", redact_vault="high")
    assert result["success"], result.get("error")
    assert result["vault_redaction"]["level"] == "high" and result["vault_redaction"]["redacted"] >= 2
    assert "config/mirix.yaml:llm_config.api_key" in result["sanitized"]
    for value in (*SETTINGS.values(), VAULT["high"], VAULT["deleted-high"]):
        assert hits(tmp_path / "saved", value) == []
    bad = agent.save_agent(tmp_path / "bad", redact_vault="extreme")
    assert not bad["success"] and "extreme" in bad["error"] and not (tmp_path / "bad").exists()


# -- agent_config.json of a folder Mirix's save_agent wrote ----------------------------------

def test_agent_config_json_of_an_imported_mirix_folder_is_sanitised(world, tmp_path):
    folder = tmp_path / "mirix_save"
    folder.mkdir()
    src, dst = sqlite3.connect(world["agent"].db_path), sqlite3.connect(folder / "sqlite.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    key, password = "sk-" + planted("jsonkey"), planted("jsonpw")
    (folder / "agent_config.json").write_text(json.dumps({
        "agent_name": "mirix", "model_name": "gemini-2.0-flash", "openai_api_key": key,
        "llm_config": {"model": "gpt-4o", "api_key": key},
        "database": {"uri": f"postgresql://mirix:{password}@db/mirix"}, "backup_type": "sqlite"}, indent=2))
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    ok(run_cli("import", folder, repo=repo))
    out, raw = tmp_path / "out", tmp_path / "raw"
    ok(run_cli("export", "latest", out, repo=repo))
    ok(run_cli("export", "latest", raw, "--no-sanitize", repo=repo))
    assert hits(out, key) == hits(out, password) == []
    assert hits(raw, key) == hits(raw, password) == ["config/agent_config.json"]
    doc = json.loads((out / "config/agent_config.json").read_text())
    assert doc["openai_api_key"] == doc["llm_config"]["api_key"] == MARKER
    assert doc["database"]["uri"] == f"postgresql://mirix:{MARKER}@db/mirix" and doc["model_name"] == "gemini-2.0-flash"
    for item in ("openai_api_key", "llm_config.api_key", "database.uri"):
        assert f"removed secret: config/agent_config.json:{item}\n" in report(out)
    assert subprocess.run(["md5sum", "-c", "--quiet", "verification/checksums.md5"], cwd=out).returncode == 0


def test_cli_prints_what_was_sanitised_and_redacted(world, tmp_path):
    result = ok(run_cli("export", "latest", tmp_path / "o", "--redact-vault", "low", repo=world["repo_path"]))
    assert "sanitised" in result.stdout and "redacted" in result.stdout and "kept 0 below" in result.stdout
    for value in VAULT.values():
        assert hits(tmp_path / "o", value) == []
