"""snapstore init: create an empty repository."""
from __future__ import annotations

import click

from ..crypto import get_password
from ..crypto.password import password_from_environment
from ..errors import UsageError
from ..repository import Repository
from .common import JSON_OPTION, emit_json, repo_options, repo_path


@click.command("init")
@click.option("--encrypt", is_flag=True,
              help="Encrypt everything stored (format v2): the passphrase comes from SNAPSTORE_PASSWORD_FILE, "
                   "SNAPSTORE_PASSWORD_COMMAND, SNAPSTORE_PASSWORD or a prompt.  The default when one of "
                   "those variables is set.")
@click.option("--insecure-no-encryption", "no_encryption", is_flag=True,
              help="Store in plaintext (format v1, readable by older snapstore), even with a passphrase set; "
                   "the default when none is set.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, encrypt: bool, no_encryption: bool, as_json: bool) -> None:
    """Create a new, empty repository at --repo (encrypted when a passphrase is set or --encrypt)."""
    if encrypt and no_encryption:
        raise UsageError("--encrypt and --insecure-no-encryption contradict each other")
    encrypt = encrypt or (not no_encryption and password_from_environment() is not None)
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
        elif not no_encryption:
            click.echo("not encrypted: anyone who can read it reads the agent "
                       "(set SNAPSTORE_PASSWORD_FILE or use --encrypt)", err=True)
