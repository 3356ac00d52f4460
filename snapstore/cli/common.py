"""What every subcommand shares: opening the repository, errors, JSON and progress output."""
from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from ..errors import SnapstoreError, UsageError
from ..repository import Repository
from ..repository.lock import lock_wait_from_env
from ..wording import plural  # noqa: F401  (for the commands)
from .plain import failure, json_text

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
REPO_HELP = "Repository directory, or s3:http[s]://HOST[:PORT]/BUCKET/PREFIX (or set SNAPSTORE_REPO)."


def _remember_repo(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta["snapstore.repo"] = value  # meta is shared by the whole context tree


# Every subcommand takes --repo too, so it may come before or after the command name (as in restic).
REPO_OPTION = click.Option(["--repo", "-r"], metavar="PATH|URL", expose_value=False, callback=_remember_repo,
                           help=REPO_HELP)


def selection_options(command):
    """``--agent``/``--host``: whose snapshots ``latest`` and the listings mean (``manifest.Selection``)."""
    command = click.option("--host", help="Only snapshots taken on this host.")(command)
    return click.option("--agent", help="Only snapshots of this agent ('latest' is its newest).")(command)


class SnapstoreGroup(click.Group):
    """Turns typed errors into ``snapstore: message`` and their exit codes, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SnapstoreError, KeyboardInterrupt, OSError) as exc:
            line = failure(exc)
            if line is None:
                raise
            fail(*line)


def fail(message: str, code: int) -> None:
    click.echo(f"snapstore: {message}", err=True)
    sys.exit(code)


def repo_path(ctx: click.Context) -> str:
    path = ctx.meta.get("snapstore.repo") or ctx.find_root().params.get("repo") or os.environ.get("SNAPSTORE_REPO")
    if not path:
        raise UsageError("no repository given: use --repo PATH or set SNAPSTORE_REPO")
    return path


def repo_options(ctx: click.Context) -> dict[str, str]:
    """``-o KEY=VALUE`` backend options (restic's ``-o s3.region=…``)."""
    pairs = {}
    for item in ctx.find_root().params.get("options") or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"bad option {item!r}: use -o KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def open_repo(ctx: click.Context) -> Repository:
    lock_wait_from_env()  # a bad setting is reported by every command, not only those that lock
    repo = Repository.open(repo_path(ctx), repo_options(ctx), cache=not ctx.find_root().params.get("no_cache"))
    repo.command = ctx.command_path
    repo.on_lock_wait = lambda line: click.echo(f"snapstore: {line}", err=True)
    ctx.call_on_close(repo.close)
    return repo


def open_repo_for_reading(ctx: click.Context) -> Repository:
    """The repository under a shared lock held until the command ends: a prune can never
    delete what an export, restore or dump is reading."""
    repo = open_repo(ctx)
    ctx.with_resource(repo.lock())
    return repo


def emit_json(doc: Any) -> None:
    click.echo(json_text(doc))


def selection(agent: str | None, host: str | None):
    from ..manifest import Selection

    return Selection(agent, host)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """A one-line progress meter on stderr, shown only on a terminal and never with --json.

    ``total`` 0: the amount is counted without a percentage (an export's size is only
    known at its end).
    """

    def __init__(self, label: str, total: int, enabled: bool, verb: str = "done"):
        self.label, self.total, self.done, self.verb = label, total, 0, verb
        self.enabled = enabled and sys.stderr.isatty()
        self.start = self._last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            rate = self.done / max(now - self.start, 1e-6)
            if self.total:
                amount = f"{human_bytes(self.done)} / {human_bytes(self.total)} ({100 * self.done / self.total:.0f}%, "
            else:  # the size of the result is not known beforehand
                amount = f"{human_bytes(self.done)} {self.verb} ("
            click.echo(f"\r{self.label}: {amount}{human_bytes(rate)}/s)   ", err=True, nl=False)

    def close(self) -> None:
        if self.enabled:
            click.echo("\r" + " " * 72 + "\r", err=True, nl=False)
