"""Exceptions of the Mirix-compatible API, for the calls that have no result dictionary."""
from __future__ import annotations

from ..errors import SnapstoreError, UsageError


class AgentLoadError(SnapstoreError):
    """``AgentWrapper(..., load_from=PATH)`` could not load the backup."""

    exit_code = 1


class InvalidMigrationPackage(UsageError, ValueError):
    """The folder is not a usable migration package (a ``ValueError``, as in the reference)."""


class RecoveryError(SnapstoreError):
    """A recovery helper could not do its job."""

    exit_code = 1
