"""One value, converted between Mirix's SQLite and PostgreSQL representations.

Embeddings: SQLite keeps ``base64(float32 little-endian)`` text (Mirix's
``serialize_vector``), PostgreSQL a pgvector ``vector(4096)``; Mirix zero-pads
every vector to 4096 with ``np.pad`` on both engines, so a shorter vector is
padded the same way and a longer one cannot be carried.  Floats are written with
9 significant digits, which is exactly enough for a float32 to come back
bit-identical.  Timestamps are UTC on both sides; SQLite's text is SQLAlchemy's
``%Y-%m-%d %H:%M:%S.%f``.
"""
from __future__ import annotations

import base64
import binascii
import re
import sys
from array import array
from datetime import datetime, timezone

from ..errors import SnapstoreError
from ..mirix_schema.postgres import MAX_EMBEDDING_DIM


class CannotCarry(SnapstoreError):
    """A value has no faithful form on the other engine; nothing was changed."""

    exit_code = 1


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(text: str) -> str:
    """``text`` as one field of PostgreSQL's COPY text format."""
    if "\x00" in text:
        raise CannotCarry("a text value holds a NUL character, which PostgreSQL text cannot store")
    return text.translate(_COPY_ESCAPES)


def decode_sqlite_embedding(value: str | bytes) -> array:
    """Mirix's SQLite embedding (base64 of little-endian float32) as a float32 array."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CannotCarry(f"an embedding is not base64 float32 ({exc})") from None
    if len(raw) % 4:
        raise CannotCarry(f"an embedding of {len(raw)} bytes is not a whole number of float32")
    vector = array("f", raw)
    if sys.byteorder == "big":
        vector.byteswap()
    return vector


def encode_sqlite_embedding(vector: array) -> str:
    """A float32 array as Mirix's SQLite embedding text."""
    if sys.byteorder == "big":
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode("ascii")


def padded(vector: array, dim: int = MAX_EMBEDDING_DIM) -> array:
    """Mirix's ``np.pad(vector, (0, dim - len(vector)))``."""
    if len(vector) > dim:
        raise CannotCarry(f"an embedding has {len(vector)} dimensions; vector({dim}) holds at most {dim}")
    if len(vector) == dim:
        return vector
    return vector + array("f", bytes(4 * (dim - len(vector))))


def vector_text(vector: array) -> str:
    """pgvector's text input for a float32 array; the zero tail is found in the bytes and
    written once (Mirix pads 768-dimension vectors to 4096: most of every vector)."""
    end = (len(vector.tobytes().rstrip(b"\0")) + 3) // 4  # -0.0 has a non-zero byte: kept
    head = ("%.9g," * end % tuple(vector[:end]))[:-1]
    tail = ",0" * (len(vector) - end)
    if not head:
        tail = tail[1:]
    return "[" + head + tail + "]"


def parse_vector_text(text: str) -> array:
    """pgvector's text output back into a float32 array."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise CannotCarry(f"not a pgvector value: {text[:40]!r}")
    inner = body[1:-1]
    return array("f", map(float, inner.split(","))) if inner else array("f")


def sqlite_timestamp(pg_text: str, with_zone: bool) -> str:
    """A PostgreSQL timestamp's text as SQLAlchemy's naive-UTC SQLite text."""
    try:
        moment = datetime.fromisoformat(_iso(pg_text))
    except ValueError:
        raise CannotCarry(f"timestamp {pg_text!r} has no SQLite form (infinity or BC dates)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _iso(pg_text: str) -> str:
    """PostgreSQL prints ``+00`` and trims microseconds; fromisoformat wants ``+00:00`` and 3/6 digits."""
    text = pg_text.strip()
    if len(text) > 3 and text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"
    m = re.fullmatch(r"(.*?)\.(\d+)(.*)", text)
    if m:
        text = f"{m.group(1)}.{m.group(2).ljust(6, '0')[:6]}{m.group(3)}"
    return text
