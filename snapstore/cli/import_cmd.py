"""snapstore import: verify a backup folder and store it as a snapshot."""
from __future__ import annotations

import click

from ..importer import import_folder
from .common import JSON_OPTION, Progress, emit_json, human_bytes, open_repo, plural


@click.command("import")
@click.argument("folder", type=click.Path())
@click.option("--tag", "tags", multiple=True, help="Tags for the new snapshot (default: imported).")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, folder: str, tags: tuple[str, ...], as_json: bool) -> None:
    """Import FOLDER (a snapstore export or a Mirix save_agent folder) after checking it."""
    progress = Progress("import", 0, enabled=not as_json, verb="checked and stored")
    try:
        result = import_folder(open_repo(ctx), folder, tags=tags or ("imported",), progress=progress)
    finally:
        progress.close()
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(f"imported {folder} as snapshot {result.snapshot.short_id}: "
               f"added {human_bytes(result.added_bytes)} ({plural(result.added_chunks, 'new chunk')})")
