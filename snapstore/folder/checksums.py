"""Checking a folder against its own ``verification/checksums.md5`` and ``metadata.json``."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import IntegrityError
from .layout import CHECKSUMS, METADATA, folder_files, parse_md5_file


def file_md5(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            md5.update(block)
    return md5.hexdigest()


def checksum_problems(folder: Path, metadata: dict) -> tuple[dict[str, str], list[str]]:
    """(the checksums listed, every problem found), naming each file at fault.

    Raises ``UnsafePath`` for links or paths that leave the folder: those are refused
    outright rather than reported.
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
    missing = sorted(p for p in listed if p not in present)
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    bad = sorted(p for p in listed if p in present and file_md5(folder / p) != listed[p])
    if bad:
        problems.append(f"checksum mismatch: {', '.join(bad)}")
    return listed, problems
