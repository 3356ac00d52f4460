"""Backups on a schedule: the reference's frequency table as presets, one run, the loop,
and the systemd/cron text that runs the same thing outside a foreground process.

A run is: backup the agent, then (optionally) ``forget`` with the schedule's policy for
this agent on this host, then (optionally) ``verify --read-subset K/N`` where N is the
number of runs in a week and K is picked from the run's time slot, so a week of runs
reads every pack of the repository once, whichever way the runs are started.

The loop never dies of a failed run: the error is logged and the next tick tries
again.  SIGTERM (or SIGINT) lets the running backup finish and then ends the loop;
while waiting it ends at once.
"""
from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import SnapstoreError, UsageError
from ..repository import Repository
from .forget import Filter, forget_snapshots, plan_for_repository
from .policy import Policy, parse_duration

log = logging.getLogger("snapstore.schedule")

WEEK_S = 7 * 24 * 3600
_INTERVAL = re.compile(r"^(\d+)(s|min|h|d|w)$")
_UNIT_S = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": WEEK_S}


def parse_interval(text: str) -> int:
    """``30s``, ``15min``, ``1h``, ``12h``, ``1d``, ``1w`` -> seconds (``m`` is refused: minutes or months?)."""
    m = _INTERVAL.match(text.strip().lower())
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"invalid interval {text!r}: use a number with s, min, h, d or w (e.g. 1h, 12h, 1d)")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def format_interval(seconds: int) -> str:
    for unit in ("w", "d", "h", "min", "s"):
        if seconds % _UNIT_S[unit] == 0:
            return f"{seconds // _UNIT_S[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Preset:
    usage: str
    every: str
    policy: dict
    note: str


# The reference's "Backup Frequency Recommendations" table.
PRESETS = {
    "light": Preset("light", "1w", {"weekly": 4}, "weekly, kept 4 weeks (< 100 screenshots/day)"),
    "medium": Preset("medium", "1d", {"daily": 14}, "daily, kept 2 weeks (100-500 screenshots/day)"),
    "heavy": Preset("heavy", "12h", {"within": "7d"}, "twice daily, kept 1 week (> 500 screenshots/day)"),
    "critical": Preset("critical", "1h", {"within": "30d"},
                       "hourly (a schedule cannot see sessions; hourly catches each one), kept 30 days"),
}


@dataclass
class Schedule:
    interval_s: int
    policy: Policy | None                 # None: no forget after the backup
    verify: bool = True
    prune: bool = False                   # prune after a forget that removed something
    backup_args: dict = field(default_factory=dict)   # config_path, db_path, env_file, include_logs, tags

    @property
    def slices(self) -> int:
        """Runs per week: the verify slice count, so a week of runs reads every pack once."""
        return max(1, min(WEEK_S // self.interval_s, 1000))

    def slice_for(self, when: float) -> str:
        return f"{int(when // self.interval_s) % self.slices + 1}/{self.slices}"


def preset_schedule(usage: str, **backup_args) -> Schedule:
    preset = PRESETS[usage]
    policy = preset.policy
    return Schedule(parse_interval(preset.every),
                    Policy(**{k: parse_duration(v) if k == "within" else v for k, v in policy.items()}),
                    backup_args=backup_args)


@dataclass
class RunResult:
    ok: bool
    message: str


def run_once(repo: Repository, schedule: Schedule, when: float | None = None) -> RunResult:
    """One scheduled run: backup, forget (and prune), verify slice.  Errors are returned, not raised."""
    from ..backup import backup_agent
    from ..sources.agent import load_agent_source
    from ..verify import verify_repository

    when = time.time() if when is None else when
    args = schedule.backup_args
    try:
        source = load_agent_source(args.get("config_path"), args.get("db_path"), env_file=args.get("env_file"))
        result = backup_agent(repo, source, include_logs=args.get("include_logs", False),
                              tags=args.get("tags", ()))
        parts = [f"backup {result.snapshot.short_id} added {result.added_bytes} bytes"]
        if schedule.policy is not None:
            plan = plan_for_repository(repo, schedule.policy,
                                       selection=Filter(host=socket.gethostname(), agent=source.name))
            removed = forget_snapshots(repo, plan.remove_ids)
            parts.append(f"forget removed {len(removed)}")
            if removed and schedule.prune:
                from .prune import prune

                parts.append(f"prune freed {prune(repo).freed} bytes")
        if schedule.verify:
            subset = schedule.slice_for(when)
            report = verify_repository(repo, read_subset=subset)
            parts.append(f"verify {subset} {report.status}")
            if not report.clean:
                return RunResult(False, "; ".join(parts))
        return RunResult(True, "; ".join(parts))
    except SnapstoreError as exc:
        return RunResult(False, exc.message)
    except OSError as exc:
        return RunResult(False, f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")


class Loop:
    """The foreground scheduler: a run every ``interval``; ends after ``max_runs`` or on SIGTERM."""

    def __init__(self, repo: Repository, schedule: Schedule, max_runs: int | None = None,
                 emit: Callable[[str], None] = print):
        self.repo, self.schedule, self.max_runs, self.emit = repo, schedule, max_runs, emit
        self.stop = threading.Event()
        self.running = False
        self.pid = os.getpid()

    def _on_signal(self, signum, _frame) -> None:
        if os.getpid() != self.pid:  # a backup's forked worker inherited the handler: die as it would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        name = signal.Signals(signum).name
        self.emit(f"{name} received: {'finishing the running backup, then ' if self.running else ''}stopping")
        self.stop.set()

    def run(self) -> int:
        """Returns how many runs failed."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        failures = runs = 0
        next_at = time.monotonic()
        try:
            while not self.stop.is_set() and (self.max_runs is None or runs < self.max_runs):
                runs += 1
                self.emit(f"run {runs} started")
                self.running = True
                try:
                    result = run_once(self.repo, self.schedule)
                except Exception as exc:  # a bug in one run must not end the schedule either
                    log.exception("run %d crashed", runs)
                    result = RunResult(False, f"{type(exc).__name__}: {exc}")
                finally:
                    self.running = False
                if result.ok:
                    self.emit(f"run {runs} done: {result.message}")
                else:
                    failures += 1
                    self.emit(f"run {runs} failed: {result.message}; trying again at the next tick")
                if self.max_runs is not None and runs >= self.max_runs:
                    break
                next_at += self.schedule.interval_s
                while next_at <= time.monotonic():  # a run longer than the interval: skip missed ticks
                    next_at += self.schedule.interval_s
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        self.emit(f"schedule ended after {runs} run{'s' * (runs != 1)} ({failures} failed)")
        return failures


def snapstore_executable() -> list[str]:
    """How to start this snapstore: its console script beside this interpreter, on PATH, or via -c."""
    import shutil
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("snapstore")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("snapstore")
    return [found] if found else [sys.executable, "-c", "from snapstore.cli.main import main; main()"]


def once_command(repo: str, argv: list[str], options: Sequence[str] = ()) -> str:
    """The shell command a timer or cron runs: ``snapstore --repo R [-o K=V …] schedule --once …``
    (the backend options too: an S3 repository may need its region or profile)."""
    global_args = ["--repo", repo, *(a for option in options for a in ("-o", option))]
    return " ".join(shlex.quote(a) for a in [*snapstore_executable(), *global_args, "schedule", "--once", *argv])


def systemd_units(name: str, command: str, interval_s: int) -> str:
    calendar = {3600: "hourly", 86400: "*-*-* 02:00:00", WEEK_S: "Sun *-*-* 02:00:00",
                43200: "*-*-* 02,14:00:00"}.get(interval_s)
    timing = (f"OnCalendar={calendar}\nPersistent=true" if calendar
              else f"OnBootSec=5min\nOnUnitActiveSec={interval_s}s")
    return f"""# ~/.config/systemd/user/{name}.service  (or /etc/systemd/system/ as root)
[Unit]
Description=snapstore scheduled backup ({name})

[Service]
Type=oneshot
ExecStart={command}

# ~/.config/systemd/user/{name}.timer
[Unit]
Description=Run {name} every {format_interval(interval_s)}

[Timer]
{timing}
RandomizedDelaySec=60

[Install]
WantedBy=timers.target

# enable: systemctl --user daemon-reload && systemctl --user enable --now {name}.timer
"""


def cron_line(command: str, interval_s: int) -> str:
    minutes, hours = interval_s // 60, interval_s // 3600
    if interval_s % 60 == 0 and minutes < 60 and 60 % minutes == 0:
        spec = f"*/{minutes} * * * *" if minutes > 1 else "* * * * *"
    elif interval_s % 3600 == 0 and hours < 24 and 24 % hours == 0:
        spec = f"0 */{hours} * * *" if hours > 1 else "0 * * * *"
    elif interval_s == 86400:
        spec = "0 2 * * *"
    elif interval_s == WEEK_S:
        spec = "0 2 * * 0"
    else:
        raise UsageError(f"cron cannot run something every {format_interval(interval_s)}: "
                         "use --print-systemd, or an interval cron can express")
    return f"{spec} {command}"

