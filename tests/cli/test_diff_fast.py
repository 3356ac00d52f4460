"""The click-free ``snapstore diff`` (cli/fast.py) prints what the click command prints."""
import subprocess
import sys

import pytest

from helpers import SNAPSTORE, backed_up_agent, cli_env, ok, run_cli
from snapstore.cli.fast import parse
from snapstore.sample_agent import mutate_agent

CLICK = [sys.executable, "-c", "from snapstore.cli.app import main; main()"]


@pytest.mark.parametrize("argv, taken", [
    (["--repo", "R", "diff", "a", "b", "--json"], {"repo": "R", "refs": ["a", "b"], "json": True, "rows": 3}),
    (["diff", "a", "--rows=0", "b", "-r", "S"], {"sub_repo": "S", "refs": ["a", "b"], "rows": 0}),
    (["--repo=R", "--no-cache", "diff", "diff", "latest", "--rows", "12"],
     {"repo": "R", "no_cache": True, "refs": ["diff", "latest"], "rows": 12}),
])
def test_plain_forms_are_taken(argv, taken):
    args = parse(argv)
    assert args is not None and {k: args[k] for k in taken} == taken


@pytest.mark.parametrize("argv", [
    ["diff", "a"], ["diff", "a", "b", "c"], ["diff", "a", "--live"], ["diff", "a", "b", "--rows", "-1"],
    ["diff", "a", "b", "--rows", "²"], ["diff", "a", "b", "--rows"], ["diff", "a", "b", "--json", "--json"],
    ["diff", "a", "b", "--help"], ["diff", "a", "b", "--no-cache"], ["--json", "diff", "a", "b"],
    ["-o", "s3.region=x", "diff", "a", "b"], ["-rR", "diff", "a", "b"], ["diff", "a", "--", "b"],
    ["snapshots"], ["x", "diff", "a", "b"], ["--repo", "R", "--repo", "S", "diff", "a", "b"], [],
])
def test_anything_else_goes_to_click(argv):
    assert parse(argv) is None


def test_same_output_exit_code_and_errors_as_click(tmp_path):
    agent, repo = backed_up_agent(tmp_path, scale=0.3, seed=3)
    mutate_agent(agent.directory, 0.05, seed=4)
    ok(run_cli("backup", "--config", agent.config_path, repo=repo))
    env = cli_env()
    cases = [
        ["--repo", repo, "diff", "latest~1", "latest"],  # not a ref this version knows: the same error
        ["--repo", repo, "diff", "--json", "nosuch", "latest"],
        ["diff", "latest", "latest", "--repo", repo],
        ["diff", "latest", "latest"],  # no repository
        ["--repo", tmp_path / "none", "diff", "a", "b"],
    ]
    ids = [line.split()[0] for line in ok(run_cli("snapshots", repo=repo)).stdout.splitlines()[1:3]]
    cases += [["--repo", repo, "diff", ids[0], ids[1], *extra]
              for extra in ([], ["--json"], ["--rows", "0"], ["--rows=9", "--json"], ["--rows", "0", "--json"])]
    cases.append(["--repo", repo, "--no-cache", "diff", ids[1], ids[0]])
    for case in cases:
        case = [str(c) for c in case]
        fast, slow = (subprocess.run(cmd + case, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
                      for cmd in (SNAPSTORE, CLICK))
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr), case
        assert fast.stdout or fast.stderr.startswith("snapstore: "), case
    assert "added" in fast.stdout
    bad = subprocess.run(SNAPSTORE + ["--repo", str(repo), "diff", ids[0], ids[1]], capture_output=True, text=True,
                         env=cli_env(SNAPSTORE_LOCK_WAIT="soon"), stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and bad.stderr == "snapstore: SNAPSTORE_LOCK_WAIT must be a number of seconds >= 0, not 'soon'\n"
    # and it is the click-free path that answered: click was never imported
    traced = subprocess.run([sys.executable, "-X", "importtime", "-c", "from snapstore.cli.main import main; main()",
                             "--repo", str(repo), "diff", ids[0], ids[1], "--json"],
                            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert traced.returncode == 0 and '"tables"' in traced.stdout
    modules = {line.rsplit("|", 1)[-1].strip() for line in traced.stderr.splitlines()}
    assert "snapstore.cli.fast" in modules and "snapstore.lifecycle.diff.sqlite_diff" in modules
    assert "click" not in modules and "snapstore.cli.app" not in modules
