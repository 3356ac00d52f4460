"""Export refuses bad requests with one line, exit != 0, and changes nothing anywhere."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import ok, run_cli
from snapstore.sample_agent import create_sample_agent


def repo_listing(repo_path: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _, filenames in os.walk(repo_path):
        for name in filenames:
            full = Path(dirpath) / name
            st = full.stat()
            out[full.relative_to(repo_path).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*"))}


def assert_one_line_error(result, *mentions: str) -> str:
    assert result.returncode != 0, f"expected a failure:\n{result.stdout}"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("snapstore: "), lines[0]
    assert result.stdout == "", result.stdout
    for word in mentions:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-errors")
    agent = create_sample_agent(root / "agent", scale=1, seed=61)
    repo_path = root / "repo"
    ok(run_cli("init", repo=repo_path))
    ok(run_cli("backup", "--config", agent.config_path, "--include-logs", repo=repo_path))
    return {"root": root, "agent": agent, "repo_path": repo_path}


def test_unknown_snapshot_id(world, tmp_path):
    before = repo_listing(world["repo_path"])
    dest = tmp_path / "out"
    assert_one_line_error(run_cli("export", "deadbeef00", dest, repo=world["repo_path"]), "deadbeef00")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == [], "no staging directory may be left behind"
    assert repo_listing(world["repo_path"]) == before


@pytest.mark.parametrize("content", ["file", "hidden-file", "subdirectory"])
def test_destination_not_empty(world, tmp_path, content):
    dest = tmp_path / "out"
    dest.mkdir()
    if content == "file":
        (dest / "notes.txt").write_text("keep me\n")
    elif content == "hidden-file":
        (dest / ".keep").write_text("")
    else:
        (dest / "metadata.json").mkdir()
    before_tree, before_repo = tree(tmp_path), repo_listing(world["repo_path"])
    assert_one_line_error(run_cli("export", "latest", dest, repo=world["repo_path"]), str(dest))
    assert tree(tmp_path) == before_tree, "the destination (and its parent) must be left as they were"
    assert repo_listing(world["repo_path"]) == before_repo


def test_export_into_an_empty_existing_directory_works(world, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    ok(run_cli("export", "latest", dest, repo=world["repo_path"]))
    assert (dest / "metadata.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_destination_parent_is_a_file(world, tmp_path):
    (tmp_path / "plain-file").write_text("x\n")
    before = tree(tmp_path)
    assert_one_line_error(run_cli("export", "latest", tmp_path / "plain-file" / "out", repo=world["repo_path"]),
                          "plain-file")
    assert tree(tmp_path) == before


def test_destination_is_an_existing_file(world, tmp_path):
    dest = tmp_path / "out"
    dest.write_text("keep me\n")
    before = tree(tmp_path)
    assert_one_line_error(run_cli("export", "latest", dest, repo=world["repo_path"]), str(dest))
    assert tree(tmp_path) == before
