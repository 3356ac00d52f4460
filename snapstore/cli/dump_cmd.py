"""snapstore dump: write one file of a snapshot to stdout or --out."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..atomic import AtomicFile
from ..extract import write_file
from ..manifest import resolve_snapshot, safe_relpath
from .common import Progress, open_repo_for_reading


@click.command("dump")
@click.argument("snapshot_ref", metavar="ID|latest")
@click.argument("path")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write to this file (atomically) instead of stdout.")
@click.pass_context
def command(ctx: click.Context, snapshot_ref: str, path: str, out_path: str | None) -> None:
    """Write PATH (e.g. database/sqlite.db) of a snapshot, checking every chunk."""
    repo = open_repo_for_reading(ctx)
    entry = resolve_snapshot(repo, snapshot_ref).file(safe_relpath(path))
    if out_path is None:
        write_file(repo, entry, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    progress = Progress("dump", entry.size, enabled=True)
    with AtomicFile(Path(out_path), overwrite=True) as out:
        try:
            write_file(repo, entry, out, progress)
        finally:
            progress.close()
