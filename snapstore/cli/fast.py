"""``snapstore diff A B [--json] [--rows N]`` without click.

A diff is a question asked often and answered in a fraction of a second, of which
importing click and building its command tree is a tenth.  This path takes exactly
the plain forms of that command (``--repo``/``-r`` and ``--no-cache`` before it,
``--repo``, ``--json``, ``--rows`` after it) and prints what the click command prints
(diff_cmd.py uses the same ``text_lines``); anything else -- help, ``--live``, another
option, a repeated one, a malformed value -- goes to click, which also reports usage
errors in its own words.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Iterator

from .plain import failure, json_text

_ANSI = re.compile(r"\033\[[0-?]*[ -/]*[@-~]")  # click.echo's: stripped when not writing to a terminal


def parse(argv: list[str]) -> dict | None:
    """The diff's arguments, or None when click should parse ``argv``."""
    args = {"repo": None, "sub_repo": None, "no_cache": False, "refs": [], "json": False, "rows": 3}
    seen: set[str] = set()
    i, command = 0, False
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg == "diff" and not command:
            command = True
        elif name in ("--repo", "-r") and not (eq and name == "-r"):
            if not eq:
                if i + 1 >= len(argv):
                    return None
                i, value = i + 1, argv[i + 1]
            key = "sub_repo" if command else "repo"
            if key in seen:
                return None
            seen.add(key)
            args[key] = value
        elif arg == "--no-cache" and not command and arg not in seen:
            seen.add(arg)
            args["no_cache"] = True
        elif arg == "--json" and command and arg not in seen:
            seen.add(arg)
            args["json"] = True
        elif name == "--rows" and command and name not in seen:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                i, value = i + 1, argv[i + 1]
            if not (value.isascii() and value.isdigit()):
                return None
            seen.add(name)
            args["rows"] = int(value)
        elif command and not arg.startswith("-") and len(args["refs"]) < 2:
            args["refs"].append(arg)
        else:
            return None
        i += 1
    return args if command and len(args["refs"]) == 2 else None


def _usable(stream) -> bool:
    """A stream click.echo would write to as it is (else click re-wraps it: let click print)."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    return stream is not None and encoding.lower().replace("_", "-") not in ("ascii", "us-ascii", "646", "ansi-x3.4-1968")


def echo(text: str, err: bool = False) -> None:
    """click.echo of a str."""
    stream = sys.stderr if err else sys.stdout
    if not stream.isatty():
        text = _ANSI.sub("", text)
    stream.write(text + "\n")
    stream.flush()


def text_lines(result, live: bool) -> Iterator[str]:
    """The diff's text output, line by line."""
    target = "the live agent" if live else result.read["to"][:8]
    yield f"{result.read['from'][:8]} -> {target} ({result.engine})"
    changed_tables = [t for t in result.ordered_tables() if result.tables[t].total]
    width = max((len(t) for t in changed_tables), default=0)
    for name in changed_tables:
        ch = result.tables[name]
        yield f"  {name:{width}}  +{ch.added} added  -{ch.removed} removed  ~{ch.changed} changed"
        for kind, mark in (("added", "+"), ("changed", "~"), ("removed", "-")):
            for sample in ch.samples[kind]:
                yield f"      {mark} {sample['summary'] or sample['key']}"
    if not changed_tables:
        yield "  no rows changed"
    for kind in ("added", "changed", "removed"):
        for path in result.files[kind]:
            yield f"  file {kind}: {path}"


def run(argv: list[str]) -> bool:
    """Run the diff ``argv`` asks for and exit; False (nothing done) when click should run it."""
    args = parse(argv)
    if args is None or not (_usable(sys.stdout) and _usable(sys.stderr)):
        return False
    from ..errors import UsageError

    try:
        from ..lifecycle.diff import diff_snapshots
        from ..repository import Repository
        from ..repository.lock import lock_wait_from_env

        lock_wait_from_env()  # as open_repo: a bad setting is reported first
        path = args["sub_repo"] or args["repo"] or os.environ.get("SNAPSTORE_REPO")
        if not path:
            raise UsageError("no repository given: use --repo PATH or set SNAPSTORE_REPO")
        repo = Repository.open(path, {}, cache=not args["no_cache"])
        repo.command = "snapstore diff"
        repo.on_lock_wait = lambda line: echo(f"snapstore: {line}", err=True)
        try:
            result = diff_snapshots(repo, args["refs"][0], args["refs"][1], args["rows"])
        finally:
            repo.close()
        if args["json"]:
            echo(json_text(result.as_dict(with_samples=args["rows"] > 0)))
        else:
            for line in text_lines(result, live=False):
                echo(line)
    except (Exception, KeyboardInterrupt) as exc:
        line = failure(exc)
        if line is None:
            raise
        echo(f"snapstore: {line[0]}", err=True)
        sys.exit(line[1])
    # Read-only: nothing is left to finish once the output is written, and the interpreter's
    # teardown would free every object one by one (~15 ms after a diff).
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        return True  # a closed pipe: reported as the interpreter always does
    os._exit(0)
