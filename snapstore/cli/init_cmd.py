"""snapstore init: create an empty repository."""
from __future__ import annotations

import click

from ..crypto import get_password
from ..errors import UsageError
from ..repository import Repository
from .common import JSON_OPTION, emit_json, repo_options, repo_path


@click.command("init")
@click.option("--encrypt", is_flag=True,
              help="Encrypt everything stored (format v2): the passphrase comes from SNAPSTORE_PASSWORD_FILE, "
                   "SNAPSTORE_PASSWORD_COMMAND, SNAPSTORE_PASSWORD or a prompt.")
@click.option("--insecure-no-encryption", "no_encryption", is_flag=True,
              help="Store in plaintext (format v1, readable by older snapstore); the default for now.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, encrypt: bool, no_encryption: bool, as_json: bool) -> None:
    """Create a new, empty repository at --repo."""
    if encrypt and no_encryption:
        raise UsageError("--encrypt and --insecure-no-encryption contradict each other")
    password = (lambda: get_password("new repository", confirm=True)) if encrypt else None
    repo = Repository.init(repo_path(ctx), repo_options(ctx), encrypt=encrypt, password=password)
    if as_json:
        emit_json({"repository": repo.location, "id": repo.config.repo_id, "version": repo.config.version,
                   "encrypted": repo.config.encrypted, "key": repo.key_id})
    else:
        what = "encrypted snapstore repository" if encrypt else "snapstore repository"
        click.echo(f"created {what} {repo.config.repo_id[:8]} at {repo.location}")
        if encrypt:
            click.echo("keep the passphrase safe: without it the repository cannot be read", err=True)
