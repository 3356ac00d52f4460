"""``verify_backup`` with ``encryption_key``, and the reference's four checks one by one.

``verify_backup(path)`` is ``snapstore.folder.verify.verify_backup`` (checksums,
database and dump, memory completeness, config) plus two things that function
does not know about: encrypted folders (decrypted into a private temp dir first;
a missing or wrong key is a failed ``file_integrity``) and folders saved with
``include_config=False`` (no ``config/`` files listed in their checksums: the
missing config is not an error).

``check_file_checksums``, ``verify_database_dump``, ``verify_memory_data`` and
``verify_config_files`` are the helpers the reference's own ``verify_backup``
calls; each returns a bool, so that function runs unchanged against snapstore.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import SnapstoreError
from ..folder import verify as folder_verify
from ..folder.checksums import checksum_problems
from ..folder.layout import read_metadata
from .folder_crypto import is_encrypted
from .opened import opened_backup
from .results import error_text

CHECKS = folder_verify.CHECKS


def _failed(folder: Path, message: str, encrypted: bool) -> dict:
    errors = {"file_integrity": [message]}
    for check in CHECKS[1:]:
        errors[check] = ["not checked: the folder failed file_integrity"]
    return {"valid": False, "results": {c: False for c in CHECKS}, "errors": errors,
            "backup_path": str(folder), "backup_info": {}, "encrypted": encrypted}


def verify_backup(backup_path: str | os.PathLike, *, encryption_key: str | bytes | None = None,
                  pg_url: str | None = None, progress=None) -> dict:
    """``{"valid": bool, "results": {check: bool}, "errors": {check: [...]}, ...}`` for a backup folder."""
    folder = Path(backup_path)
    encrypted = folder.is_dir() and is_encrypted(folder)
    try:
        with opened_backup(folder, encryption_key) as plain:
            result = folder_verify.verify_backup(plain, pg_url=pg_url, progress=progress)
    except (SnapstoreError, OSError) as exc:
        return _failed(folder, error_text(exc), encrypted)
    result["backup_path"] = str(folder)
    result["encrypted"] = encrypted
    return result


def _check(backup_path, encryption_key, run) -> bool:
    try:
        with opened_backup(backup_path, encryption_key) as plain:
            errors: list[str] = []
            run(plain, errors)
            return not errors
    except (SnapstoreError, OSError, ValueError, KeyError):
        return False


def check_file_checksums(backup_path: str | os.PathLike, *, encryption_key: str | bytes | None = None) -> bool:
    """Every file matches ``verification/checksums.md5`` and ``metadata.json`` agrees with it."""
    def run(folder: Path, errors: list[str]) -> None:
        errors += checksum_problems(folder, read_metadata(folder))[1]
    return _check(backup_path, encryption_key, run)


def verify_database_dump(backup_path: str | os.PathLike, *, encryption_key: str | bytes | None = None,
                         pg_url: str | None = None) -> bool:
    """SQLite: the database passes integrity_check and the dump loads with the recorded row counts;
    PostgreSQL: the dump is a complete pg_dump file (and loads, given ``pg_url``)."""
    def run(folder: Path, errors: list[str]) -> None:
        if read_metadata(folder)["backup_info"].get("database_type") == "postgresql":
            folder_verify._check_postgres(folder, errors, pg_url)
        else:
            folder_verify._check_sqlite(folder, errors)
    return _check(backup_path, encryption_key, run)


def verify_memory_data(backup_path: str | os.PathLike, *, encryption_key: str | bytes | None = None) -> bool:
    """Every memory file holds every row ``schema_info.json`` counts."""
    def run(folder: Path, errors: list[str]) -> None:
        read_metadata(folder)
        config = folder_verify._check_config(folder, [])
        folder_verify._check_memories(folder, config, errors)
    return _check(backup_path, encryption_key, run)


def verify_config_files(backup_path: str | os.PathLike, *, encryption_key: str | bytes | None = None) -> bool:
    """``config/mirix.yaml`` parses and names agent and model; ``environment.env`` is KEY=value lines
    (True when the backup was saved with ``include_config=False``)."""
    def run(folder: Path, errors: list[str]) -> None:
        if read_metadata(folder)["backup_info"].get("include_config", True):
            folder_verify._check_config(folder, errors)
    return _check(backup_path, encryption_key, run)
