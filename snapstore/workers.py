"""Forked worker pools that leave Ctrl-C to their parent.

A terminal's Ctrl-C sends SIGINT to the whole process group, workers included.
Left alone, each worker raises KeyboardInterrupt wherever it is and prints a
traceback before the parent has said ``snapstore: interrupted``; a worker hit
between its fork and its initializer dies, and ``multiprocessing.Pool`` then
hangs re-forking it.  So workers ignore SIGINT from the moment they exist: the
parent defers SIGINT while it forks them (they inherit that, then ignore it),
and raises the deferred interrupt once the pool is up.  Leaving the pool
terminates the workers with SIGTERM, which ends a process silently.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator


def ignore_interrupts(initializer: Callable | None = None, *args) -> None:
    """Worker initializer: ignore SIGINT, then run ``initializer(*args)``.  A parent's own
    SIGTERM/SIGUSR1 handlers (``snapstore watch``) are not the worker's: leaving the pool
    terminates workers with SIGTERM, which a caught SIGTERM would turn into a hang."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    if initializer is not None:
        initializer(*args)


@contextmanager
def interrupts_deferred() -> Iterator[list]:
    """Hold back SIGINT while workers are forked; the caller re-raises if the list is not empty."""
    caught: list = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)


def start_pool(context, workers: int, initializer: Callable | None = None, initargs: tuple = ()):
    """``context.Pool`` whose workers never see Ctrl-C; KeyboardInterrupt if one came while forking."""
    with interrupts_deferred() as caught:
        pool = context.Pool(workers, initializer=ignore_interrupts, initargs=(initializer, *initargs))
    if caught:
        pool.terminate()
        raise KeyboardInterrupt
    return pool
