"""What export derives from an SQLite database: column values as JSON, memory files, the dump.

A memories JSON file must give back exactly what the table held (the reference's
``restore_memory_type`` rebuilds rows from it), so the value mapping is tested on
the values that trip JSON encoders: integers past 64 bits inside JSON text,
infinities, blobs, non-ASCII text, JSON written with other spacing.
"""
from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import subprocess

import pytest

from snapstore.errors import SourceError
from snapstore.export.sqlite_content import (from_json_value, open_readonly, to_json_value, write_memory_json,
                                             write_sql_dump)

AWKWARD_VALUES = [
    ("tree_path", '["work", "notes"]'),                 # canonical JSON: wrapped as $json
    ("tree_path", '["work","notes"]'),                  # other spacing: must stay the very same text
    ("metadata_", '{"n": 123456789012345678901234567890}'),  # beyond a double and 64 bits
    ("metadata_", '{"x": 1e400}'),                      # infinity when parsed
    ("metadata_", '{"x": NaN}'),                        # not JSON at all
    ("metadata_", '{"t": "caf\\u00e9"}'),               # json.dumps' own escaping
    ("metadata_", '{"t": "café"}'),                     # raw UTF-8 inside the JSON text
    ("metadata_", "[1, 2"),                             # broken JSON
    ("summary", "[not a JSON column]"),
    ("summary", "émoji 🧠 and \u2028 separators"),
    ("details_embedding", b"\x00\x01\xfe\xff"),
    ("score", float("inf")),
    ("score", float("-inf")),
    ("score", 0.1 + 0.2),
    ("count", 2 ** 63 - 1),
    ("count", -(2 ** 63)),
    ("missing", None),
]


@pytest.mark.parametrize("column,value", AWKWARD_VALUES)
def test_values_survive_the_json_mapping(column, value):
    wrapped = to_json_value(column, value)
    through_json = json.loads(json.dumps(wrapped, ensure_ascii=False))
    back = from_json_value(through_json)
    assert back == value and type(back) is type(value)


def test_canonical_json_text_is_written_as_a_document():
    assert to_json_value("tree_path", '["work", "notes"]') == {"$json": ["work", "notes"]}
    assert to_json_value("tree_path", '["work","notes"]') == '["work","notes"]'


@pytest.fixture
def awkward_db(tmp_path):
    path = tmp_path / "awkward.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE episodic_memory (id TEXT, tree_path JSON, metadata_ JSON, summary TEXT, "
                 "details_embedding BLOB, score REAL, count INTEGER)")
    rows = [("a", '["w", "n"]', '{"n": 123456789012345678901234567890}', "café 🧠", b"\x00\xff", float("inf"),
             2 ** 63 - 1),
            ("b", '["x","y"]', None, "[x]", None, -0.5, -(2 ** 63)),
            ("c", None, '{"deep": {"list": [1, 2.5, null, true]}}', "x" * 100_000, b"z" * 70_000, None, 0)]
    conn.executemany("INSERT INTO episodic_memory VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("DELETE FROM episodic_memory WHERE id = 'b'")  # a gap in the rowids
    conn.execute("INSERT INTO episodic_memory VALUES (?, ?, ?, ?, ?, ?, ?)", rows[1])
    conn.commit()
    conn.close()
    return path


def test_memory_json_gives_back_every_row_exactly(awkward_db):
    out = io.BytesIO()
    conn = open_readonly(awkward_db)
    try:
        count, md5 = write_memory_json(conn, "episodic", "episodic_memory", out)
        expected = conn.execute("SELECT rowid, * FROM episodic_memory ORDER BY rowid").fetchall()
        names = ["$rowid"] + [d[0] for d in conn.execute("SELECT * FROM episodic_memory").description]
    finally:
        conn.close()
    data = out.getvalue()
    assert md5 == hashlib.md5(data).hexdigest()
    doc = json.loads(data)
    assert count == doc["row_count"] == len(doc["rows"]) == 3
    assert [r["$rowid"] for r in doc["rows"]] == [1, 3, 4]
    rebuilt = [tuple(from_json_value(row[n]) for n in names) for row in doc["rows"]]
    assert rebuilt == expected


def test_memory_json_of_a_missing_table_is_an_empty_document(awkward_db):
    out = io.BytesIO()
    conn = open_readonly(awkward_db)
    try:
        count, _ = write_memory_json(conn, "semantic", "semantic_memory", out)
    finally:
        conn.close()
    assert count == 0
    assert json.loads(out.getvalue())["rows"] == []


def test_sql_dump_is_written_whole_and_its_md5_is_the_files(awkward_db, tmp_path):
    dest = tmp_path / "dump.sql"
    md5 = write_sql_dump(awkward_db, dest)
    assert md5 == hashlib.md5(dest.read_bytes()).hexdigest()
    text = dest.read_text()
    assert text.startswith("PRAGMA foreign_keys=OFF;") and text.rstrip().endswith("COMMIT;")
    rebuilt = tmp_path / "rebuilt.db"
    subprocess.run(["sqlite3", str(rebuilt)], input=dest.read_bytes(), check=True)
    query = "SELECT rowid, * FROM episodic_memory ORDER BY rowid"
    with sqlite3.connect(awkward_db) as a, sqlite3.connect(rebuilt) as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_sql_dump_of_a_damaged_database_fails_clearly(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(SourceError, match="sqlite3 .dump failed"):
        write_sql_dump(bad, tmp_path / "dump.sql")
