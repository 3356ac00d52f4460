"""snapstore init: create an empty repository."""
from __future__ import annotations

import click

from ..repository import Repository
from .common import JSON_OPTION, emit_json, repo_options, repo_path


@click.command("init")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """Create a new, empty repository at --repo."""
    repo = Repository.init(repo_path(ctx), repo_options(ctx))
    if as_json:
        emit_json({"repository": repo.location, "id": repo.config.repo_id, "version": repo.config.version})
    else:
        click.echo(f"created snapstore repository {repo.config.repo_id[:8]} at {repo.location}")
