"""snapstore watch: follow a WAL-mode SQLite agent and snapshot it every interval, reading only what changed."""
from __future__ import annotations

import json
import os
import select
import signal

import click

from ..lifecycle.schedule import parse_interval
from ..sources.agent import load_agent_source
from ..watch import TickResult, Watcher
from .common import JSON_OPTION, human_bytes, open_repo

WAKE_SIGNALS = (signal.SIGUSR1, signal.SIGINT, signal.SIGTERM)


@click.command("watch")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The agent's mirix.yaml.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="The agent's SQLite database (WAL mode).")
@click.option("--agent", help="The agent's name for a --db without a mirix.yaml beside it.")
@click.option("--env-file", "env_file", type=click.Path(dir_okay=False),
              help="The agent's environment settings to store (as for backup).")
@click.option("--host", help="Record this host name instead of the machine's.")
@click.option("--interval", default="60s", show_default=True, metavar="INTERVAL",
              help="Snapshot every INTERVAL (30s, 15min, 1h); SIGUSR1 takes one at once.")
@click.option("--include-logs", is_flag=True, help="Also store the agent's logs/ directory.")
@click.option("--tag", "tags", multiple=True, help="Tag every snapshot (repeatable).")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, config_path, db_path, agent, env_file, host, interval, include_logs, tags,
            as_json: bool) -> None:
    """Snapshot a running SQLite agent every --interval, reading only the pages committed since
    the previous snapshot (the first one, and one after a gap, reads everything).

    Holds a read transaction on the database between snapshots so that SQLite keeps the
    WAL frames it has not seen; a tick with no change writes no snapshot. SIGUSR1 takes a
    snapshot now; SIGINT/SIGTERM take a last one and exit. Needs WAL mode.
    """
    every = parse_interval(interval)
    source = load_agent_source(config_path, db_path, agent=agent, env_file=env_file)
    repo = open_repo(ctx)
    watcher = Watcher(repo, source, host=host, tags=tags, include_logs=include_logs, interval_s=every)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    pending: list[int] = []
    watch_pid = os.getpid()

    def note(sig: int, _frame) -> None:
        if os.getpid() != watch_pid:  # a pool worker between its fork and its initializer
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            return
        pending.append(sig)

    previous = {sig: signal.signal(sig, note) for sig in WAKE_SIGNALS}
    old_wakeup = signal.set_wakeup_fd(wake_w)
    try:
        _report(watcher.tick(), as_json)
        while True:
            if not pending:
                watcher.wait(every, wake_r)
                while select.select([wake_r], [], [], 0)[0]:
                    os.read(wake_r, 512)
            stop = any(sig != signal.SIGUSR1 for sig in pending)
            pending.clear()
            _report(watcher.tick(final=stop), as_json)
            if stop:
                return
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)
        watcher.close()


def _report(result: TickResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.as_dict(), default=str))
        return
    if result.backup is None:
        click.echo(f"no change since the last snapshot ({result.page_count} pages)")
        return
    snap = result.backup.snapshot
    how = (f"incremental: {result.pages_read} of {result.page_count} pages read" if result.capture == "incremental"
           else f"full: {result.pages_read} of {result.page_count} pages read; {result.reason}")
    click.echo(f"snapshot {snap.short_id} of agent {snap.agent} saved ({how}), "
               f"added {human_bytes(result.backup.added_bytes)} in {result.tick_s:.2f} s")
