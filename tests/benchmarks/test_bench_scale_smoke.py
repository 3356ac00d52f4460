"""Smoke run of benchmarks/bench_scale.py at two tiny scales: every tool and step gets a figure, the
table and the plot are written; structure and sanity only, never a judgement on time."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_bench_scale_smoke(tmp_path):
    out_md = tmp_path / "docs" / "benchmarks.md"
    out_md.parent.mkdir()
    out_md.write_text("# Benchmarks\n\nearlier sections stay\n")
    agents = tmp_path / "agents"  # one scale reuses a pre-generated agent, the other is generated
    subprocess.run([str(Path(sys.executable).parent / "snapstore"), "sample-agent", str(agents / "scale0.2"),
                    "--scale", "0.2", "--seed", "1"], check=True, capture_output=True)
    r = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_scale.py"), "--scales", "0.2,0.4",
                        "--interval", "1s", "--agents-dir", str(agents), "--json", "--workdir",
                        str(tmp_path / "run"), "--out", str(out_md)],
                       capture_output=True, text=True, timeout=1800, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout)
    small, large = out["scales"]
    assert small["agent"].startswith("copy of") and "sample-agent" in large["agent"]
    assert 0 < small["db_bytes"] < large["db_bytes"]
    for s in out["scales"]:
        steps = s["steps"]
        assert list(steps) == ["initial", "no change", "1% day", "export", "restore"]
        for step in ("initial", "no change", "1% day"):
            assert set(steps[step]) == {"backup", "watch", "restic", "borg"}
        assert set(steps["restore"]) == {"backup", "watch", "restic", "borg"} and set(steps["export"]) == {"backup"}
        for step in steps.values():
            for fig in step.values():
                assert fig["wall_s"] > 0 and fig["peak_rss"] > 0 and fig["cpu_s"] >= 0
        for tool in ("backup", "watch", "restic", "borg"):
            assert steps["initial"][tool]["added"] > 0 and steps["1% day"][tool]["added"] > 0
        assert steps["initial"]["watch"]["capture"] == "full"
        assert steps["no change"]["watch"]["capture"] == "unchanged" and steps["no change"]["watch"]["added"] == 0
        day = s["day"]
        assert day["snapshots"] >= 1 and "incremental" in day["captures"]
        assert day["mutate_alone"]["wall_s"] > 0
        assert 0 < day["pages_read"] < day["page_count"] * 2
        assert day["last_commit_to_snapshot_s"] >= day["writer_exit_to_snapshot_s"] > 0
        assert s["restore_identical"] in ("byte-identical", "equal row for row")
        assert s["watch_run"]["peak_rss"] >= day["watch"]["peak_rss"] > 0
        assert all(s["repo_bytes"][t] > 0 for t in ("backup", "watch", "restic", "borg"))
    text = out_md.read_text()
    assert "earlier sections stay" in text
    assert text.count("<!-- bench_scale:start -->") == 1 and text.count("<!-- bench_scale:end -->") == 1
    assert "### Scale 0.2:" in text and "### Scale 0.4:" in text and text.count("| watch CPU on the 1% day") == 4
    png = out_md.parent / "scaling.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert not (tmp_path / "run" / "scale0.2").exists()  # the work is removed without --keep
