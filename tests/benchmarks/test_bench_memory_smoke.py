"""Smoke run of benchmarks/bench_memory.py at a tiny scale: every step runs and gets a figure,
never a judgement on size or time."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow
STEPS = ["init", "backup (initial)", "backup (no change)", "export latest", "restore --to FILE",
         "verify --full", "init (second repo)", "import"]


def test_bench_memory_smoke(tmp_path):
    work = tmp_path / "run"
    r = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_memory.py"), "--scale", "0.3",
                        "--workdir", str(work)], capture_output=True, text=True, timeout=1800, cwd=REPO_ROOT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-4000:]
    rows = re.findall(r"^\| `([^`]+)` \| ([\d.]+) s \| (\d+) MiB", r.stdout, re.M)
    assert [name for name, _, _ in rows] == STEPS
    assert all(float(wall) > 0 and int(peak) > 0 for _, wall, peak in rows)
    assert not work.exists()  # removed without --keep
