"""snapstore schedule: the real loop with a short interval and a bounded number of runs, a failing
run that does not end it, SIGTERM during a backup, and the systemd/cron text."""
import json
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from backends import backend_of
from helpers import assert_one_line_error, backed_up_agent, cli_env, ok, popen_cli, run_cli
from snapstore.errors import UsageError
from snapstore.lifecycle.schedule import PRESETS, cron_line, parse_interval, preset_schedule


def lines_until(proc, needle: str) -> list[str]:
    """Read the loop's stdout until a line containing ``needle`` (or the end)."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if needle in line:
            break
    return seen


def test_a_failed_run_is_logged_and_the_next_tick_succeeds_and_forget_runs(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=0.2, seed=1, repo=repo_url)
    db = Path(agent.db_path)
    hidden = db.with_name("away.db")
    db.rename(hidden)
    proc = popen_cli("schedule", "--config", agent.config_path, "--every", "1s", "--keep-last", "2",
                     "--runs", "8", repo=repo_path)
    seen = lines_until(proc, "run 1 failed")
    hidden.rename(db)
    out, err = proc.communicate(timeout=300)
    log = "".join(seen) + out
    assert proc.returncode == 0, err
    assert "run 1 failed" in log and "trying again at the next tick" in log
    done = [line for line in log.splitlines() if " done: backup " in line]
    assert done and "verify " in done[-1] and done[-1].endswith("clean")
    assert "schedule ended after 8 runs" in log
    # keep-last 2 after every run: two snapshots of the agent remain, whole
    assert len(json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)) == 2
    ok(run_cli("verify", repo=repo_path))


def test_sigterm_lets_the_running_backup_finish(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=3, seed=2, repo=repo_url)
    from snapstore.sample_agent import mutate_agent

    mutate_agent(agent.directory, 0.3, seed=3)  # a larger run to interrupt
    proc = popen_cli("schedule", "--config", agent.config_path, "--every", "1h", "--no-verify", repo=repo_path)
    seen = lines_until(proc, "run 1 started")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    log = "".join(seen) + out
    assert proc.returncode == 0, err
    assert "SIGTERM received" in log and "run 1 done: backup" in log
    assert "schedule ended after 1 run (0 failed)" in log
    snaps = json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)
    assert len(snaps) == 2
    ok(run_cli("verify", "--full", repo=repo_path))


def test_sigterm_while_waiting_ends_the_loop(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=0.2, seed=4, repo=repo_url)
    proc = popen_cli("schedule", "--config", agent.config_path, "--usage", "critical", repo=repo_path)
    seen = lines_until(proc, "run 1 done")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert "verify " in "".join(seen) and "schedule ended after 1 run" in out


def test_once_and_printed_units(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=0.2, seed=5, repo=repo_url)
    out = ok(run_cli("schedule", "--config", agent.config_path, "--usage", "medium", "--once", repo=repo_path)).stdout
    # keep-daily 14: the backup made earlier today is the same day's older snapshot
    assert "done: backup" in out and "forget removed 1" in out
    units = ok(run_cli("schedule", "--config", agent.config_path, "--usage", "heavy", "--print-systemd",
                       repo=repo_path)).stdout
    assert "[Timer]" in units and "OnCalendar=*-*-* 02,14:00:00" in units and "Type=oneshot" in units
    exec_line = next(line for line in units.splitlines() if line.startswith("ExecStart="))
    assert f"schedule --once --config {agent.config_path} --usage heavy" in exec_line
    # backend options go into the printed command too (an S3 repository may need its region or profile)
    options = ["-o", "s3.retries=4"] if backend_of(repo_path) == "s3" else []
    cron = ok(run_cli(*options, "schedule", "--config", agent.config_path, "--every", "6h", "--keep-daily", "7",
                      "--print-cron", repo=repo_path)).stdout.strip()
    assert cron.startswith("0 */6 * * * ") and cron.endswith("--every 6h --keep-daily 7")
    assert f"--repo {shlex.quote(str(repo_path))} {' '.join(options)}".rstrip() + " schedule --once" in cron
    # the printed command runs as it is
    ran = subprocess.run(shlex.split(cron)[5:], capture_output=True, text=True, timeout=300, env=cli_env())
    assert ran.returncode == 0 and "done: backup" in ran.stdout, ran.stderr
    for args, mention in ((["--every", "7h", "--print-cron"], "cron cannot"),
                          (["--every", "5m"], "invalid interval"),
                          ([], "--usage"),
                          (["--usage", "light", "--every", "1d"], "--usage"),
                          (["--usage", "light", "--once", "--print-cron"], "exclude")):
        result = run_cli("schedule", "--config", agent.config_path, *args, repo=repo_path)
        assert result.returncode == 2
        assert_one_line_error(result, mention)


def test_presets_follow_the_reference_table():
    assert {u: (PRESETS[u].every, preset_schedule(u).policy.describe()) for u in PRESETS} == {
        "light": ("1w", "keep-weekly 4"), "medium": ("1d", "keep-daily 14"),
        "heavy": ("12h", "keep-within 7d"), "critical": ("1h", "keep-within 30d")}
    assert preset_schedule("medium").slices == 7 and preset_schedule("heavy").slices == 14
    assert preset_schedule("light").slices == 1
    # a week of daily runs covers slices 1..7, each once
    day = 86400
    assert sorted(preset_schedule("medium").slice_for(day * n) for n in range(7)) == [f"{k}/7" for k in range(1, 8)]
    with pytest.raises(UsageError):
        cron_line("x", parse_interval("90min"))


def test_once_with_prune_frees_what_forget_released(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=0.5, seed=8, repo=repo_url)
    from snapstore.sample_agent import mutate_agent

    mutate_agent(agent.directory, 0.5, seed=9)  # the forgotten snapshot then holds data of its own
    out = ok(run_cli("schedule", "--config", agent.config_path, "--usage", "medium", "--prune", "--once",
                     repo=repo_path)).stdout
    assert "forget removed 1" in out
    freed = int(out.split("prune freed ", 1)[1].split(" bytes", 1)[0])
    assert freed > 0
    assert len(json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)) == 1
    ok(run_cli("verify", "--full", repo=repo_path))
    assert "--prune" in ok(run_cli("schedule", "--config", agent.config_path, "--usage", "medium", "--prune",
                                   "--print-cron", repo=repo_path)).stdout


def test_prune_without_a_keep_policy_is_a_usage_error(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=0.2, seed=10, repo=repo_url)
    result = run_cli("schedule", "--config", agent.config_path, "--every", "1h", "--prune", "--once", repo=repo_path)
    assert_one_line_error(result, "needs a keep policy")
    assert result.returncode == UsageError.exit_code
