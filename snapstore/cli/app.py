"""The ``snapstore`` command as a click group: a thin layer over the library, one module per subcommand."""
from __future__ import annotations

import importlib
import os
import sys

import click

from .. import __version__
from .common import REPO_HELP, REPO_OPTION, SnapstoreGroup, fail

COMMANDS = {  # command name -> module; a module is imported only when its command runs
    "init": "init_cmd", "backup": "backup_cmd", "snapshots": "snapshots_cmd", "show": "show_cmd",
    "ls": "ls_cmd", "dump": "dump_cmd", "export": "export_cmd", "import": "import_cmd",
    "restore": "restore_cmd", "repair": "repair_cmd", "sample-agent": "sample_agent_cmd",
    "verify": "verify_cmd", "verify-folder": "verify_folder_cmd", "unlock": "unlock_cmd",
}
COMMANDS |= {"forget": "forget_cmd", "diff": "diff_cmd", "stats": "stats_cmd",
             "schedule": "schedule_cmd", "prune": "prune_cmd", "key": "key_cmd", "copy": "copy_cmd",
             "watch": "watch_cmd"}
NO_REPOSITORY = {"sample-agent", "verify-folder"}  # commands that never open a repository
FAST_EXIT = {"diff"}  # read-only: nothing is left to finish once its output is written
_invoked: list[str] = []  # the commands get_command gave out, the one that runs last


class LazyGroup(SnapstoreGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        command = importlib.import_module(f".{COMMANDS[name]}", __package__).command
        _invoked.append(name)
        if name not in NO_REPOSITORY and REPO_OPTION not in command.params:
            command.params.append(REPO_OPTION)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--repo", "-r", metavar="PATH|URL", envvar="SNAPSTORE_REPO",
              help=REPO_HELP)
@click.option("--option", "-o", "options", metavar="KEY=VALUE", multiple=True,
              help="Backend option: s3.region, s3.profile, s3.bucket-lookup=path|dns, s3.retries, s3.timeout.")
@click.option("--no-cache", is_flag=True, help="Read everything from the repository, use no local cache.")
@click.version_option(__version__, prog_name="snapstore")
def cli(repo: str | None, options: tuple[str, ...], no_cache: bool) -> None:
    """Content-addressed, deduplicated snapshots of AI-agent memory."""


def main() -> None:
    try:
        cli.main(prog_name="snapstore", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):  # also while a command's modules are imported
        fail("interrupted", 130)
    except click.ClickException as exc:
        # Usage mistakes get the same one-line form as every other error.
        hint = f" (see: {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
        fail(f"{exc.format_message()}{hint}", exc.exit_code)
    if _invoked and _invoked[-1] in FAST_EXIT:
        # The interpreter's teardown frees every object one by one: ~15 ms after a diff, for nothing.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            return  # a closed pipe: reported as the interpreter always does
        os._exit(0)
