"""Reading the ``.zst`` files an export writes with ``--compress``."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import zstandard

from ..errors import IntegrityError


def decompress_stream(path: Path, out: BinaryIO) -> None:
    with open(path, "rb") as fin:
        try:
            zstandard.ZstdDecompressor().copy_stream(fin, out)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"{path} does not decompress: {exc}") from None


def decompress_to(path: Path, dest: Path) -> Path:
    with open(dest, "wb") as out:
        decompress_stream(path, out)
    return dest
