"""Value conversions between Mirix's SQLite and PostgreSQL forms are exact."""
from __future__ import annotations

import random
import struct
from array import array

import pytest

from snapstore.export.postgres_content import copy_field
from snapstore.migrate.values import (CannotCarry, copy_escape, decode_sqlite_embedding,
                                      encode_sqlite_embedding, padded, parse_vector_text, sqlite_timestamp,
                                      vector_text)


def test_float32_survives_text_bit_for_bit():
    rng = random.Random(7)
    raw = [struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0] for _ in range(5000)]
    values = array("f", [v for v in raw if v == v and abs(v) != float("inf")] + [0.0, -0.0, 1e-45, 3.4028235e38])
    back = parse_vector_text(vector_text(values))
    assert back.tobytes() == values.tobytes()


def test_embedding_base64_round_trip_and_padding():
    vec = array("f", [0.25, -1.5, 3.0])
    assert decode_sqlite_embedding(encode_sqlite_embedding(vec)) == vec
    assert len(padded(vec)) == 4096 and padded(vec)[:3] == vec and not any(padded(vec)[3:])
    with pytest.raises(CannotCarry, match="4097 dimensions"):
        padded(array("f", [1.0] * 4097))
    with pytest.raises(CannotCarry, match="not base64"):
        decode_sqlite_embedding("not base64!")


def test_copy_text_escapes_round_trip():
    text = "tab\there\nnew line \\ backslash \r and ünïcødé"
    line = (copy_escape(text) + "\t\\N\t").encode()
    assert [copy_field(f) for f in line.split(b"\t")] == [text, None, ""]
    with pytest.raises(CannotCarry, match="NUL"):
        copy_escape("a\x00b")


@pytest.mark.parametrize("pg, zone, expected", [
    ("2025-01-08 13:12:41.99929+00", True, "2025-01-08 13:12:41.999290"),
    ("2025-01-08 15:12:41.5+02", True, "2025-01-08 13:12:41.500000"),
    ("2025-01-08 13:12:41", False, "2025-01-08 13:12:41.000000"),
])
def test_timestamps_become_naive_utc(pg, zone, expected):
    assert sqlite_timestamp(pg, zone) == expected


def test_infinite_timestamp_cannot_be_carried():
    with pytest.raises(CannotCarry, match="infinity"):
        sqlite_timestamp("infinity", True)
