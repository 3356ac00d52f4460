"""Import streams the files it stores (issue 14, part 3: bounded memory).

A Mirix ``save_agent`` folder of a PostgreSQL agent is a SQL dump of any size beside
``agent_config.json``.  The real ``snapstore import`` stores a small one and a large one;
its peak resident set (``os.wait4``, through ``helpers.cli_peak_rss``) must not grow with
the dump.  Before the fix the importer read each file whole into memory, so the peak grew
by the dump's size; now the dump goes through the chunker in pieces.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import cli_peak_rss, ok, run_cli
from snapstore.folder.checksums import file_md5

MiB = 1 << 20
SMALL_DUMP, LARGE_DUMP = 1 * MiB, 160 * MiB
# Measured: 28 -> 32 MiB now; 36 -> 199 MiB when the importer read the dump whole.
GROWTH_BOUND = 64 * MiB


def mirix_pg_folder(folder: Path, dump_bytes: int) -> Path:
    """A Mirix save_agent folder: ``mirix_database.sql`` of ``dump_bytes`` (unique lines, written
    a few MiB at a time) and ``agent_config.json``."""
    folder.mkdir()
    (folder / "agent_config.json").write_text(json.dumps({"agent_name": folder.name}))
    with open(folder / "mirix_database.sql", "w") as out:
        written, row = 0, 0
        while written < dump_bytes:
            block = "".join(f"INSERT INTO messages VALUES ({row + i}, '{os.urandom(24).hex()}');\n"
                            for i in range(40_000))
            block = block[:dump_bytes - written]
            out.write(block)
            written += len(block)
            row += 40_000
    assert (folder / "mirix_database.sql").stat().st_size == dump_bytes
    return folder


def test_import_peak_memory_does_not_grow_with_the_dump(tmp_path: Path) -> None:
    peaks = {}
    for size in (SMALL_DUMP, LARGE_DUMP):
        folder = mirix_pg_folder(tmp_path / f"agent{size}", size)
        repo = tmp_path / f"repo{size}"
        ok(run_cli("init", "--insecure-no-encryption", repo=repo))
        peaks[size] = cli_peak_rss("import", folder, repo=repo)
        stored = {f["path"]: f for f in json.loads(ok(run_cli("ls", "latest", "--json", repo=repo)).stdout)}
        dump = stored["database/mirix_dump.sql"]  # all of it, with the MD5 taken on the way
        assert (dump["size"], dump["md5"]) == (size, file_md5(folder / "mirix_database.sql"))
    growth = peaks[LARGE_DUMP] - peaks[SMALL_DUMP]
    assert growth <= GROWTH_BOUND, (
        f"import peak RSS grew by {growth / MiB:.0f} MiB ({peaks[SMALL_DUMP] / MiB:.0f} -> "
        f"{peaks[LARGE_DUMP] / MiB:.0f} MiB) for a dump {(LARGE_DUMP - SMALL_DUMP) / MiB:.0f} MiB larger")
