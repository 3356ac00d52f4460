"""docs/cli.md is exactly what scripts/gen_cli_docs.py generates from the click commands."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from snapstore.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_cli_reference_is_up_to_date():
    generated = load_generator().render()
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == generated, "docs/cli.md is out of date: run python scripts/gen_cli_docs.py"


def test_every_command_and_option_is_documented():
    text = load_generator().render()
    for name, command in cli.commands.items():
        assert f"## `snapstore {name}`" in text
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-") and not getattr(param, "hidden", False):
                    assert opt in text, (name, opt)


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    generator = load_generator()
    stale = tmp_path / "cli.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(generator, "OUTPUT", stale)
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0 and generator.main(["--check"]) == 0
    assert stale.read_text() == generator.render()


def test_user_guide_uses_real_commands_and_valid_python():
    import re

    guide = (ROOT / "docs" / "user-guide.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", guide, re.S):
        compile(block, "<user-guide>", "exec")
    commands = set(cli.list_commands(None))
    code = re.findall(r"```(?:bash|cron)\n(.*?)```", guide, re.S) + re.findall(r"`([^`\n]+)`", guide)
    used = {m for text in code for m in re.findall(r"\bsnapstore(?: --repo \S+)? ([a-z][a-z-]+)", text)}
    assert used and used <= commands, used - commands
    import snapstore

    for name in re.findall(r"from snapstore import ([\w, ]+)", guide):
        for item in name.split(","):
            assert hasattr(snapstore, item.strip()), item
