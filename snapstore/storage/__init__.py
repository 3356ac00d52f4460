"""Where a repository's objects live: one interface (base.py), a local directory and S3."""
from __future__ import annotations

from .base import (AccessDenied, BucketNotFound, ObjectInfo, ObjectNotFound, StagedObject, Storage,
                   StorageError, StorageUnavailable)
from .local import LocalStorage

__all__ = ["AccessDenied", "BucketNotFound", "LocalStorage", "ObjectInfo", "ObjectNotFound", "StagedObject",
           "Storage", "StorageError", "StorageUnavailable", "open_storage"]


def open_storage(location: str, options: dict[str, str] | None = None) -> Storage:
    """The storage a ``--repo`` value names: ``s3:…`` URLs, else a local directory."""
    if location.startswith("s3:"):
        from .s3 import S3Location, S3Options, S3Storage
        return S3Storage(S3Location.parse(location), S3Options.from_pairs(options or {}))
    return LocalStorage(location)
