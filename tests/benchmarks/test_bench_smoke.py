"""Smoke run of the issue-2 benchmark (benchmarks/bench_backup.py) at a tiny scale.

It checks the benchmark's structure and that its figures are sane; it never
asserts anything about wall-clock time (timings don't belong in tests). restic
is used if it is on PATH (scripts/test.sh installs it); without it the
benchmark reports restic as unavailable and the snapstore figures must still
be complete.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "benchmarks" / "bench_backup.py"
STEP_NAMES = ["initial", "nochange", "mutation1", "mutation2"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bench")
    out_md = workdir / "benchmarks.md"
    cmd = [
        sys.executable, str(BENCH),
        "--scale", "0.2",
        "--json",
        "--no-install",
        "--workdir", str(workdir / "run"),
        "--out", str(out_md),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=str(REPO_ROOT),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"benchmark failed (exit {r.returncode}):\n{r.stderr[-6000:]}"
    data = json.loads(r.stdout)
    return data, r.stderr, out_md, workdir / "run"


def _tool_figures(fig):
    assert set(fig) >= {"time_s", "added_bytes", "peak_rss_bytes", "repo_bytes"}
    assert fig["time_s"] > 0
    assert fig["peak_rss_bytes"] > 0
    assert fig["repo_bytes"] > 0
    assert fig["added_bytes"] >= 0


def test_every_step_is_present(bench):
    data, _, _, _ = bench
    assert [s["name"] for s in data["steps"]] == STEP_NAMES
    for s in data["steps"]:
        _tool_figures(s["snapstore"])
        assert s["snapstore"]["snapshot_id"]
        assert s["db_bytes"] > 0
    assert data["db_bytes"] > 0
    assert data["scale"] == 0.2
    for step in ("mutation1", "mutation2"):
        assert next(s for s in data["steps"] if s["name"] == step)["mutate_s"] > 0


def test_snapstore_bytes_are_sane(bench):
    data, _, _, _ = bench
    steps = {s["name"]: s["snapstore"] for s in data["steps"]}
    assert steps["initial"]["added_bytes"] > 0
    assert steps["mutation1"]["added_bytes"] > 0
    assert steps["mutation2"]["added_bytes"] > 0
    # a snapshot is recorded even when nothing changed, but it costs less than the first one
    assert 0 < steps["nochange"]["added_bytes"] < steps["initial"]["added_bytes"]
    # the repository only grows, and its final size is what the steps added up to
    sizes = [steps[n]["repo_bytes"] for n in STEP_NAMES]
    assert sizes == sorted(sizes)
    assert data["final_repo_bytes"]["snapstore"] == sizes[-1]
    assert sizes[-1] == data["repo_bytes_after_init"]["snapstore"] + sum(
        steps[n]["added_bytes"] for n in STEP_NAMES
    )
    # snapstore's own report of what it added is a number, in the same order of magnitude
    for n in STEP_NAMES:
        assert isinstance(steps[n]["reported_added_bytes"], int)
        assert steps[n]["reported_added_bytes"] >= 0


def test_restic_side_or_reported_unavailable(bench):
    data, stderr, _, _ = bench
    if not data["restic"]["available"]:
        assert data["restic"]["reason"]
        assert "restic" in stderr
        assert all(s["restic"] is None and s["time_ratio"] is None for s in data["steps"])
        assert data["final_repo_bytes"]["restic"] is None
        if shutil.which("restic"):
            pytest.fail(f"restic is on PATH but the benchmark did not use it: {data['restic']['reason']}")
        return
    assert data["versions"]["restic"].startswith("restic ")
    steps = {s["name"]: s for s in data["steps"]}
    for n in STEP_NAMES:
        _tool_figures(steps[n]["restic"])
        assert steps[n]["time_ratio"] > 0
    assert steps["initial"]["restic"]["added_bytes"] > 0
    assert steps["mutation1"]["restic"]["added_bytes"] > 0
    assert steps["mutation2"]["restic"]["added_bytes"] > 0
    assert steps["initial"]["bytes_ratio"] > 0
    assert data["final_repo_bytes"]["restic"] > 0


def test_floor_machine_and_markdown(bench):
    data, _, out_md, workdir = bench
    floor = data["floor"]
    assert floor["file_bytes"] == data["db_bytes"]
    assert floor["read_s"] > 0
    assert floor["blake3_s"] > 0
    assert len(floor["blake3_hex"]) == 64
    assert data["machine"]["nproc"] >= 1
    assert data["machine"]["cpu_model"]
    assert data["versions"]["snapstore"]
    assert "bench_backup.py" in data["command"] and "--scale 0.2" in data["command"]
    assert {t["target"] for t in data["targets"]}  # evaluated, whatever the outcome
    text = out_md.read_text()
    assert "<!-- bench_backup:start -->" in text and "<!-- bench_backup:end -->" in text
    assert "| step | restic time | snapstore time |" in text
    assert data["command"] in text
    # the work directory's contents are cleaned up without --keep
    assert not any(workdir.iterdir()) if workdir.exists() else True
