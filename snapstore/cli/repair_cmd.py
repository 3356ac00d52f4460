"""snapstore repair index: rebuild the index from the packs alone."""
from __future__ import annotations

import click

from ..repair import rebuild_index
from .common import JSON_OPTION, emit_json, open_repo


@click.group("repair")
def command() -> None:
    """Repair repository metadata."""


@command.command("index")
@JSON_OPTION
@click.pass_context
def index_command(ctx: click.Context, as_json: bool) -> None:
    """Rebuild the index by reading every pack's trailer."""
    report = rebuild_index(open_repo(ctx))
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(f"index rebuilt: {report.blobs} chunks in {report.packs} packs "
               f"({report.replaced_files} old index files replaced)")
    for problem in report.bad_packs:
        click.echo(f"warning: {problem}", err=True)
