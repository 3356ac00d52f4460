"""Key files (snapstore/crypto/keys.py) on real repositories: which passphrases open, what is
refused, what a damaged key file is reported as, and that no key file holds the master key."""
from __future__ import annotations

import os

import blake3
import msgpack
import pytest

from snapstore.crypto import keys as key_files
from snapstore.crypto.kdf import COST
from snapstore.errors import IntegrityError, UsageError, WrongKey
from snapstore.repository import Repository

FAST = {"n": 2 ** 10, "r": 8, "p": 1}  # the tests' key-derivation cost (the format stores it per key)


def init(path, password="first passphrase") -> Repository:
    return Repository.init(path, encrypt=True, password=password, kdf_cost=FAST)


def add(repo: Repository, password: str) -> str:
    return key_files.add_key(repo.storage, repo.config.repo_id, repo.cipher.key, password, FAST)


def key_path(repo: Repository, key_id: str):
    return repo.storage.root / "keys" / key_id


def test_added_key_opens_and_the_old_one_still_does(tmp_path):
    repo = init(tmp_path / "repo")
    second = add(repo, "second passphrase")
    assert second != repo.key_id and sorted(key_files.key_ids(repo.storage)) == sorted([repo.key_id, second])
    by_second = Repository.open(tmp_path / "repo", password="second passphrase")
    by_first = Repository.open(tmp_path / "repo", password="first passphrase")
    assert by_second.key_id == second and by_first.key_id == repo.key_id
    assert by_first.cipher.key == by_second.cipher.key == repo.cipher.key  # one master key, wrapped twice
    with pytest.raises(WrongKey, match="wrong passphrase"):
        Repository.open(tmp_path / "repo", password="third passphrase")


def test_removed_key_no_longer_opens(tmp_path):
    repo = init(tmp_path / "repo")
    second = add(repo, "second passphrase")
    assert key_files.remove_key(repo.storage, second[:8].upper(), current=repo.key_id) == second
    assert key_files.key_ids(repo.storage) == [repo.key_id]
    with pytest.raises(WrongKey):
        Repository.open(tmp_path / "repo", password="second passphrase")
    assert Repository.open(tmp_path / "repo", password="first passphrase").key_id == repo.key_id


def test_last_key_and_key_in_use_are_refused(tmp_path):
    repo = init(tmp_path / "repo")
    with pytest.raises(UsageError, match="last key"):
        key_files.remove_key(repo.storage, repo.key_id, current=None)
    second = add(repo, "second passphrase")
    with pytest.raises(UsageError, match="opened with"):
        key_files.remove_key(repo.storage, repo.key_id, current=repo.key_id)
    with pytest.raises(UsageError, match="no key"):
        key_files.remove_key(repo.storage, "ffffffffffff" if not second.startswith("ff") else "000000000000",
                             current=repo.key_id)
    with pytest.raises(UsageError, match="no key"):
        key_files.remove_key(repo.storage, "", current=repo.key_id)
    assert sorted(key_files.key_ids(repo.storage)) == sorted([repo.key_id, second])


def test_ambiguous_prefix_is_refused(tmp_path):
    repo = init(tmp_path / "repo")
    ids = [repo.key_id] + [add(repo, f"passphrase {i}") for i in range(20)]
    first_digits = {}
    for key_id in ids:
        first_digits.setdefault(key_id[0], []).append(key_id)
    shared = next(digit for digit, group in first_digits.items() if len(group) > 1)  # 21 ids, 16 digits
    with pytest.raises(UsageError, match="ambiguous"):
        key_files.remove_key(repo.storage, shared, current=None)
    assert len(key_files.key_ids(repo.storage)) == 21


def test_key_files_hold_no_plaintext_secret(tmp_path):
    repo = init(tmp_path / "repo", password="correct horse battery")
    add(repo, "another passphrase")
    master = repo.cipher.key
    secrets = [master.data_key, master.id_key, master.to_bytes(), master.data_key[:12], master.id_key[-12:],
               b"correct horse battery", b"another passphrase"]
    stored = b"".join(p.read_bytes() for p in sorted((tmp_path / "repo").rglob("*")) if p.is_file())
    assert len(list((tmp_path / "repo" / "keys").iterdir())) == 2
    for secret in secrets:
        assert secret not in stored
        assert secret.hex().encode() not in stored


def test_key_file_format_and_name(tmp_path):
    repo = init(tmp_path / "repo")
    data = key_path(repo, repo.key_id).read_bytes()
    assert blake3.blake3(data).hexdigest()[:32] == repo.key_id  # named by its bytes
    doc = msgpack.unpackb(data)
    assert doc["v"] == 1 and doc["kdf"]["name"] == "scrypt" and {k: doc["kdf"][k] for k in "nrp"} == FAST
    assert len(doc["wrapped"]) == 12 + 64 + 16
    info, = key_files.list_keys(repo.storage)
    assert (info.key_id, info.cost, info.damage) == (repo.key_id, FAST, "")
    assert info.host and info.user and info.created > 0


def test_default_cost_is_stored(tmp_path):
    repo = Repository.init(tmp_path / "repo", encrypt=True, password="pw")
    assert key_files.list_keys(repo.storage)[0].cost == COST


def _rewrite(repo: Repository, key_id: str, data: bytes) -> None:
    path = key_path(repo, key_id)
    os.chmod(path, 0o600)
    path.write_bytes(data)


@pytest.mark.parametrize("where", ["wrapped", "salt", "anywhere"])
def test_tampered_key_file_is_damage_naming_the_file(tmp_path, where):
    repo = init(tmp_path / "repo")
    data = bytearray(key_path(repo, repo.key_id).read_bytes())
    doc = msgpack.unpackb(bytes(data))
    needle = doc["wrapped"] if where == "wrapped" else doc["kdf"]["salt"] if where == "salt" else None
    offsets = [data.index(needle) + i for i in range(len(needle))] if needle else range(len(data))
    for i in list(offsets)[::7] + [list(offsets)[-1]]:
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        _rewrite(repo, repo.key_id, bytes(tampered))
        with pytest.raises(IntegrityError) as raised:  # the right passphrase: damage, not "wrong passphrase"
            Repository.open(tmp_path / "repo", password="first passphrase")
        assert not isinstance(raised.value, WrongKey)
        assert f"keys/{repo.key_id}" in str(raised.value) and "damaged" in str(raised.value)
        assert raised.value.exit_code == 4
    _rewrite(repo, repo.key_id, bytes(data))
    assert Repository.open(tmp_path / "repo", password="first passphrase").key_id == repo.key_id


def test_damaged_key_beside_an_intact_one(tmp_path):
    repo = init(tmp_path / "repo")
    second = add(repo, "second passphrase")
    data = bytearray(key_path(repo, second).read_bytes())
    data[-3] ^= 0x40  # inside `wrapped`, the last field
    _rewrite(repo, second, bytes(data))
    # the intact key still opens; the damaged one's passphrase is told about the damage
    assert Repository.open(tmp_path / "repo", password="first passphrase").key_id == repo.key_id
    with pytest.raises(IntegrityError, match=f"no intact key file opens.*keys/{second} is damaged") as raised:
        Repository.open(tmp_path / "repo", password="second passphrase")
    assert not isinstance(raised.value, WrongKey)
    infos = {info.key_id: info for info in key_files.list_keys(repo.storage, strict=False)}
    assert infos[repo.key_id].damage == "" and "damaged" in infos[second].damage
    with pytest.raises(IntegrityError, match=second):
        key_files.list_keys(repo.storage)
    key_files.remove_key(repo.storage, second, current=repo.key_id)  # a damaged key can be removed
    with pytest.raises(WrongKey):
        Repository.open(tmp_path / "repo", password="second passphrase")


def test_unreasonable_cost_in_a_key_file_is_refused(tmp_path):
    """A tampered cost must not make opening take minutes or gigabytes."""
    repo = init(tmp_path / "repo")
    doc = msgpack.unpackb(key_path(repo, repo.key_id).read_bytes())
    doc["kdf"]["n"] = 2 ** 30
    data = msgpack.packb(doc)
    forged = blake3.blake3(data).hexdigest()[:32]  # named right, so it passes the name check
    (tmp_path / "repo" / "keys" / forged).write_bytes(data)
    os.remove(key_path(repo, repo.key_id))
    with pytest.raises(IntegrityError, match="unreasonable key-derivation parameters"):
        Repository.open(tmp_path / "repo", password="first passphrase")


def test_key_file_of_another_repository_does_not_open(tmp_path):
    """The repository id is the wrapping's associated data: a key file copied over opens nothing."""
    one, two = init(tmp_path / "one", "same passphrase"), init(tmp_path / "two", "other passphrase")
    data = key_path(one, one.key_id).read_bytes()
    (tmp_path / "two" / "keys" / one.key_id).write_bytes(data)
    with pytest.raises(WrongKey):
        Repository.open(tmp_path / "two", password="same passphrase")
    assert Repository.open(tmp_path / "two", password="other passphrase").key_id == two.key_id


def test_repository_without_key_files(tmp_path):
    repo = init(tmp_path / "repo")
    os.remove(key_path(repo, repo.key_id))
    with pytest.raises(IntegrityError, match="holds no key file"):
        Repository.open(tmp_path / "repo", password="first passphrase")


def test_passphrase_as_bytes_and_callable(tmp_path):
    init(tmp_path / "repo", password="pässphrase")
    assert Repository.open(tmp_path / "repo", password="pässphrase".encode()).key_id
    assert Repository.open(tmp_path / "repo", password=lambda: "pässphrase").key_id
    with pytest.raises(UsageError, match="non-empty"):
        Repository.open(tmp_path / "repo", password="")
