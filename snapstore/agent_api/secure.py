"""``create_secure_backup``: ``save_agent`` (sanitised), then every file of the folder encrypted.

See ``folder_crypto`` for the format.  Without ``encryption_key`` it is a plain
sanitised backup, as in the reference.  If encryption fails part way the folder is
removed rather than left half plaintext (the snapshot stays in the repository).
Open the result with ``verify_backup(path, encryption_key=...)`` and
``agent.load_agent(path, encryption_key=...)``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import IntegrityError
from ..folder.layout import folder_files
from .folder_crypto import encrypt_backup_files, remove_plaintext_sensitive
from .results import error_text

MIB = 1 << 20


def create_secure_backup(agent: Any, backup_path: str | os.PathLike, encryption_key: str | bytes | None = None,
                         **save_options: Any) -> dict:
    result = agent.save_agent(backup_path, sanitize_sensitive=True, **save_options)
    result["encrypted"] = False
    if not (encryption_key and result["success"]):
        return result
    folder = Path(backup_path)
    try:
        encrypted = encrypt_backup_files(folder, encryption_key)
        left = remove_plaintext_sensitive(folder)
        if left["remaining_plaintext"]:
            raise IntegrityError(f"plaintext left after encryption: {', '.join(left['remaining_plaintext'])}")
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        result.update(success=False, error=f"encryption failed, the backup folder was removed: {error_text(exc)}",
                      message="Agent state could not be saved encrypted")
        return result
    files = list(folder_files(folder))
    size = sum((folder / f).stat().st_size for f in files)
    result.update(encrypted=True, encrypted_files=len(encrypted), file_count=len(files),
                  size_mb=round(size / MIB, 2), size_bytes=size,
                  message=result["message"] + "; every file encrypted with AES-256-GCM")
    return result
