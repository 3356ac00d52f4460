"""Encrypted repositories (format v2) end to end: what is stored reveals nothing, every kind
of tampering is found and named, and a wrong or missing passphrase is refused cleanly."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import blake3
import msgpack
import pytest

from backends import RepoObjects
from helpers import SNAPSTORE, cli_env, ok, run_cli, table_checksums
from snapstore.repository import Repository
from snapstore.sample_agent import create_sample_agent

PASSWORD = "correct horse battery staple"
PLANTED = {
    "config": "sk-PLANTEDconfigKEY0123456789abcdef",
    "env": "PLANTED-env-token-9f8e7d6c5b4a",
    "memory": "PLANTED memory about the garden shed 77",
    "vault": "PLANTED-vault-password-Zq81",
}
# what a reader of plaintext packs, indexes or manifests would see
STRUCTURE = [b"episodic_memory", b"knowledge_vault", b"database/sqlite.db", b"mirix.yaml", b"fastcdc-16k",
             b"fixed-4096", b"sanitized", b"summary", b"CREATE TABLE", b"SQLite format 3"]


def _agent(root: Path, seed: int = 11):
    agent = create_sample_agent(root / "agent", scale=2, seed=seed)
    cfg = Path(agent.config_path)
    cfg.write_text(cfg.read_text() + f"openai_api_key: {PLANTED['config']}\n")
    with open(cfg.parent / ".env", "a") as f:
        f.write(f"MIRIX_SERVICE_TOKEN={PLANTED['env']}\n")
    with sqlite3.connect(agent.db_path) as conn:
        conn.execute("UPDATE episodic_memory SET summary = ? WHERE rowid = (SELECT min(rowid) FROM episodic_memory)",
                     (PLANTED["memory"],))
        conn.execute("UPDATE knowledge_vault SET secret_value = ? "
                     "WHERE rowid = (SELECT min(rowid) FROM knowledge_vault)", (PLANTED["vault"],))
    return agent


def _env(tmp_path: Path, **extra) -> dict:
    return cli_env(SNAPSTORE_PASSWORD=PASSWORD, XDG_CACHE_HOME=str(tmp_path / "cache"), **extra)


def _found(data: bytes, needles) -> list:
    return [n for n in needles if n in data]


def _every_byte(repo: str, tmp_path: Path) -> bytes:
    """All objects of the repository and everything snapstore cached about it, concatenated."""
    objects = RepoObjects(repo)
    parts = [objects.read(name) for name in objects.names()]
    parts += [p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    return b"\0".join(parts)


def test_round_trip_reveals_nothing(repo_url, tmp_path):
    agent = _agent(tmp_path)
    env = _env(tmp_path)
    made = json.loads(ok(run_cli("init", "--encrypt", "--json", repo=repo_url, env=env)).stdout)
    assert made["encrypted"] and made["version"] == 2
    ok(run_cli("backup", "--config", agent.config_path, "--include-logs", repo=repo_url, env=env))
    ok(run_cli("sample-agent", "--mutate", "0.02", Path(agent.config_path).parent, env=env))
    ok(run_cli("backup", "--config", agent.config_path, "--include-logs", repo=repo_url, env=env))
    snaps = json.loads(ok(run_cli("snapshots", "--json", repo=repo_url, env=env)).stdout)
    assert len(snaps) == 2
    ok(run_cli("verify", "--full", repo=repo_url, env=env))

    restored = tmp_path / "restored.db"
    ok(run_cli("restore", "latest", "--to", restored, repo=repo_url, env=env))
    assert table_checksums(restored) == table_checksums(Path(agent.db_path))
    dumped = tmp_path / "dumped.db"
    dumped.write_bytes(ok_bytes(run_cli_bytes("dump", "latest", "database/sqlite.db", repo=repo_url, env=env)))
    assert table_checksums(dumped) == table_checksums(Path(agent.db_path))
    ok(run_cli("export", "latest", tmp_path / "folder", repo=repo_url, env=env))
    assert (tmp_path / "folder" / "metadata.json").is_file()
    diff = json.loads(ok(run_cli("diff", snaps[0]["id"], snaps[1]["id"], "--json", repo=repo_url, env=env)).stdout)
    assert diff["tables"]["episodic_memory"]["added"] + diff["tables"]["episodic_memory"]["changed"] > 0
    live = json.loads(ok(run_cli("diff", "latest", "--live", "--config", agent.config_path, "--json",
                                 repo=repo_url, env=env)).stdout)
    assert all(t["added"] == t["removed"] == t["changed"] == 0 for t in live["tables"].values())

    stored = _every_byte(repo_url, tmp_path)
    secrets = [s.encode() for s in PLANTED.values()] + [PASSWORD.encode()]
    assert _found(stored, secrets + STRUCTURE) == []


def test_plaintext_control_shows_the_grep_can_find(tmp_path):
    """The same grep on an unencrypted repository does find manifest keys and paths."""
    agent = _agent(tmp_path)
    repo = str(tmp_path / "repo")
    env = _env(tmp_path)
    ok(run_cli("init", "--insecure-no-encryption", repo=repo, env=env))
    ok(run_cli("backup", "--config", agent.config_path, repo=repo, env=env))
    assert b"database/sqlite.db" in _every_byte(repo, tmp_path)


def run_cli_bytes(*args, repo, env):
    return subprocess.run([*SNAPSTORE, "--repo", str(repo), *map(str, args)], capture_output=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=300)


def ok_bytes(result) -> bytes:
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


@pytest.fixture(scope="module")
def encrypted_repo(tmp_path_factory):
    """An encrypted local repository with two snapshots, copied by each tampering test."""
    root = tmp_path_factory.mktemp("enc")
    agent = _agent(root)
    env = _env(root)
    repo = root / "repo"
    ok(run_cli("init", "--encrypt", repo=repo, env=env))
    ok(run_cli("backup", "--config", agent.config_path, repo=repo, env=env))
    ok(run_cli("sample-agent", "--mutate", "0.02", Path(agent.config_path).parent, env=env))
    ok(run_cli("backup", "--config", agent.config_path, repo=repo, env=env))
    return repo


def _copy(encrypted_repo: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(encrypted_repo, repo)
    return repo


def _one(repo: Path, prefix: str, largest: bool = True) -> str:
    objects = RepoObjects(repo)
    names = objects.names(prefix)
    return max(names, key=objects.size) if largest else min(names, key=objects.size)


def _flip_and_keep_name(repo: Path, name: str, offset: int) -> None:
    RepoObjects(repo).flip(name, offset)


@pytest.mark.parametrize("kind", ["data payload", "tree payload", "trailer"])
def test_tampered_pack_is_named_by_verify(encrypted_repo, tmp_path, kind):
    repo = _copy(encrypted_repo, tmp_path)
    opened = Repository.open(repo, password=PASSWORD)
    trees = set(opened.index.tree_pack_ids())
    packs = {info.pack_id: info for info in opened.index.pack_infos()}
    data_pack = max((p for p in packs if p not in trees), key=lambda p: packs[p].size)
    tree_pack = next(iter(trees))
    pack = tree_pack if kind == "tree payload" else data_pack
    name = f"data/{pack.hex()[:2]}/{pack.hex()}"
    size = RepoObjects(repo).size(name)
    offset = size - 20 if kind == "trailer" else 8 + 40  # inside the trailer / inside the first payload
    _flip_and_keep_name(repo, name, offset)
    env = _env(tmp_path)
    result = run_cli("verify", "--full", "--json", repo=repo, env=env)
    assert result.returncode == 4, result.stderr
    assert pack.hex()[:16] in result.stdout + result.stderr


def test_tampered_index_and_manifest_are_named(encrypted_repo, tmp_path):
    repo = _copy(encrypted_repo, tmp_path)
    index_name = _one(repo, "index/")
    snapshot_name = _one(repo, "snapshots/", largest=False)
    env = _env(tmp_path)
    # re-store the tampered bytes under the name of their new hash: the name check passes,
    # only authentication can tell
    for name in (index_name, snapshot_name):
        objects = RepoObjects(repo)
        data = bytearray(objects.read(name))
        data[len(data) // 2] ^= 0x01
        objects.storage.delete(name)
        objects.write(f"{name.split('/')[0]}/{blake3.blake3(bytes(data)).hexdigest()}", bytes(data))
    result = run_cli("verify", "--json", repo=repo, env=env)
    assert result.returncode == 4
    report = result.stdout + result.stderr
    assert "fails authentication" in report


def test_a_set_passphrase_makes_init_encrypt(tmp_path):
    made = json.loads(ok(run_cli("init", "--json", repo=tmp_path / "a", env=_env(tmp_path))).stdout)
    assert made["encrypted"] and made["version"] == 2
    plain = json.loads(ok(run_cli("init", "--json", repo=tmp_path / "b", env=cli_env())).stdout)
    assert not plain["encrypted"] and plain["version"] == 1
    opted_out = run_cli("init", "--insecure-no-encryption", repo=tmp_path / "c", env=_env(tmp_path))
    assert Repository.open(tmp_path / "c").config.version == 1, opted_out.stderr
    both = run_cli("init", "--encrypt", "--insecure-no-encryption", repo=tmp_path / "d", env=_env(tmp_path))
    assert both.returncode == 2 and "contradict" in both.stderr


def test_wrong_and_missing_passphrase(encrypted_repo, tmp_path):
    wrong = run_cli("snapshots", repo=encrypted_repo, env=cli_env(SNAPSTORE_PASSWORD="not it"))
    assert wrong.returncode == 12
    assert wrong.stderr.strip().splitlines() == [f"snapstore: wrong passphrase for {encrypted_repo}"]
    missing = run_cli("snapshots", repo=encrypted_repo, env=cli_env())
    assert missing.returncode == 2
    assert "SNAPSTORE_PASSWORD" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSWORD + "\n")
    ok(run_cli("snapshots", repo=encrypted_repo, env=cli_env(SNAPSTORE_PASSWORD_FILE=str(pw_file))))


def test_plaintext_repositories_stay_version_1(tmp_path):
    repo = Repository.init(tmp_path / "repo")
    assert repo.config.version == 1 and not repo.cipher.encrypted
    assert not list((tmp_path / "repo" / "keys").iterdir())


def test_a_swapped_in_plaintext_config_is_refused(encrypted_repo, tmp_path):
    """Downgrade: whoever can write the repository replaces the config with a plaintext one;
    snapstore must not then write plaintext into it."""
    repo = _copy(encrypted_repo, tmp_path)
    objects = RepoObjects(repo)
    config = msgpack.unpackb(objects.read("config"))
    config.update(version=1, encryption=None)
    objects.write("config", msgpack.packb(config))
    result = run_cli("snapshots", repo=repo, env=_env(tmp_path))
    assert result.returncode == 4
    assert "downgrade refused" in result.stderr
