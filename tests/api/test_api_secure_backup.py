"""Encrypted backup folders: no plaintext left, authenticated, opened only with the right key."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from api_helpers import db_execute, db_rows
from snapstore import (AgentWrapper, cleanup_old_backups, create_secure_backup, encrypt_backup_files,
                       monitor_backup_sizes, recover_database_only, recover_specific_memories,
                       remove_plaintext_sensitive, verify_backup)
from snapstore.agent_api import decrypt_backup_folder, is_backup_folder
from snapstore.errors import WrongKey

KEY = "correct horse battery staple"
DB = Path("configs/sqlite.db")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """Where decrypted copies go, so the test can see they are private and cleaned up."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def secure(home, private_tmp) -> tuple[AgentWrapper, Path]:
    agent = AgentWrapper("./configs/mirix.yaml")
    result = create_secure_backup(agent, "./secure_backup", encryption_key=KEY)
    assert result["success"] and result["encrypted"], result.get("error")
    assert result["file_count"] == sum(1 for p in Path("secure_backup").rglob("*") if p.is_file())
    return agent, Path("secure_backup")


def test_no_plaintext_left(secure):
    _, folder = secure
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "encryption.json" in files
    assert all(f.endswith(".enc") for f in files if f != "encryption.json")
    assert "database/sqlite.db.enc" in files and "metadata.json.enc" in files
    # nothing readable: not the SQLite header, the schema, the agent's words or its fake secrets
    env = Path("configs/.env").read_text()
    secrets = [line.split("=", 1)[1] for line in env.splitlines() if "KEY" in line]
    for path in folder.rglob("*.enc"):
        data = path.read_bytes()
        for needle in [b"SQLite format 3", b"CREATE TABLE", b"episodic", b"agent_name", *(s.encode() for s in secrets)]:
            assert needle not in data, (path, needle)
    header = json.loads((folder / "encryption.json").read_text())
    assert header["cipher"] == "AES-256-GCM" and header["kdf"]["name"] == "scrypt"
    assert remove_plaintext_sensitive(folder) == {"removed": [], "remaining_plaintext": []}


def test_verify_with_and_without_the_key(secure, private_tmp):
    _, folder = secure
    good = verify_backup(folder, encryption_key=KEY)
    assert good["valid"] and good["encrypted"] and good["backup_path"] == str(folder)
    for key, needle in ((None, "encryption_key"), ("wrong key", "wrong encryption key")):
        bad = verify_backup(folder, encryption_key=key)
        assert bad["valid"] is False and any(needle in e for e in bad["errors"]["file_integrity"])
    assert list(private_tmp.iterdir()) == []  # decrypted copies are removed


def test_decrypted_copy_is_private(secure, private_tmp, monkeypatch):
    _, folder = secure
    import snapstore.agent_api.verification as verification

    seen = {}
    real = verification.folder_verify.verify_backup

    def spy(plain, **kw):
        seen["mode"] = os.stat(Path(plain).parent).st_mode & 0o777
        seen["parent"] = Path(plain).parent
        return real(plain, **kw)

    monkeypatch.setattr(verification.folder_verify, "verify_backup", spy)
    assert verify_backup(folder, encryption_key=KEY)["valid"]
    assert seen["mode"] == 0o700 and seen["parent"].parent == private_tmp
    assert not seen["parent"].exists()


def test_load_with_the_key(secure):
    agent, folder = secure
    before = db_rows(DB, "messages")
    db_execute(DB, "DELETE FROM messages")
    result = agent.load_agent(folder, encryption_key=KEY)
    assert result["success"], result.get("error")
    assert db_rows(DB, "messages") == before and result["conversation_count"] == len(before)


def test_load_with_a_wrong_or_missing_key_fails_cleanly(secure):
    agent, folder = secure
    db_execute(DB, "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages LIMIT 2)")
    before = db_rows(DB, "messages")
    for key, needle in (("wrong", "wrong encryption key"), (None, "encrypted")):
        result = agent.load_agent(folder, encryption_key=key)
        assert result["success"] is False and needle in result["error"]
    assert db_rows(DB, "messages") == before
    with pytest.raises(Exception, match="wrong encryption key"):
        AgentWrapper("./configs/mirix.yaml", load_from=folder, encryption_key="wrong")


def test_tampered_or_renamed_file_fails_authentication(secure):
    _, folder = secure
    target = folder / "memories" / "core_memory.json.enc"
    data = bytearray(target.read_bytes())
    data[30] ^= 1
    target.write_bytes(bytes(data))
    result = verify_backup(folder, encryption_key=KEY)
    assert not result["valid"] and "fails authentication" in result["errors"]["file_integrity"][0]
    target.unlink()
    os.rename(folder / "memories" / "semantic_memory.json.enc", target)  # a swapped file
    assert not verify_backup(folder, encryption_key=KEY)["valid"]


def test_truncated_file_fails_authentication(secure, tmp_path):
    _, folder = secure
    target = folder / "database" / "sqlite.db.enc"
    size = target.stat().st_size
    with open(target, "r+b") as f:
        f.truncate(16 + (1 << 20) + 16)  # exactly the first whole segment: the end is gone
    assert size > (1 << 20) + 32
    with pytest.raises(Exception, match="fails authentication"):
        decrypt_backup_folder(folder, KEY, tmp_path / "out")


def test_helpers_open_encrypted_backups(secure):
    agent, folder = secure
    db_execute(DB, "DELETE FROM semantic_memory")
    recovered = recover_specific_memories(folder, ["semantic"], encryption_key=KEY)
    assert recovered.recovery_results["memory_types"]["semantic"]["inserted"] > 0
    db_execute(DB, "DELETE FROM messages")
    result = recover_database_only(folder, encryption_key=KEY)
    assert result["success"], result.get("error")
    assert len(db_rows(DB, "messages")) > 0


def test_encrypted_folders_are_backups_for_management(secure):
    _, folder = secure
    assert is_backup_folder(folder)
    stats = monitor_backup_sizes(".")
    assert [s["name"] for s in stats] == ["secure_backup"] and stats[0]["kind"] == "encrypted"
    old = 1_000_000_000
    os.utime(folder, (old, old))
    assert cleanup_old_backups(".", days_to_keep=7) == 1 and not folder.exists()


def test_without_a_key_it_is_a_plain_backup(home):
    agent = AgentWrapper("./configs/mirix.yaml")
    result = create_secure_backup(agent, "./plain_backup")
    assert result["success"] and result["encrypted"] is False
    assert verify_backup("./plain_backup")["valid"]


def test_encryption_resumes_with_the_same_key_only(home, tmp_path):
    agent = AgentWrapper("./configs/mirix.yaml")
    assert agent.save_agent("./b")["success"]
    done = encrypt_backup_files("./b", KEY)
    assert "metadata.json" in done
    Path("b/extra.txt").write_text("added later")
    with pytest.raises(WrongKey):
        encrypt_backup_files("./b", "another key")
    assert encrypt_backup_files("./b", KEY) == ["extra.txt"]
    decrypt_backup_folder("./b", KEY, tmp_path / "plain")
    assert (tmp_path / "plain" / "extra.txt").read_text() == "added later"
    assert verify_backup(tmp_path / "plain")["valid"]


def test_import_and_restore_name_an_encrypted_folder_as_such(secure, tmp_path):
    from helpers import assert_one_line_error, ok, run_cli

    _, folder = secure
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    assert_one_line_error(run_cli("import", folder.resolve(), repo=repo), "encrypted", "decrypt")
    assert_one_line_error(run_cli("restore", folder.resolve(), "--to", tmp_path / "x.db", repo=repo), "encrypted")
