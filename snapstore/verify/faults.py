"""Typed outcomes of a verify run.

``VerifyIncomplete`` is the "could not check" exit: some part of the repository
could not be read at all (permission denied, I/O error, a manifest of a newer
format, a crashed worker), so the run cannot say the repository is clean.  It is
distinct from ``IntegrityError`` (exit 4, damage found) so that a daily job can
tell "your backups are broken" from "the check itself did not run".

``BlobFault`` is internal: a single blob that could not be read, carrying what
the damage report needs (kind, blob, pack).
"""
from __future__ import annotations

from ..errors import IntegrityError, VerifyIncomplete  # noqa: F401  (VerifyIncomplete is re-exported)


class BlobFault(IntegrityError):
    """One blob is missing or does not match its hash."""

    def __init__(self, kind: str, blob_id: bytes, pack_id: bytes | None, message: str):
        super().__init__(message)
        self.kind = kind
        self.blob_id = blob_id
        self.pack_id = pack_id
