"""What an export derives from a PostgreSQL snapshot: ``mirix_dump.sql``, schema info, memory rows.

Everything comes from the repository (sources/postgres/reader.py); no server is
needed.  The dump is laid out as ``pg_dump --clean --if-exists`` lays out a plain
dump: pg_dump's header, the ``DROP … IF EXISTS`` statements, the pre-data
section (extensions first), one ``COPY … FROM stdin`` block per table, ``setval``
for every sequence, the post-data section (keys, indexes, triggers, foreign
keys) — so ``psql -v ON_ERROR_STOP=1 -f`` loads it into an empty database or
over an existing copy of the schema.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import orjson

from ..errors import IntegrityError
from ..sources.postgres.layout import TableInfo, quote_ident
from ..sources.postgres.reader import PgCapture

OBJECT_START = "--\n-- Name: "
DUMP_END = "--\n-- PostgreSQL database dump complete\n--\n"


def _split_section(sql: str) -> tuple[str, str, str]:
    """(header, objects, trailer) of a pg_dump/pg_restore plain section."""
    start = sql.find(OBJECT_START)
    end = sql.rfind(DUMP_END)
    if end < 0:
        end = len(sql)
    if start < 0 or start > end:
        start = end
    return sql[:start], sql[start:end], sql[end:]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_data_header(table: TableInfo) -> str:
    return (f"--\n-- Data for Name: {table.name}; Type: TABLE DATA; Schema: {table.schema}; Owner: -\n--\n\n"
            f"COPY {table.qualified} ({table.column_list()}) FROM stdin;\n")


def dump_parts(capture: PgCapture, table_data: Callable[[TableInfo], Iterable[bytes]] | None = None
               ) -> Iterator[bytes]:
    """``mirix_dump.sql``, piece by piece; each table's rows from ``table_data`` (default: the
    capture's ``copy_data``)."""
    table_data = table_data or capture.copy_data
    header, pre_objects, trailer = _split_section(capture.schema_sql("pre-data"))
    _, post_objects, _ = _split_section(capture.schema_sql("post-data"))
    # pg_dump's fence against meta-commands smuggled in by a server; the key must not be
    # guessable beforehand, and the same snapshot must export the same bytes: derived from its id.
    key = hashlib.sha256(b"restrict:" + capture.snapshot.id.encode()).hexdigest()[:40]
    fenced = capture.info.get("psql_restrict", False)
    if fenced:
        yield f"\\restrict {key}\n\n".encode()
    yield header.encode()
    clean = capture.schema_sql("clean")
    if clean:
        yield clean.encode() + b"\n"
    yield pre_objects.encode()
    for table in capture.tables():
        yield _table_data_header(table).encode()
        yield from table_data(table)
        yield b"\\.\n\n\n"
    for name, state in capture.sequence_states().items():
        schema, seq = name.split(".", 1)
        qualified = f"{quote_ident(schema)}.{quote_ident(seq)}"
        yield (f"--\n-- Name: {seq}; Type: SEQUENCE SET; Schema: {schema}; Owner: -\n--\n\n"
               f"SELECT pg_catalog.setval({_literal(qualified)}, {state['last_value']}, "
               f"{'true' if state['is_called'] else 'false'});\n\n\n").encode()
    yield post_objects.encode()
    yield trailer.encode() or DUMP_END.encode()
    if fenced:
        yield f"\n\\unrestrict {key}\n\n".encode()


def write_pg_dump(capture: PgCapture, out: BinaryIO, progress: Callable[[int], None] | None = None,
                  table_data: Callable[[TableInfo], Iterable[bytes]] | None = None) -> str:
    """Write the dump; returns its MD5."""
    md5 = hashlib.md5()
    for part in dump_parts(capture, table_data):
        md5.update(part)
        out.write(part)
        if progress:
            progress(len(part))
    return md5.hexdigest()


def table_label(table: TableInfo) -> str:
    """How schema_info.json and memory files name a table: bare in ``public``, qualified elsewhere."""
    return table.name if table.schema == "public" else table.key


def pg_schema_info(capture: PgCapture) -> dict[str, Any]:
    tables = {}
    for t in capture.tables():
        pk = set(t.primary_key)
        tables[table_label(t)] = {"schema": t.schema, "columns": [{"name": c, "type": typ, "primary_key": c in pk}
                                                                   for c, typ in t.columns],
                                  "primary_key": t.primary_key, "row_count": t.row_count}
    return {"database_type": "postgresql", "server_version": capture.server_version,
            "extensions": capture.extensions, "sequences": capture.sequence_states(), "tables": tables}


# --- COPY TEXT rows as JSON ---------------------------------------------------------------

_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.S)
_SIMPLE = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _unescape(match: re.Match) -> bytes:
    code = match.group(1)
    if code[:1] == b"x":
        return bytes([int(code[1:], 16)])
    if code[:1].isdigit():
        return bytes([int(code, 8) & 0xFF])
    return _SIMPLE.get(code, code)


def copy_field(raw: bytes) -> str | None:
    """One field of a COPY TEXT row: ``\\N`` is NULL, backslash escapes decoded."""
    if raw == b"\\N":
        return None
    if b"\\" in raw:
        raw = _ESCAPE.sub(_unescape, raw)
    return raw.decode()


def copy_rows(blocks: Iterator[bytes]) -> Iterator[list[bytes]]:
    """Raw fields of each row of a COPY TEXT stream whose blocks end anywhere."""
    rest = b""
    for block in blocks:
        data = rest + block if rest else block
        lines = data.split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line.split(b"\t")
    if rest:
        yield rest.split(b"\t")


@functools.lru_cache(maxsize=4096)
def _json_value(text: str) -> Any:
    """A json/jsonb column: the document when writing it back gives the same text (as the
    SQLite export wraps it), else the text.  Cached: configs and tags repeat from row to row
    (the result is only ever serialised, never changed)."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return {"$json": doc} if json.dumps(doc) == text else text


def _float(text: str) -> Any:
    value = float(text)
    return value if value not in (float("inf"), float("-inf")) and value == value else {"$float": text}


def converter(pg_type: str) -> Callable[[str], Any]:
    """Text of a value as COPY writes it -> its JSON value, by the column's type."""
    if pg_type in ("integer", "bigint", "smallint"):
        return int
    if pg_type in ("real", "double precision"):
        return _float
    if pg_type == "boolean":
        return lambda t: t == "t"
    if pg_type in ("json", "jsonb"):
        return _json_value
    if pg_type == "bytea":
        return lambda t: {"$base64": base64.b64encode(bytes.fromhex(t[2:])).decode()}
    return str


FLUSH_BYTES = 1 << 20  # memory JSON is hashed and written in pieces of about this size


class _RowEncoder:
    """COPY TEXT rows -> the JSON of each row as a dict with its keys sorted (stable files), in
    key order, written as pieces that are joined (one copy) about every ``FLUSH_BYTES``.

    pgvector prints "[0.1,-2e-05,…]": already a JSON number array (no NaN or Infinity exist, no
    backslash), so a vector goes in as a view of the block it came in (~100 KB a memory row,
    most of the file); fields are found with ``bytes.find``, never split out and copied, and
    the other values, decoded one by one, are serialised a run of columns at a time."""

    def __init__(self, table: TableInfo, emit: Callable[[bytes], None]):
        names = [c for c, _ in table.columns]
        self._width = len(names)
        self._label = table.key
        # In key order, runs of ordinary columns (each run one dict, serialised by orjson at
        # once) between the vectors: (field, b'"name":' with its separator) of a vector, or
        # (None, [(field, name, converter)]) of a run.
        self._segments: list = []
        for n, i in enumerate(sorted(range(len(names)), key=names.__getitem__)):
            pg_type = table.columns[i][1]
            if pg_type.startswith("vector"):
                self._segments.append((i, (b"{" if n == 0 else b",") + orjson.dumps(names[i]) + b":"))
            elif self._segments and self._segments[-1][0] is None:
                self._segments[-1][1].append((i, names[i], converter(pg_type)))
            else:
                self._segments.append((None, [(i, names[i], converter(pg_type))]))
        self._emit = emit
        self._pieces: list = []
        self._size = 0
        self.rows = 0

    def feed(self, blocks: Iterable[bytes]) -> None:
        rest = b""
        for block in blocks:
            if not isinstance(block, bytes):
                block = bytes(block)
            pos = 0
            if rest:  # a row cut by the block boundary: the one row copied whole
                nl = block.find(b"\n")
                if nl < 0:
                    rest += block
                    continue
                row = rest + block[:nl]
                self._row(row, memoryview(row), 0, len(row))
                pos, rest = nl + 1, b""
            view = memoryview(block)
            find = block.find
            while (nl := find(b"\n", pos)) >= 0:
                self._row(block, view, pos, nl)
                pos = nl + 1
            rest = block[pos:]
            if self._size >= FLUSH_BYTES:
                self.flush()
        if rest:
            self._row(rest, memoryview(rest), 0, len(rest))
        self.flush()

    def _row(self, data: bytes, view: memoryview, start: int, end: int) -> None:
        bounds = [start - 1]
        find = data.find
        for _ in range(self._width - 1):
            tab = find(b"\t", bounds[-1] + 1, end)
            if tab < 0:
                raise IntegrityError(f"{self._label}: a row of its COPY data has fewer than {self._width} fields")
            bounds.append(tab)
        bounds.append(end)
        pieces = self._pieces
        pieces.append(b",\n    " if self.rows else b"\n    ")
        first = True
        for field, spec in self._segments:
            if field is not None:  # a vector
                lo, hi = bounds[field] + 1, bounds[field + 1]
                pieces.append(spec)
                if hi - lo == 2 and data.startswith(b"\\N", lo):
                    pieces.append(b"null")
                else:
                    pieces.append(view[lo:hi])
                    self._size += hi - lo
            else:
                values = {}
                for i, name, convert in spec:
                    raw = data[bounds[i] + 1:bounds[i + 1]]
                    if raw == b"\\N":
                        values[name] = None
                    else:
                        text = copy_field(raw) if b"\\" in raw else raw.decode()
                        values[name] = text if convert is str else convert(text)
                doc = orjson.dumps(values)  # {"a":…,"b":…}: the row's braces are ours
                pieces.append(memoryview(doc)[:-1] if first else b"," + doc[1:-1])
                self._size += len(doc)
            first = False
        pieces.append(b"}")
        self.rows += 1

    def flush(self) -> None:
        if self._pieces:
            self._emit(b"".join(self._pieces))
            self._pieces, self._size = [], 0


def write_pg_memory_json(memory_type: str, table_name: str, table: TableInfo | None, blocks: Iterable[bytes],
                         out: BinaryIO, progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """The same document as the SQLite export's ``memories/<type>_memory.json``, from the
    table's COPY data ``blocks`` (``table`` None: the snapshot has no such table); (rows, md5)."""
    md5 = hashlib.md5()

    def emit(data: bytes) -> None:
        md5.update(data)
        out.write(data)
        if progress:
            progress(len(data))

    count = table.row_count if table else 0
    emit(("{\n" + f'  "memory_type": {json.dumps(memory_type)},\n  "table": {json.dumps(table_name)},\n'
          f'  "row_count": {count},\n  "rows": [').encode())
    n = 0
    if table is not None:
        encoder = _RowEncoder(table, emit)
        encoder.feed(blocks)
        n = encoder.rows
    emit((b"\n  ]" if n else b"]") + b"\n}\n")
    return n, md5.hexdigest()
