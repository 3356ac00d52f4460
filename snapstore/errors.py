"""Typed errors: each class carries its one-line message template and exit code.

The CLI turns any ``SnapstoreError`` into ``snapstore: <message>`` on stderr and
exits with ``exit_code``; nothing else is printed, so scripts can branch on the
code.  Codes follow restic's small table where one exists (10 repository
missing, 11 lock failed, 12 wrong key) so that wrappers written for restic keep
working.
"""
from __future__ import annotations

import errno


class SnapstoreError(Exception):
    """Generic snapstore failure."""

    exit_code = 1

    def __init__(self, message: str | None = None):
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class UsageError(SnapstoreError):
    """Bad command-line or API usage."""

    exit_code = 2


class RepositoryNotFound(SnapstoreError):
    """No snapstore repository at this path."""

    exit_code = 10


class RepositoryExists(SnapstoreError):
    """A repository already exists at this path."""

    exit_code = 2


class UnsupportedFormat(SnapstoreError):
    """The repository or folder was written by a newer snapstore."""

    exit_code = 2


class LockFailed(SnapstoreError):
    """The repository is locked by another process."""

    exit_code = 11


class WrongKey(SnapstoreError):
    """Wrong passphrase or key."""

    exit_code = 12


class SnapshotNotFound(SnapstoreError):
    """No such snapshot."""

    exit_code = 2


class AmbiguousSnapshot(SnapshotNotFound):
    """``latest`` would have to pick among several agents or hosts."""


class SourceError(SnapstoreError):
    """The agent's data could not be read."""

    exit_code = 3


class IntegrityError(SnapstoreError):
    """Stored data does not match its hash."""

    exit_code = 4


class MissingChunk(IntegrityError):
    """A chunk named by a snapshot is not in the repository."""


class UnsafePath(SnapstoreError):
    """A path tries to escape its folder."""

    exit_code = 2


class VerifyIncomplete(SnapstoreError):
    """Part of the repository could not be checked."""

    exit_code = 5


class DiskFull(SnapstoreError):
    """No space left where the command writes; what it wrote so far was removed."""

    exit_code = 1


def disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


class PgPrerequisite(SourceError):
    """A PostgreSQL prerequisite is missing (server unreachable, wrong password, privileges,
    pgvector); checked before any work, nothing was changed."""
