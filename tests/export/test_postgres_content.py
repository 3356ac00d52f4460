"""Memories JSON from COPY TEXT data: the same document wherever the blocks are cut, every value
as its column's type says, vectors as the number arrays pgvector printed, and a short row refused."""
from __future__ import annotations

import io
import json

import pytest

from snapstore.errors import IntegrityError
from snapstore.export.postgres_content import write_pg_memory_json
from snapstore.sources.postgres.layout import TableInfo

TABLE = TableInfo("public", "episodic_memory",
                  [("id", "text"), ("embedding", "vector(4)"), ("details", "text"), ("count", "integer"),
                   ("tags", "json"), ("score", "double precision"), ("alive", "boolean"),
                   ("blob", "bytea"), ("a_vector", "vector(4)")], ["id"], row_count=3)
DATA = (b"ep-1\t[0.1,-2e-05,3,0]\tlikes\\ttea\\nand \\\\ more\t7\t{\"scope\": \"x\"}\t1.5\tt\t\\\\x6869\t[1,2,3,4]\n"
        b"ep-2\t\\N\t\\N\t\\N\t{\"a\":  1}\tNaN\tf\t\\N\t[0,0,0,0]\n"
        b"ep-3\t[5,6,7,8]\t\xc3\xbc \xe8\xa8\x98\t-3\t\\N\t-0.25\t\\N\t\\\\x\t\\N\n")


def exported(blocks) -> bytes:
    out = io.BytesIO()
    rows, md5 = write_pg_memory_json("episodic", "episodic_memory", TABLE, blocks, out)
    assert rows == 3
    return out.getvalue()


def test_rows_as_json_with_their_types():
    doc = json.loads(exported([DATA]))
    assert (doc["memory_type"], doc["table"], doc["row_count"]) == ("episodic", "episodic_memory", 3)
    first, second, third = doc["rows"]
    assert list(first) == sorted(first)  # keys sorted: stable files
    assert first == {"a_vector": [1, 2, 3, 4], "alive": True, "blob": {"$base64": "aGk="}, "count": 7,
                     "details": "likes\ttea\nand \\ more", "embedding": [0.1, -2e-05, 3, 0], "id": "ep-1",
                     "score": 1.5, "tags": {"$json": {"scope": "x"}}}
    assert second == {"a_vector": [0, 0, 0, 0], "alive": False, "blob": None, "count": None, "details": None,
                      "embedding": None, "id": "ep-2", "score": {"$float": "NaN"}, "tags": '{"a":  1}'}
    assert third["details"] == "ü 記" and third["a_vector"] is None and third["alive"] is None
    assert third["blob"] == {"$base64": ""} and third["count"] == -3


def test_the_same_bytes_wherever_the_blocks_are_cut():
    whole = exported([DATA])
    for cut in range(1, len(DATA)):
        assert exported([DATA[:cut], DATA[cut:]]) == whole, cut
    assert exported([DATA[i:i + 1] for i in range(len(DATA))]) == whole  # rows across many blocks


def test_a_row_with_fields_missing_is_refused():
    with pytest.raises(IntegrityError, match="fewer than 9 fields"):
        exported([b"ep-1\t[1,2,3,4]\tonly three\n"])
