"""Long commands report progress, and a selective restore reports rows, not bytes.

The CLI meter only draws on a terminal and after 0.1 s, so the wiring is checked where it is
deterministic: the callbacks ``verify-folder`` and ``import`` hand to the library must see
every byte checked (and stored), with a total that covers them.  The restore's summary line is
checked through the CLI.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from helpers import ok, run_cli
from snapstore.agent_api.verification import verify_backup
from snapstore.folder.layout import CHECKSUMS, parse_md5_file
from snapstore.importer import import_folder
from snapstore.repository import Repository


class Meter:
    """What the CLI's Progress offers the library: a call per amount, and a settable total."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def __call__(self, n: int) -> None:
        self.done += n


def exported(tmp_path: Path) -> tuple[Path, Path]:
    agent, repo, folder = tmp_path / "agent", tmp_path / "repo", tmp_path / "folder"
    ok(run_cli("sample-agent", agent, "--scale", "1"))
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--config", agent / "mirix.yaml", "--include-logs", repo=repo))
    ok(run_cli("export", "latest", folder, repo=repo))
    return agent, folder


def test_verify_folder_reports_every_byte_it_checksums(tmp_path):
    _agent, folder = exported(tmp_path)
    meter = Meter()
    assert verify_backup(folder, progress=meter)["valid"]
    listed = parse_md5_file((folder / CHECKSUMS).read_text())
    assert meter.done == meter.total == sum((folder / p).stat().st_size for p in listed) > 0


def test_import_reports_the_checksum_pass_then_the_stored_bytes(tmp_path):
    _agent, folder = exported(tmp_path)
    repo = Repository.init(tmp_path / "repo2")
    meter = Meter()
    result = import_folder(repo, folder, progress=meter)
    assert result.snapshot.files
    assert meter.total > 0 and meter.done >= meter.total * 0.9  # checked, then stored (unpacked sizes)
    assert meter.done <= meter.total


def test_selective_restore_reports_rows_changed(tmp_path):
    agent, repo = tmp_path / "agent", tmp_path / "repo"
    ok(run_cli("sample-agent", agent, "--scale", "1"))
    ok(run_cli("init", repo=repo))
    ok(run_cli("backup", "--config", agent / "mirix.yaml", repo=repo))
    conn = sqlite3.connect(agent / "sqlite.db")
    with conn:
        deleted = conn.execute("DELETE FROM episodic_memory WHERE rowid IN "
                               "(SELECT rowid FROM episodic_memory LIMIT 3)").rowcount
    conn.close()
    assert deleted == 3
    out = ok(run_cli("restore", "latest", "--to", agent / "sqlite.db", "--memory-type", "episodic",
                     repo=repo)).stdout
    assert re.search(r"^changed 1 of 1 tables: 0 rows removed, 3 rows added \(a changed row is both\)$",
                     out, re.M), out
    assert "MiB" not in out
    dry = json.loads(ok(run_cli("restore", "latest", "--to", agent / "sqlite.db", "--memory-type", "episodic",
                                "--dry-run", "--json", repo=repo)).stdout)
    assert all(not (t["deleted"] or t["inserted"]) for t in dry["tables"].values())
