"""A backup folder ready to read: itself, or a decrypted copy in a private temp dir.

Encrypted folders (``encryption.json`` + ``*.enc``) are decrypted into a fresh
directory created by ``tempfile.mkdtemp`` (mode 0700, owner only) and removed
when the caller is done, so the plaintext never lands beside the ciphertext.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import UsageError
from .folder_crypto import decrypt_backup_folder, is_encrypted


def check_folder(backup_path: str | os.PathLike) -> Path:
    folder = Path(backup_path)
    if not folder.exists():
        raise UsageError(f"backup folder {folder} does not exist")
    if not folder.is_dir():
        raise UsageError(f"backup path {folder} is not a directory")
    return folder


@contextmanager
def opened_backup(backup_path: str | os.PathLike, encryption_key: str | bytes | None = None) -> Iterator[Path]:
    folder = check_folder(backup_path)
    if not is_encrypted(folder):
        yield folder
        return
    if not encryption_key:
        raise UsageError(f"backup folder {folder} is encrypted: give its encryption_key")
    tmp = Path(tempfile.mkdtemp(prefix="snapstore-decrypted-"))
    try:
        os.chmod(tmp, 0o700)
        plain = tmp / (folder.resolve().name or "backup")
        decrypt_backup_folder(folder, encryption_key, plain)
        yield plain
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
