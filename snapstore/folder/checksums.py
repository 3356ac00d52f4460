"""MD5s of a folder's files: taken while they are written, and checked against the folder's own
``verification/checksums.md5`` and ``metadata.json``."""
from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..errors import IntegrityError
from .layout import CHECKSUMS, METADATA, folder_files, parse_md5_file

BLOCK = 8 << 20


def file_md5(path: Path, progress: Callable[[int], None] | None = None) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            md5.update(block)
            if progress:
                progress(len(block))
    return md5.hexdigest()


class FollowingMD5:
    """The MD5 of a file still being written, taken in a thread as its prefix becomes final.

    The writer calls ``advance(n)`` whenever the first ``n`` bytes will not change
    again, and ``finish()`` when it is done (or ``close()`` when it failed; the
    ``with`` form does that); hashing (from the page cache) then overlaps the
    writing instead of following it.  Reads are unbuffered: a buffered reader
    would read ahead into bytes not written yet.  The file is opened, and the
    thread started, at the first ``advance``: the file may be created after this
    object, and a writer may fork its workers before that without a live thread.
    """

    def __init__(self, path: Path):
        self._path = path
        self._file = None
        self._md5 = hashlib.md5()
        self._ready = 0
        self._done = False
        self._cancelled = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "FollowingMD5":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, upto: int) -> None:
        with self._cond:
            if self._done:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"md5 {self._path.name}", daemon=True)
                self._thread.start()
            if upto > self._ready:
                self._ready = upto
                self._cond.notify()

    def _run(self) -> None:
        hashed = 0
        try:
            while True:
                with self._cond:
                    while self._ready <= hashed and not self._done:
                        self._cond.wait()
                    if self._cancelled or (self._done and hashed >= self._ready):
                        return
                    ready = self._ready
                if self._file is None:
                    self._file = open(self._path, "rb", buffering=0)
                while hashed < ready and not self._cancelled:
                    block = self._file.read(min(BLOCK, ready - hashed))
                    if not block:
                        raise IntegrityError(f"{self._path} is shorter than the {ready} bytes written")
                    self._md5.update(block)
                    hashed += len(block)
        except BaseException as exc:  # handed to finish()
            self._error = exc

    def finish(self, size: int | None = None) -> str:
        """Hash up to ``size`` (default: the file's size now) and return the hex digest."""
        self.advance(self._path.stat().st_size if size is None else size)
        self._stop()
        if self._error is not None:
            raise self._error
        return self._md5.hexdigest()

    def close(self) -> None:
        """Stop without a result (the writer failed); harmless after ``finish``."""
        with self._cond:
            if self._done:
                return
            self._cancelled = True
        self._stop()

    def _stop(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        if self._file is not None:
            self._file.close()
            self._file = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _md5_if_there(path: Path, progress: Callable[[int], None] | None) -> str | None:
    """None for a file that went away after the folder was listed."""
    try:
        return file_md5(path, progress)
    except FileNotFoundError:
        return None


def _serialised(progress: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """``progress`` callable from the hashing threads, one call at a time."""
    if progress is None:
        return None
    lock = threading.Lock()

    def report(n: int) -> None:
        with lock:
            progress(n)
    return report


def checksum_problems(folder: Path, metadata: dict,
                     progress: Callable[[int], None] | None = None) -> tuple[dict[str, str], list[str]]:
    """(the checksums listed, every problem found), naming each file at fault.

    ``progress`` is called with the bytes hashed (its ``total``, if it has one, is set
    to the bytes to hash).  Raises ``UnsafePath`` for links or paths that leave the
    folder: those are refused outright rather than reported.
    """
    present = set(folder_files(folder))
    try:
        listed = parse_md5_file((folder / CHECKSUMS).read_text())
    except FileNotFoundError:
        return {}, [f"{CHECKSUMS} is missing"]
    except IntegrityError as exc:
        return {}, [str(exc)]
    problems = []
    recorded = metadata.get("checksums") or {}
    disagree = sorted(p for p, d in recorded.items() if listed.get(p) != d)
    if disagree:
        problems.append(f"{METADATA} and {CHECKSUMS} disagree about {', '.join(disagree)}")
    to_check = sorted((p for p in listed if p in present), key=lambda p: -_size(folder / p))  # largest first
    if progress is not None and hasattr(progress, "total"):
        progress.total += sum(_size(folder / p) for p in to_check)
    report = _serialised(progress)
    with ThreadPoolExecutor(max(1, min(len(to_check), os.cpu_count() or 1))) as pool:  # MD5 releases the GIL
        digests = dict(zip(to_check, pool.map(lambda p: _md5_if_there(folder / p, report), to_check)))
    missing = sorted([p for p in listed if p not in present] + [p for p in to_check if digests[p] is None])
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    bad = sorted(p for p in to_check if digests[p] is not None and digests[p] != listed[p])
    if bad:
        problems.append(f"checksum mismatch: {', '.join(bad)}")
    return listed, problems
