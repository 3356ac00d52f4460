"""The ``snapstore`` command: a thin layer over the library, one module per subcommand."""
from __future__ import annotations

import sys

import click

from .. import __version__
from . import (backup_cmd, dump_cmd, export_cmd, import_cmd, init_cmd, ls_cmd, repair_cmd, restore_cmd,
               sample_agent_cmd, show_cmd, snapshots_cmd, verify_cmd, verify_folder_cmd)
from .common import SnapstoreGroup, fail


@click.group(cls=SnapstoreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--repo", "-r", metavar="PATH", envvar="SNAPSTORE_REPO",
              help="Repository directory (or set SNAPSTORE_REPO).")
@click.version_option(__version__, prog_name="snapstore")
def cli(repo: str | None) -> None:
    """Content-addressed, deduplicated snapshots of AI-agent memory."""


for module in (init_cmd, backup_cmd, snapshots_cmd, show_cmd, ls_cmd, dump_cmd, export_cmd, import_cmd,
               restore_cmd, repair_cmd, sample_agent_cmd, verify_cmd, verify_folder_cmd):
    cli.add_command(module.command)


def main() -> None:
    try:
        cli.main(prog_name="snapstore", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        fail("interrupted", 130)
    except click.ClickException as exc:
        # Usage mistakes get the same one-line form as every other error.
        hint = f" (see: {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
        fail(f"{exc.format_message()}{hint}", exc.exit_code)
