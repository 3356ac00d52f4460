"""benchmarks/bench_verify.py runs end to end at a tiny scale (structure and sanity only, no timings asserted)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_verify_smoke(tmp_path):
    out_md = tmp_path / "benchmarks.md"
    out_md.write_text("# Benchmarks\n\n<!-- bench_backup:start -->\n## other\nkept\n<!-- bench_backup:end -->\n")
    args = [sys.executable, str(ROOT / "benchmarks" / "bench_verify.py"), "--scale", "0.3", "--snapshots", "2",
            "--many", "12", "--json", "--workdir", str(tmp_path / "work"), "--out", str(out_md)]
    if shutil.which("restic") is None:
        args.append("--no-restic")
    result = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    full = doc["full"]
    assert full["snapstore_full"]["status"] == "clean" and full["snapstore_full"]["wall_s"] > 0
    assert full["floor"]["plain_bytes"] >= full["database_bytes"] * 0.9
    points = doc["scaling"]["points"]
    assert set(points) == {"10", "12"} or set(points) == {10, 12}
    for p in points.values():
        assert p["cli_s"] > 0 and p["library_s"] > 0 and p["chunk_refs"] <= p["listed_refs"]
    text = out_md.read_text()
    assert "## other\nkept" in text and text.count("## Verify") == 1 and "restic" in text
    # a second run replaces the section instead of adding another
    again = subprocess.run(args + ["--skip-full"], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert out_md.read_text().count("## Verify") == 1
