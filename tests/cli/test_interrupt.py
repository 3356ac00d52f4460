"""Ctrl-C during a backup: exactly one line (``snapstore: interrupted``), exit 130, nothing lost.

A terminal sends SIGINT to the whole process group, pool workers included; the test does the
same, at the moment the page-hashing workers are running.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from helpers import ok, popen_cli, run_cli, wait_for


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def test_ctrl_c_during_backup_prints_one_line_and_keeps_earlier_snapshots(tmp_path, repo_url):
    agent, repo = tmp_path / "agent", repo_url
    ok(run_cli("sample-agent", agent, "--scale", "10"))
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--config", agent / "mirix.yaml", repo=repo))
    before = [s["id"] for s in json.loads(ok(run_cli("snapshots", "--json", repo=repo)).stdout)]

    interrupted = 0
    for _ in range(5):  # a backup that finishes before the signal lands is simply tried again
        proc = popen_cli("backup", "--config", agent / "mirix.yaml", "--read-all", repo=repo)
        wait_for(lambda: children(proc.pid) or proc.poll() is not None, what="backup workers to start",
                 interval=0.001)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate()
        if proc.returncode == 0:
            continue
        assert proc.returncode == 130, err
        assert err == "snapstore: interrupted\n"
        interrupted += 1
    assert interrupted, "no backup could be interrupted while its workers ran"

    after = [s["id"] for s in json.loads(ok(run_cli("snapshots", "--json", repo=repo)).stdout)]
    assert after[:len(before)] == before
    verified = run_cli("verify", "--full", repo=repo)
    assert verified.returncode == 0, verified.stdout + verified.stderr
