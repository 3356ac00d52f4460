"""A command that has to wait for the repository lock says once whom it waits for.

The holder is this test process, through the real lock; the waiter is the real CLI.
"""
from __future__ import annotations

import json
import os
import socket

from helpers import cli_env, ok, popen_cli, run_cli
from snapstore.repository.lock import repository_lock


def test_a_waiting_backup_names_the_holder_once_then_proceeds(tmp_path):
    agent, repo = tmp_path / "agent", tmp_path / "repo"
    ok(run_cli("sample-agent", agent, "--scale", "1"))
    ok(run_cli("init", repo=repo))
    with repository_lock(repo / "locks" / "repository.lock", exclusive=True, command="snapstore repair packs"):
        proc = popen_cli("backup", "--config", agent / "mirix.yaml", "--json", repo=repo)
        line = proc.stderr.readline()  # blocks until the waiter speaks: it must, while we hold the lock
        assert proc.poll() is None
    out, rest = proc.communicate(timeout=120)
    assert proc.returncode == 0, line + rest
    assert line == (f"snapstore: waiting for the repository lock, held by snapstore repair packs "
                    f"(pid {os.getpid()} on {socket.gethostname()}, exclusive lock) "
                    f"(giving up after 600 s, SNAPSTORE_LOCK_WAIT)\n")
    assert rest == "", "the waiting line is said once"
    assert json.loads(out)["snapshot_id"]


def test_giving_up_names_the_holder_in_one_line(tmp_path):
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    with repository_lock(repo / "locks" / "repository.lock", exclusive=True, command="snapstore repair index"):
        r = run_cli("repair", "packs", repo=repo, env=cli_env(SNAPSTORE_LOCK_WAIT="0.2"))
    assert r.returncode == 11
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("snapstore: could not take the exclusive repository lock within 0.2 s: "
                               "held by snapstore repair index (pid")


def test_the_lock_file_names_the_last_command_that_took_it(tmp_path):
    repo = tmp_path / "repo"
    ok(run_cli("init", repo=repo))
    ok(run_cli("repair", "packs", repo=repo))
    info = json.loads((repo / "locks" / "repository.lock").read_text())
    assert info["command"] == "snapstore repair packs" and info["mode"] == "exclusive"
    assert info["host"] == socket.gethostname() and isinstance(info["pid"], int)
