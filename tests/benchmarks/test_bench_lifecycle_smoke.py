"""Smoke run of benchmarks/bench_lifecycle.py at a tiny scale: structure and sane figures, never a
judgement on time."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_bench_lifecycle_smoke(tmp_path):
    out_md = tmp_path / "benchmarks.md"
    out_md.write_text("# Benchmarks\n\nearlier sections stay\n")
    r = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_lifecycle.py"), "--scale", "0.3",
                        "--days", "3", "--json", "--workdir", str(tmp_path / "run"), "--out", str(out_md)],
                       capture_output=True, text=True, timeout=1800, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout)
    assert out["diff"]["peak_rss"] > 0 and out["dump"]["peak_rss"] > 0
    assert out["diff"]["wall_s"] > 0 and out["ratio"] == out["diff"]["wall_s"] / out["dump"]["wall_s"]
    assert sum(sum(v.values()) for v in out["diff"]["rows"].values()) > 0  # the day changed rows
    assert out["diff"]["read"]["leaf_pages_decoded"] < out["diff"]["read"]["pages"]
    prune = out["prune"]
    assert prune["keep_last"] == 1 and prune["forgotten"] == 2
    ours = prune["snapstore"]
    assert ours["removed"] == 2 and ours["peak_rss"] > 0 and ours["wall_s"] > 0
    manifests = ours["repo_before"] - ours["freed"] - ours["repo_after"]  # du agrees with prune's own count,
    assert 0 < manifests < 2 * 64 * 1024                                   # less the two forgotten manifests
    assert prune["restic"]["repo_after"] < prune["restic"]["repo_before"] and prune["restic"]["peak_rss"] > 0
    assert prune["ratio"] == ours["wall_s"] / prune["restic"]["wall_s"]
    text = out_md.read_text()
    assert "earlier sections stay" in text and "## Lifecycle: memory-level diff" in text
    assert "## Lifecycle: forget + prune vs restic" in text
    assert not (tmp_path / "run").exists()
