"""The portable backup folder (SPEC.md §4): names, metadata.json, checksums.md5.

``metadata.json`` records MD5 checksums of every file (what the reference shows and
``md5sum -c`` checks); ``verification/checksums.md5`` holds the same in GNU
coreutils format, covering ``metadata.json`` and the report too, so
``md5sum -c verification/checksums.md5`` run inside the folder checks everything.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from ..errors import IntegrityError, UnsafePath, UnsupportedFormat
from ..manifest import safe_relpath

FOLDER_VERSION = "1.0.0"
ENCRYPTION_HEADER = "encryption.json"  # present in a folder encrypted in place
METADATA = "metadata.json"
CHECKSUMS = "verification/checksums.md5"
REPORT = "verification/backup_report.txt"
DUMP = "database/mirix_dump.sql"
SCHEMA_INFO = "database/schema_info.json"
SQLITE_DB = "database/sqlite.db"
ZST = ".zst"


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(version).split("."))
    except ValueError:
        raise UnsupportedFormat(f"backup folder has an unreadable format version {version!r}") from None


def check_version(version: str) -> None:
    if version_tuple(version)[:1] > version_tuple(FOLDER_VERSION)[:1]:
        raise UnsupportedFormat(f"backup folder format {version} is newer than this snapstore reads "
                                f"({FOLDER_VERSION}); upgrade snapstore")


def md5_line(path: str, digest: str) -> str:
    """One ``md5sum`` line, escaped the way coreutils does for odd names."""
    if "\\" in path or "\n" in path:
        return "\\" + digest + "  " + path.replace("\\", "\\\\").replace("\n", "\\n") + "\n"
    return f"{digest}  {path}\n"


def parse_md5_file(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        escaped = line.startswith("\\")
        if escaped:
            line = line[1:]
        digest, sep, path = line.partition(" ")
        if not sep or len(digest) != 32:
            raise IntegrityError(f"{CHECKSUMS} has a malformed line: {line[:60]!r}")
        path = path[1:] if path.startswith(("*", " ")) else path
        if escaped:
            path = path.replace("\\n", "\n").replace("\\\\", "\\")
        out[safe_relpath(path)] = digest.lower()
    return out


def write_json(path: Path, doc: Any) -> None:
    """Stable JSON (sorted keys, fixed indent) so two exports of one snapshot are identical."""
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_metadata(folder: Path) -> dict:
    path = folder / METADATA
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise IntegrityError(f"{folder} is not a backup folder: {METADATA} is missing") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("backup_info"), dict):
        raise IntegrityError(f"{path} has no backup_info")
    check_version(doc["backup_info"].get("version", "0"))
    return doc


def folder_files(folder: Path) -> Iterable[str]:
    """Every regular file under ``folder``, as POSIX relative paths; refuses links out of it."""
    root = folder.resolve()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            if full.is_symlink():
                target = full.resolve()
                if root not in target.parents and target != root:
                    raise UnsafePath(f"{full.relative_to(folder)} is a symlink pointing outside the folder")
                raise UnsafePath(f"{full.relative_to(folder)} is a symlink; backup folders hold plain files")
        for name in filenames:
            yield safe_relpath((Path(dirpath) / name).relative_to(folder).as_posix())
