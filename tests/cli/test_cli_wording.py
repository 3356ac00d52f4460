"""What the CLI prints reads as a person writes: counts in the right number, values without
Python reprs, help that says what a command does, and no promise of a command that does not
exist (README, guide and messages alike)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from helpers import ok, run_cli
from snapstore.cli.main import COMMANDS
from snapstore.sample_agent import create_sample_agent

ROOT = Path(__file__).resolve().parents[2]
WRONG_PLURAL = re.compile(r"\b1 (?:new )?(snapshot|file|chunk|pack|blob|chunk reference)s\b")


@pytest.fixture(scope="module")
def one_snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("wording")
    agent = create_sample_agent(root / "agent", scale=0.05, seed=21)
    repo = root / "repo"
    ok(run_cli("init", repo=repo))
    backup = ok(run_cli("backup", "--config", agent.config_path, "--tag", "nightly", "--tag", "weekly", repo=repo))
    return root, agent, repo, backup.stdout


def test_counts_of_one_are_singular(one_snapshot):
    root, _, repo, backup_out = one_snapshot
    outputs = [backup_out] + [ok(run_cli(*args, repo=repo)).stdout for args in (
        ("snapshots",), ("show", "latest"), ("ls", "latest"), ("verify",), ("verify", "--full"),
        ("export", "latest", root / "out"))]
    assert ok(run_cli("snapshots", repo=repo)).stdout.rstrip().endswith("\n1 snapshot")
    assert "verify (quick): 1 snapshot," in outputs[4]
    for text in outputs:
        assert not WRONG_PLURAL.search(text), text


def test_show_prints_plain_values_and_the_files(one_snapshot):
    _, agent, repo, _ = one_snapshot
    text = ok(run_cli("show", "latest", repo=repo)).stdout
    assert "tags:     nightly, weekly" in text and "parent:   -" in text
    for python_repr in ("['", "None", "b'", "True", "False"):
        assert python_repr not in text, (python_repr, text)
    files = text.split("  files:\n", 1)[1].splitlines()
    listed = ok(run_cli("ls", "latest", "--json", repo=repo)).stdout
    assert len(files) >= 3 and all(line.split()[-1] in listed for line in files)
    assert any(line.endswith("database/sqlite.db") for line in files)


def test_restore_help_names_its_real_arguments():
    text = ok(run_cli("restore", "--help")).stdout
    assert "SOURCE into TARGET" not in text and "--to" in text and "latest" in text


def test_backup_help_says_what_happens_without_arguments():
    assert "$MIRIX_DIR" in ok(run_cli("backup", "--help")).stdout


def _string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def test_messages_name_only_commands_that_exist():
    """A message (string constant, docstrings aside) names only commands that exist (prune once was not one)."""
    for path in (ROOT / "snapstore").rglob("*.py"):
        for text in _string_constants(path):
            assert "prune" not in text.lower() or "prune" in COMMANDS, (path, text)
            for name in re.findall(r"(?:'|`|: )snapstore ([a-z][a-z-]+)", text):  # a command to run
                assert name in COMMANDS, (path, text)


@pytest.mark.parametrize("doc", ["README.md", "docs/user-guide.md"])
def test_docs_name_only_commands_that_exist(doc):
    text = (ROOT / doc).read_text()
    blocks = "\n".join(re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M))
    names = re.findall(r"^snapstore (?:--repo \S+ )?([a-z][a-z-]+)", blocks, re.M)
    names += re.findall(r"`snapstore (?:--repo \S+ )?([a-z][a-z-]+)", text)
    assert len(names) > 5
    for name in names:
        assert name in COMMANDS, (doc, name)
    assert "prune" not in text.lower() or "prune" in COMMANDS
