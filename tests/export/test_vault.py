"""The vault redaction's COPY rewrite and level rules, byte by byte (the PostgreSQL path; the
SQLite path and whole folders are tested in test_export_secrets.py and on a real server in
test_postgres_export_mirix.py)."""
from __future__ import annotations

import pytest

from snapstore.errors import UsageError
from snapstore.export.vault import VaultRedaction, parse_level, redact_copy_rows, redacts
from snapstore.sanitize import MARKER
from snapstore.sources.postgres.layout import TableInfo

TABLE = TableInfo("public", "knowledge_vault", [("id", "text"), ("sensitivity", "character varying"),
                                                ("secret_value", "character varying"), ("caption", "text")], ["id"])
ROWS = [b"a\thigh\tpw-a\tcap a", b"b\tlow\tpw-b\\twith tab\tcap b", b"c\tmedium\tpw-c\tcap\\nc",
        b"d\t\\N\tpw-d\tcap d", b"e\tHigh\t\\N\tcap e", b"f\tcritical\tpw-f\tcap f"]
DATA = b"\n".join(ROWS) + b"\n"


@pytest.mark.parametrize("level, kept", [("high", {"b", "c"}), ("medium", {"b"}), ("low", set())])
def test_copy_rows_lose_the_secret_at_or_above_the_level_wherever_blocks_are_cut(level, kept):
    expected_lines = []
    for row in ROWS:
        fields = row.split(b"\t")
        if fields[0].decode() not in kept and fields[2] != b"\\N":
            fields[2] = MARKER.encode()
        expected_lines.append(b"\t".join(fields))
    expected = b"\n".join(expected_lines) + b"\n"
    for cut in range(len(DATA) + 1):
        result = VaultRedaction(level, "knowledge_vault")
        out = b"".join(redact_copy_rows(TABLE, [DATA[:cut], DATA[cut:]], result))
        assert out == expected, cut
        assert (result.redacted, result.kept) == (len(ROWS) - len(kept), len(kept))


def test_levels():
    assert parse_level(None) is None and parse_level(" Medium ") == "medium"
    with pytest.raises(UsageError, match="low, medium, high"):
        parse_level("secret")
    assert redacts("high", "high") and not redacts("medium", "high") and redacts("medium", "medium")
    assert not redacts("low", "medium") and redacts("low", "low")
    assert redacts(None, "high") and redacts("critical", "high")  # unknown: never kept


def test_a_table_without_the_columns_is_refused():
    table = TableInfo("public", "knowledge_vault", [("id", "text"), ("value", "text")], ["id"])
    with pytest.raises(UsageError, match="no sensitivity or secret_value column"):
        list(redact_copy_rows(table, [b"a\tb\n"], VaultRedaction("high", "knowledge_vault")))
