"""A command that has to wait for the repository lock says once whom it waits for.

The holder is this test process, through the real lock object; the waiter is the real CLI.
"""
from __future__ import annotations

import json
import os
import re

from helpers import cli_env, ok, popen_cli, run_cli
from snapstore.hostid import hostname
from snapstore.repository import Repository
from snapstore.repository.lock import list_locks, repository_lock


def held_by(command: str) -> str:
    return re.escape(f"held by exclusive lock by pid {os.getpid()} on {hostname()} ({command}, refreshed ") + r"\d+ s ago\)"


def test_a_waiting_backup_names_the_holder_once_then_proceeds(tmp_path):
    agent, repo = tmp_path / "agent", tmp_path / "repo"
    ok(run_cli("sample-agent", agent, "--scale", "1"))
    ok(run_cli("init", repo=repo))
    with repository_lock(Repository.open(repo).storage, exclusive=True, command="snapstore repair packs"):
        proc = popen_cli("backup", "--config", agent / "mirix.yaml", "--json", repo=repo)
        line = proc.stderr.readline()  # blocks until the waiter speaks: it must, while we hold the lock
        assert proc.poll() is None
    out, rest = proc.communicate(timeout=120)
    assert proc.returncode == 0, line + rest
    assert re.fullmatch("snapstore: waiting for the repository lock, " + held_by("snapstore repair packs")
                        + re.escape(" (giving up after 600 s, SNAPSTORE_LOCK_WAIT)") + "\n", line), line
    assert rest == "", "the waiting line is said once"
    assert json.loads(out)["snapshot_id"]


def test_giving_up_names_the_holder_in_one_line(tmp_path):
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    with repository_lock(Repository.open(repo).storage, exclusive=True, command="snapstore repair index"):
        r = run_cli("repair", "packs", repo=repo, env=cli_env(SNAPSTORE_LOCK_WAIT="0.2"))
    assert r.returncode == 11
    assert r.stderr.count("\n") == 1
    assert re.match("snapstore: could not take the exclusive repository lock within 0.2 s: "
                    + held_by("snapstore repair index"), r.stderr), r.stderr


def test_the_lock_object_names_the_command_holding_it_and_goes_with_it(tmp_path):
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    storage = Repository.open(repo).storage
    with repository_lock(storage, exclusive=False, command="snapstore export"):
        (info,) = list_locks(storage)
        assert (info.command, info.exclusive, info.pid, info.hostname) == ("snapstore export", False, os.getpid(),
                                                                           hostname())
    assert list_locks(storage) == []
