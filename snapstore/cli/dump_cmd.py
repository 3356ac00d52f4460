"""snapstore dump: write one file of a snapshot to stdout or --out."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..atomic import AtomicFile, make_parents, remove_made
from ..errors import UsageError
from ..extract import write_file
from ..manifest import resolve_snapshot, safe_relpath
from .common import Progress, open_repo_for_reading, selection, selection_options


@click.command("dump")
@click.argument("snapshot_ref", metavar="ID|latest")
@click.argument("path")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Write to this new file (atomically; missing folders are made) instead of stdout.")
@selection_options
@click.pass_context
def command(ctx: click.Context, snapshot_ref: str, path: str, out_path: str | None, agent: str | None,
            host: str | None) -> None:
    """Write PATH (e.g. database/sqlite.db) of a snapshot, checking every chunk."""
    repo = open_repo_for_reading(ctx)
    entry = resolve_snapshot(repo, snapshot_ref, selection(agent, host)).file(safe_relpath(path))
    if out_path is None:
        write_file(repo, entry, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    out_file = Path(out_path)
    if out_file.exists() or out_file.is_symlink():  # like every writer: never overwrite silently
        raise UsageError(f"{out_file} already exists; choose another --out or remove it first")
    made = make_parents(out_file, "dump output")
    progress = Progress("dump", entry.size, enabled=True)
    try:
        with AtomicFile(out_file, overwrite=True) as out:
            write_file(repo, entry, out, progress)
    except BaseException:
        remove_made(made)
        raise
    finally:
        progress.close()
