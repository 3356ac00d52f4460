"""snapstore key add|list|remove|passwd, run as the real console script on real repositories.

The passphrase that opens comes from SNAPSTORE_PASSWORD_FILE / _COMMAND / SNAPSTORE_PASSWORD
(real files, real commands); a new one from --new-password-file.  Errors are one line with
their exit code: 12 for a wrong passphrase, 4 for a damaged key file, 2 for refusals.
"""
from __future__ import annotations

import json
import shlex

import pytest
from helpers import assert_one_line_error, cli_env, ok, run_cli

from snapstore import sample_agent
from snapstore.repository import Repository


def key_env(**extra: str) -> dict[str, str]:
    """``cli_env`` with no passphrase but the test's own (a session's SNAPSTORE_PASSWORD stays out)."""
    env = cli_env(**extra)
    if "SNAPSTORE_PASSWORD" not in extra:
        env.pop("SNAPSTORE_PASSWORD", None)
    return env


class Keys:
    """An encrypted repository and passphrase files; ``run(pw, ...)`` opens it with file ``pw``."""

    def __init__(self, root):
        self.root, self.repo = root, root / "repo"

    def pw(self, name: str, text: str | None = None):
        path = self.root / f"{name}.pw"
        if text is not None or not path.exists():
            path.write_text((text if text is not None else f"passphrase {name}") + "\n")
        return path

    def run(self, pw: str, *args, **env):
        return run_cli(*args, repo=self.repo, env=key_env(SNAPSTORE_PASSWORD_FILE=str(self.pw(pw)), **env))

    def keys(self, pw: str) -> list[dict]:
        return json.loads(ok(self.run(pw, "key", "list", "--json")).stdout)

    def current(self, pw: str) -> str:
        """The id of the key file passphrase ``pw`` opens."""
        return next(k["id"] for k in self.keys(pw) if k["current"])

    def add(self, pw: str, new: str) -> str:
        return json.loads(ok(self.run(pw, "key", "add", "--new-password-file", self.pw(new), "--json")).stdout)["key"]


@pytest.fixture
def keys(tmp_path) -> Keys:
    k = Keys(tmp_path)
    ok(k.run("one", "init", "--encrypt"))
    return k


def assert_wrong_passphrase(result) -> None:
    line = assert_one_line_error(result, "wrong passphrase")
    assert result.returncode == 12, (result.returncode, line)


def test_list_shows_the_key_in_use(keys):
    listed = keys.keys("one")
    assert len(listed) == 1
    key = listed[0]
    assert key["current"] is True and len(key["id"]) == 32 and key["damage"] is None
    assert key["host"] and key["user"] and key["created"].startswith("20") and key["kdf"]["n"] >= 2 ** 10
    text = ok(keys.run("one", "key", "list")).stdout.splitlines()
    assert text[0].split() == ["ID", "CREATED", "HOST", "USER"]
    assert text[1].startswith(f"* {key['id'][:8]} ") and key["host"] in text[1] and key["id"] not in text[1]


def test_add_then_both_passphrases_open(keys):
    first = keys.current("one")
    second = keys.add("one", "two")
    assert second != first
    assert keys.current("two") == second and keys.current("one") == first
    listed = {k["id"]: k["current"] for k in keys.keys("two")}
    assert listed == {first: False, second: True}
    text = ok(keys.run("two", "key", "list")).stdout
    assert f"* {second[:8]}" in text and f"  {first[:8]}" in text
    assert Repository.open(keys.repo, password="passphrase two").cipher.key == \
        Repository.open(keys.repo, password="passphrase one").cipher.key
    human = ok(keys.run("one", "key", "add", "--new-password-file", keys.pw("three")))
    assert human.stdout.startswith("added key ") and len(keys.keys("three")) == 3


def test_remove_then_the_removed_passphrase_is_refused(keys):
    first = keys.current("one")
    second = keys.add("one", "two")
    result = ok(keys.run("one", "key", "remove", second[:8]))
    assert result.stdout.strip() == f"removed key {second[:8]}"
    assert_wrong_passphrase(keys.run("two", "key", "list"))
    assert_wrong_passphrase(keys.run("two", "snapshots"))  # any command, not only key ones
    assert [k["id"] for k in keys.keys("one")] == [first]


def test_remove_takes_the_repo_option_after_the_subcommand(keys):
    second = keys.add("one", "two")
    env = key_env(SNAPSTORE_PASSWORD_FILE=str(keys.pw("one")))
    ok(run_cli("key", "remove", second.upper()[:10], "--repo", keys.repo, env=env))
    assert len(keys.keys("one")) == 1


def test_last_key_and_key_in_use_are_refused(keys):
    first = keys.current("one")
    line = assert_one_line_error(keys.run("one", "key", "remove", first[:8]), "last key")
    assert keys.run("one", "key", "remove", first).returncode == 2, line
    keys.add("one", "two")
    result = keys.run("one", "key", "remove", first[:8])
    assert_one_line_error(result, "opened with")
    assert result.returncode == 2
    assert len(keys.keys("one")) == 2
    result = keys.run("one", "key", "remove", "0123456789abcdef0123")
    assert_one_line_error(result, "no key")
    ok(keys.run("two", "key", "remove", first[:8]))  # opened with the other key it is allowed
    assert_wrong_passphrase(keys.run("one", "key", "list"))


def test_passwd_replaces_the_key_in_use(keys):
    first = keys.current("one")
    other = keys.add("one", "other")
    result = ok(keys.run("one", "key", "passwd", "--new-password-file", keys.pw("new"), "--json"))
    doc = json.loads(result.stdout)
    assert doc["removed"] == first and doc["key"] not in (first, other)
    assert_wrong_passphrase(keys.run("one", "key", "list"))
    assert keys.current("new") == doc["key"]
    assert keys.current("other") == other  # the other passphrases are untouched
    assert sorted(k["id"] for k in keys.keys("new")) == sorted([doc["key"], other])
    human = ok(keys.run("new", "key", "passwd", "--new-password-file", keys.pw("newer")))
    assert human.stdout.startswith("changed the passphrase: key ")
    assert_wrong_passphrase(keys.run("new", "key", "list"))
    assert len(keys.keys("newer")) == 2


def test_data_stays_readable_after_passwd(tmp_path):
    keys = Keys(tmp_path)
    ok(keys.run("one", "init", "--encrypt"))
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=0.05, seed=5)
    snap = json.loads(ok(keys.run("one", "backup", "--config", agent.config_path, "--json")).stdout)["snapshot_id"]
    ok(keys.run("one", "key", "passwd", "--new-password-file", keys.pw("two")))
    assert_wrong_passphrase(keys.run("one", "snapshots"))
    listed = json.loads(ok(keys.run("two", "snapshots", "--json")).stdout)
    assert [s["id"] for s in listed] == [snap]
    ok(keys.run("two", "verify", "--full"))


@pytest.mark.parametrize("args", [("key", "list"), ("key", "add", "--new-password-file", "x"),
                                  ("key", "remove", "abcd"), ("key", "passwd", "--new-password-file", "x")])
def test_unencrypted_repository_is_refused(tmp_path, args):
    ok(run_cli("init", "--insecure-no-encryption", repo=tmp_path / "plain", env=key_env()))
    result = run_cli(*args, repo=tmp_path / "plain", env=key_env(SNAPSTORE_PASSWORD="unused"))
    assert_one_line_error(result, "not encrypted", "init --encrypt")
    assert result.returncode == 2
    assert not any((tmp_path / "plain" / "keys").iterdir())


def test_new_passphrase_needs_a_file_or_a_terminal(keys):
    for sub in ("add", "passwd"):
        result = keys.run("one", "key", sub)  # stdin is not a terminal here
        assert_one_line_error(result, "--new-password-file FILE")
        assert result.returncode == 2
        for bad, said in ((keys.root / "missing.pw", "cannot read --new-password-file"),
                          (keys.pw("empty", ""), "is empty")):
            result = keys.run("one", "key", sub, "--new-password-file", bad)
            assert_one_line_error(result, said)
            assert result.returncode == 2
    assert len(keys.keys("one")) == 1


def test_wrong_passphrase_is_one_line_exit_12(keys):
    keys.add("one", "two")
    for sub in (("list",), ("add", "--new-password-file", keys.pw("x")), ("remove", "ab"),
                ("passwd", "--new-password-file", keys.pw("x"))):
        assert_wrong_passphrase(keys.run("wrong", "key", *sub))
    assert len(keys.keys("one")) == 2


def test_passphrase_from_a_command_and_from_the_variable(keys):
    current = keys.current("one")
    env = key_env(SNAPSTORE_PASSWORD_COMMAND=f"cat {shlex.quote(str(keys.pw('one')))}")
    assert json.loads(ok(run_cli("key", "list", "--json", repo=keys.repo, env=env)).stdout)[0]["id"] == current
    env = key_env(SNAPSTORE_PASSWORD_COMMAND="echo passphrase one")
    ok(run_cli("key", "list", repo=keys.repo, env=env))
    env = key_env(SNAPSTORE_PASSWORD_COMMAND="echo passphrase nine")
    assert_wrong_passphrase(run_cli("key", "list", repo=keys.repo, env=env))
    ok(run_cli("key", "list", repo=keys.repo, env=key_env(SNAPSTORE_PASSWORD="passphrase one")))
    # the file wins over the command, the command over the variable
    env = key_env(SNAPSTORE_PASSWORD_FILE=str(keys.pw("one")), SNAPSTORE_PASSWORD_COMMAND="echo nope",
                  SNAPSTORE_PASSWORD="nope")
    ok(run_cli("key", "list", repo=keys.repo, env=env))
    env = key_env(SNAPSTORE_PASSWORD_COMMAND="echo passphrase one", SNAPSTORE_PASSWORD="nope")
    ok(run_cli("key", "list", repo=keys.repo, env=env))


def test_passphrase_sources_that_fail(keys):
    missing = keys.root / "missing.pw"
    cases = [({"SNAPSTORE_PASSWORD_FILE": str(missing)}, f"cannot read SNAPSTORE_PASSWORD_FILE {missing}"),
             ({"SNAPSTORE_PASSWORD_FILE": str(keys.pw("empty", ""))}, "is empty"),
             ({"SNAPSTORE_PASSWORD_COMMAND": "false"}, "SNAPSTORE_PASSWORD_COMMAND exited with 1"),
             ({"SNAPSTORE_PASSWORD_COMMAND": str(missing)}, "failed to start"),
             ({}, "SNAPSTORE_PASSWORD_FILE, SNAPSTORE_PASSWORD_COMMAND or SNAPSTORE_PASSWORD")]
    for env, said in cases:
        result = run_cli("key", "list", repo=keys.repo, env=key_env(**env))
        assert_one_line_error(result, said)
        assert result.returncode == 2


def test_tampered_key_file_is_reported_as_damage(keys):
    first = keys.current("one")
    second = keys.add("one", "two")
    path = keys.repo / "keys" / second
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # in `wrapped`
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    result = keys.run("two", "key", "list")
    assert_one_line_error(result, f"keys/{second}", "damaged")
    assert result.returncode == 4
    listed = ok(keys.run("one", "key", "list"))  # the intact key opens and shows the damage
    assert f"  {second[:8]}  damaged" in listed.stdout and f"keys/{second}" in listed.stderr
    assert [k["damage"] is not None for k in sorted(keys.keys("one"), key=lambda k: k["id"] != second)] == [True, False]
    ok(keys.run("one", "key", "remove", second[:8]))
    assert [k["id"] for k in keys.keys("one")] == [first]
    assert_wrong_passphrase(keys.run("two", "key", "list"))


def test_key_files_hold_no_plaintext_master_key(keys):
    keys.add("one", "two")
    ok(keys.run("two", "key", "passwd", "--new-password-file", keys.pw("three")))
    master = Repository.open(keys.repo, password="passphrase three").cipher.key
    stored = b"".join(p.read_bytes() for p in sorted(keys.repo.rglob("*")) if p.is_file())
    for secret in (master.data_key, master.id_key, master.data_key[:8], master.id_key[8:16]):
        assert secret not in stored and secret.hex().encode() not in stored
    for name in ("one", "two", "three"):
        assert f"passphrase {name}".encode() not in stored


def test_remove_and_passwd_wait_for_the_exclusive_lock_add_does_not(keys):
    """A running backup (a shared lock) makes remove and passwd wait; add and list never lock."""
    second = keys.add("one", "two")
    holder = Repository.open(keys.repo, password="passphrase one")
    with holder.lock():
        result = keys.run("one", "key", "remove", second[:8], SNAPSTORE_LOCK_WAIT="0")
        assert result.returncode == 11, result.stderr
        result = keys.run("one", "key", "passwd", "--new-password-file", keys.pw("new"), SNAPSTORE_LOCK_WAIT="0")
        assert result.returncode == 11, result.stderr
        assert len(keys.keys("one")) == 2  # nothing changed: the lock comes before the new key
        third = json.loads(ok(keys.run("one", "key", "add", "--new-password-file", keys.pw("three"), "--json",
                                       SNAPSTORE_LOCK_WAIT="0")).stdout)["key"]
    assert keys.current("three") == third
    ok(keys.run("one", "key", "remove", second[:8], SNAPSTORE_LOCK_WAIT="0"))
    assert len(keys.keys("one")) == 2


def test_key_lifecycle_on_each_backend(repo_url, tmp_path):
    """add, remove, passwd and a damaged key file, through the storage interface only (S3 too)."""
    from backends import RepoObjects

    keys = Keys(tmp_path)
    keys.repo = repo_url
    ok(keys.run("one", "init", "--encrypt"))
    first = keys.current("one")
    second = keys.add("one", "two")
    objects = RepoObjects(repo_url)
    try:
        assert objects.names("keys/") == sorted([f"keys/{first}", f"keys/{second}"])
        ok(keys.run("two", "key", "remove", first[:8]))
        assert_wrong_passphrase(keys.run("one", "key", "list"))
        doc = json.loads(ok(keys.run("two", "key", "passwd", "--new-password-file", keys.pw("three"),
                                     "--json")).stdout)
        assert objects.names("keys/") == [f"keys/{doc['key']}"]
        assert_wrong_passphrase(keys.run("two", "key", "list"))
        objects.flip(f"keys/{doc['key']}", -1, 0x01)
        result = keys.run("three", "key", "list")
        assert_one_line_error(result, f"keys/{doc['key']}", "damaged")
        assert result.returncode == 4
    finally:
        objects.close()


def test_verify_names_a_damaged_key_file(tmp_path):
    """A damaged key file that is not the one in use: verify reports it (exit 4) and how to fix it."""
    keys = Keys(tmp_path)
    ok(keys.run("one", "init", "--encrypt"))
    agent = sample_agent.create_sample_agent(tmp_path / "agent", scale=0.05, seed=6)
    ok(keys.run("one", "backup", "--config", agent.config_path))
    second = keys.add("one", "two")
    assert json.loads(ok(keys.run("one", "verify", "--json")).stdout)["status"] == "clean"
    path = keys.repo / "keys" / second
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    result = keys.run("one", "verify", "--json")
    assert result.returncode == 4, result.stderr
    report = json.loads(result.stdout)
    assert [d["kind"] for d in report["damage"]] == ["key-corrupt"]
    assert f"keys/{second}" in report["damage"][0]["message"] and report["damage"][0]["snapshots"] == []
    assert report["fix"][0].startswith("snapstore key remove") and len(report["fix"]) == 1
    text = keys.run("one", "verify")
    assert text.returncode == 4 and f"DAMAGE [key-corrupt] key file keys/{second} is damaged" in text.stdout
    ok(keys.run("one", "key", "remove", second[:8]))
    assert json.loads(ok(keys.run("one", "verify", "--json")).stdout)["status"] == "clean"
