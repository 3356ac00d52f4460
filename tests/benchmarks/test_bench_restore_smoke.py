"""Smoke run of the issue-3 benchmark (benchmarks/bench_restore.py) at a tiny scale.

Structure and sanity of the figures only; no assertion about wall-clock time.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "benchmarks" / "bench_restore.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bench-restore")
    out_md = workdir / "benchmarks.md"
    cmd = [sys.executable, str(BENCH), "--scale", "0.2", "--repeat", "2", "--json", "--no-install",
           "--workdir", str(workdir / "run"), "--out", str(out_md)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"benchmark failed (exit {r.returncode}):\n{r.stderr[-6000:]}"
    return json.loads(r.stdout), out_md


def test_every_step_ran_every_round_and_medians_are_reported(bench):
    data, _ = bench
    assert data["rounds"] == 2
    for key in ("snapstore_restore_s", "sqlite3_dump_s", "snapstore_export_s", "md5sum_check_s"):
        assert len(data["runs"][key]) == 2 and all(t > 0 for t in data["runs"][key])
        assert min(data["runs"][key]) <= data[key] <= max(data["runs"][key])
    if data["restic"]:
        assert len(data["runs"]["restic_restore_s"]) == 2 and data["restic"]["restore_s"] > 0
    assert data["export_bytes"] > data["db_bytes"] > 0


def test_outputs_were_checked(bench):
    data, out_md = bench
    assert data["checks"] == {"restored_equals_source": "passed", "jq_reads_every_json": "passed",
                              "dump_rebuilds_equal_database": "passed", "memory_row_counts": "passed"}
    assert "outputs checked at this scale" in out_md.read_text()


def test_markdown_section_is_written(bench):
    _, out_md = bench
    text = out_md.read_text()
    assert "<!-- bench_restore:start -->" in text and "<!-- bench_restore:end -->" in text
    assert "full export vs restic restore + sqlite3 .dump (target)" in text


def test_the_database_comparison_sees_a_changed_row(tmp_path):
    import sqlite3

    sys.path.insert(0, str(BENCH.parent))
    import bench_restore

    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for path, value in ((a, "x"), (b, "y")):
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE t (v TEXT)")
            conn.executemany("INSERT INTO t VALUES (?)", [("same",), (value,)])
        conn.close()
    bench_restore.same_database(a, a)
    with pytest.raises(bench_restore.common.BenchError, match="table t differs"):
        bench_restore.same_database(a, b)
