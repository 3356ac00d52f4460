"""The ``snapstore`` command's entry point: a plain diff runs without click (fast.py), every
other command through the click group (app.py), imported only then."""
from __future__ import annotations

import sys


def main() -> None:
    from . import fast

    if fast.run(sys.argv[1:]):
        return
    from .app import main as click_main

    click_main()


def __getattr__(name: str):
    """``cli``, ``COMMANDS``, …: the click group's module, as before the entry point moved
    (not for the import system's own questions, such as ``__path__``)."""
    if name.startswith("__"):
        raise AttributeError(name)
    from . import app

    return getattr(app, name)
