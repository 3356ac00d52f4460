"""Reading a snapshot's files back: the primitive under dump, export and restore."""
from __future__ import annotations

from typing import BinaryIO, Callable, Iterator

from .chunklist import load_list
from .errors import IntegrityError
from .manifest import FileEntry, content_digest
from .repository import Repository


def iter_file_chunks(repo: Repository, entry: FileEntry) -> Iterator[bytes]:
    with repo.reader() as reader:
        ids = load_list(entry.chunks, reader)
        if content_digest(ids) != entry.digest:
            raise IntegrityError(f"chunk list of {entry.path} does not match the manifest's digest")
        for off in range(0, len(ids), 32):
            yield reader.read(ids[off:off + 32])


def write_file(repo: Repository, entry: FileEntry, out: BinaryIO,
               progress: Callable[[int], None] | None = None) -> int:
    """Write one file of a snapshot to ``out``; every chunk is hash-checked on the way."""
    written = 0
    for data in iter_file_chunks(repo, entry):
        out.write(data)
        written += len(data)
        if progress:
            progress(len(data))
    if written != entry.size:
        raise IntegrityError(f"{entry.path}: read {written} bytes, manifest says {entry.size}")
    return written
