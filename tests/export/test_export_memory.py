"""An export's memory does not grow with the database (issue 14, part 3: bounded memory).

The real ``snapstore export`` command runs on two sample agents, one about four times
the other, and its peak resident set is read from ``os.wait4``: the largest of the
export process and of every child it waited for (the ``sqlite3`` shell writing the
dump, the forked workers writing the database file).  That is memory, not time: the
figure does not depend on how busy the machine is.

Before the fix both the exporting process and the ``sqlite3`` shell memory-mapped the
whole database, so every page they read stayed resident: the peak grew by about twice
the database's size (a 1 GB agent peaked near 2 GB).  Here the larger export must
peak at most ``GROWTH_BOUND`` above the smaller one although its database is
``MIN_SIZE_GAP`` or more larger.
"""
from __future__ import annotations

from pathlib import Path

from helpers import backed_up_agent, cli_peak_rss

MiB = 1 << 20
SMALL_SCALE, LARGE_SCALE = 8, 30
MIN_SIZE_GAP = 96 * MiB  # the larger database is at least this much larger (checked, not assumed)
# Measured (databases of 38 and 140 MiB): 72 -> 86 MiB now (+14, the index of more chunks);
# 131 -> 359 MiB (+228) with the old memory-mapped reads.
GROWTH_BOUND = 48 * MiB


def test_export_peak_memory_does_not_grow_with_the_database(tmp_path: Path) -> None:
    peaks, sizes = {}, {}
    for scale in (SMALL_SCALE, LARGE_SCALE):
        agent, repo = backed_up_agent(tmp_path / f"scale{scale}", scale=scale, seed=5)
        sizes[scale] = Path(agent.db_path).stat().st_size
        dest = tmp_path / f"export{scale}"
        peaks[scale] = cli_peak_rss("export", "latest", dest, repo=repo)
        assert (dest / "database" / "sqlite.db").stat().st_size == sizes[scale]
    gap = sizes[LARGE_SCALE] - sizes[SMALL_SCALE]
    assert gap >= MIN_SIZE_GAP, f"the larger database is only {gap / MiB:.0f} MiB larger: the test proves nothing"
    growth = peaks[LARGE_SCALE] - peaks[SMALL_SCALE]
    assert growth <= GROWTH_BOUND, (
        f"export peak RSS grew by {growth / MiB:.0f} MiB ({peaks[SMALL_SCALE] / MiB:.0f} -> "
        f"{peaks[LARGE_SCALE] / MiB:.0f} MiB) for a database {gap / MiB:.0f} MiB larger")
