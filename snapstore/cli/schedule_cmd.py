"""snapstore schedule: backups on a schedule (the reference's usage presets or --every), with
forget and a verify slice after each run; in the foreground, once, or as systemd/cron text."""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

import click

from ..errors import UsageError
from ..lifecycle.schedule import (PRESETS, Loop, Schedule, cron_line, format_interval, once_command,
                                  parse_interval, preset_schedule, run_once, systemd_units)
from .common import open_repo, repo_path
from .forget_cmd import build_policy, policy_options

def _stamp(line: str) -> None:
    click.echo(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {line}")
    sys.stdout.flush()


@click.command("schedule")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The agent's mirix.yaml.")
@click.option("--db", "db_path", help="The agent's database (SQLite file or postgresql:// URL).")
@click.option("--env-file", "env_file", type=click.Path(dir_okay=False),
              help="The agent's environment settings to store (as backup --env-file).")
@click.option("--include-logs", is_flag=True, help="Also store the agent's logs/ directory.")
@click.option("--tag", "tags", multiple=True, help="Tag every snapshot (repeatable).")
@click.option("--usage", type=click.Choice(sorted(PRESETS)),
              help="The reference's presets: light = weekly, kept 4 weeks; medium = daily, kept 2 weeks; "
                   "heavy = twice daily, kept 1 week; critical = hourly, kept 30 days.")
@click.option("--every", metavar="INTERVAL", help="Run every INTERVAL (30s, 15min, 1h, 12h, 1d, 1w).")
@policy_options
@click.option("--prune", "then_prune", is_flag=True,
              help="After a forget that removed snapshots, delete the data nothing references any more "
                   "(as 'snapstore prune'; it waits for running backups of other hosts).")
@click.option("--no-verify", is_flag=True, help="Skip the verify slice after each run.")
@click.option("--runs", type=click.IntRange(min=1), metavar="N", help="Stop after N runs (default: run until SIGTERM).")
@click.option("--once", is_flag=True, help="Do one run now and exit (what the timer or cron line runs).")
@click.option("--print-systemd", is_flag=True, help="Print a systemd service and timer doing these runs, and exit.")
@click.option("--print-cron", is_flag=True, help="Print a crontab line doing these runs, and exit.")
@click.pass_context
def command(ctx: click.Context, config_path, db_path, env_file, include_logs, tags, usage, every, keep_last, keep_hourly,
            keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within, keep_tag, then_prune, no_verify, runs, once,
            print_systemd, print_cron) -> None:
    """Back up the agent on a schedule; each run ends with forget (if a keep policy is set;
    with --prune, then prune) and a verify slice (1/N of the packs, N = runs per week, so a week reads them all).

    In the foreground a failed run is logged and tried again at the next tick; SIGTERM lets
    the running backup finish, then exits.
    """
    if (usage is None) == (every is None):
        raise UsageError("give --usage light|medium|heavy|critical or --every INTERVAL")
    if sum((once, print_systemd, print_cron)) > 1:
        raise UsageError("--once, --print-systemd and --print-cron exclude each other")
    if not config_path and not db_path:
        raise UsageError("give the agent: --config mirix.yaml or --db PATH|URL")
    backup_args = {"config_path": config_path, "db_path": db_path, "include_logs": include_logs, "tags": tags}
    if env_file:
        backup_args["env_file"] = os.path.abspath(env_file)
    keeps = (keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    explicit = any(keeps) or keep_within or keep_tag
    if usage:
        schedule = preset_schedule(usage, **backup_args)
        if explicit:
            schedule.policy = build_policy(*keeps, keep_within, keep_tag)
    else:
        policy = build_policy(*keeps, keep_within, keep_tag) if explicit else None
        schedule = Schedule(parse_interval(every), policy, backup_args=backup_args)
    if then_prune and schedule.policy is None:
        raise UsageError("--prune needs a keep policy (--usage or --keep-...): without forget there is nothing to free")
    schedule.verify = not no_verify
    schedule.prune = then_prune
    if print_systemd or print_cron:
        location = repo_path(ctx)
        if not location.startswith("s3:"):  # a directory: the timer runs elsewhere; a URL is one already
            location = os.path.abspath(location)
        options = ctx.find_root().params.get("options") or ()
        command_line = once_command(location, _once_argv(ctx), options)
        if print_cron:
            click.echo(cron_line(command_line, schedule.interval_s))
        else:
            name = f"snapstore-{usage or 'backup'}"
            click.echo(systemd_units(name, command_line, schedule.interval_s), nl=False)
        return
    repo = open_repo(ctx)
    if once:
        result = run_once(repo, schedule)
        _stamp(("done: " if result.ok else "failed: ") + result.message)
        sys.exit(0 if result.ok else 1)
    policy = schedule.policy.describe() if schedule.policy else "no forget"
    _stamp(f"schedule: every {format_interval(schedule.interval_s)}, {policy}, "
           f"{'verify slices of ' + str(schedule.slices) if schedule.verify else 'no verify'}")
    Loop(repo, schedule, max_runs=runs, emit=_stamp).run()


def _once_argv(ctx: click.Context) -> list[str]:
    """This command's options, minus the ones that only shape this invocation."""
    out: list[str] = []
    for param in ctx.command.params:
        if param.name in ("once", "print_systemd", "print_cron", "runs") or not isinstance(param, click.Option):
            continue
        value = ctx.params.get(param.name)
        flag = param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0]
        if param.is_flag:
            if value:
                out.append(flag)
        elif param.multiple:
            for v in value or ():
                out += [flag, str(v)]
        elif value not in (None, 0, ""):
            out += [flag, os.path.abspath(value) if param.name in ("config_path", "env_file") else str(value)]
    return out
