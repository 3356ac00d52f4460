"""The README's first command: the demo runs and says where it leaves its files and how much."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from helpers import cli_env

ROOT = Path(__file__).resolve().parents[1]


def test_demo_says_where_its_files_are_and_how_much(tmp_path):
    work = tmp_path / "demo"
    done = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, capture_output=True, text=True,
                          env=cli_env(DEMO_DIR=str(work), DEMO_SCALE="0.05"))
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-2:]
    assert re.search(rf"files are left in {re.escape(str(work))} \(\S+ in all", last[0]), last
    assert f"rm -rf {work}" in last[1]
    assert (work / "repo" / "config").is_file() and (work / "agent" / "sqlite.db").is_file()
    assert "3 snapshots" in done.stdout
