"""Export of a PostgreSQL snapshot on a real server: ``psql -f mirix_dump.sql`` gives back every
row, index, constraint, trigger and sequence value, into an empty database and over an existing
copy; memories JSON hold every row; the folder verifies (with the dump loaded on the server too)."""
from __future__ import annotations

import json
import subprocess

import psycopg
import pytest

import pg_agent_schema as schema
from pg_agent_schema import server  # noqa: F401  (server: a fixture)
from helpers import ok, run_cli
from snapstore.backup import backup_agent
from snapstore.export import export_snapshot
from snapstore.export.postgres_content import copy_field, copy_rows
from snapstore.folder.verify import verify_backup
from snapstore.repository import Repository
from snapstore.sources.agent import load_agent_source

pytestmark = pytest.mark.postgres


def psql_load(server, dbname: str, dump) -> None:
    done = subprocess.run([server.bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.url(dbname),
                           "-f", str(dump)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def exported(server, tmp_path, repo_url):
    """(source database, export folder): a PostgreSQL snapshot (local and S3 repository) exported."""
    source = server.create_database()
    with psycopg.connect(server.dsn(source), autocommit=True) as conn:
        schema.create(conn, rows=300)
        conn.execute("CREATE TABLE block (id text PRIMARY KEY, label text, value text, limit_ integer, "
                     "filter_tags json, last_modify json)")
        conn.execute("""INSERT INTO block VALUES ('block-1', 'human', E'likes\\ttea\\nand \\\\ backslashes', 5000,
                        '{"scope": "x"}', '{"a":  1}'), ('block-2', 'persona', NULL, NULL, NULL, NULL)""")
    repo = Repository.init(repo_url)
    backup_agent(repo, load_agent_source(db_path=server.url(source)))
    folder = tmp_path / "folder"
    export_snapshot(repo, "latest", folder)
    return source, folder


def test_dump_loads_into_an_empty_database_with_everything_equal(server, exported):
    source, folder = exported
    target = server.create_database()
    psql_load(server, target, folder / "database" / "mirix_dump.sql")
    with psycopg.connect(server.dsn(source)) as a, psycopg.connect(server.dsn(target)) as b:
        assert schema.table_digests(a) == schema.table_digests(b)
        assert schema.schema_objects(a) == schema.schema_objects(b)
        # the loaded database works like the source: trigger fires, sequence goes on, FK holds
        b.execute("UPDATE memories SET body = 'x' WHERE id = (SELECT min(id) FROM memories)")
        assert b.execute("SELECT n FROM memories WHERE body = 'x'").fetchone()[0] == 1
        assert b.execute("SELECT nextval('event_seq')").fetchone()[0] == 151
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            b.execute("INSERT INTO memories (id, agent_id) VALUES ('m-x', 'no-such-agent')")


def test_dump_loads_again_over_an_existing_copy(server, exported):
    source, folder = exported
    target = server.create_database()
    dump = folder / "database" / "mirix_dump.sql"
    psql_load(server, target, dump)
    with psycopg.connect(server.dsn(target), autocommit=True) as conn:
        conn.execute("DELETE FROM memories WHERE id IN (SELECT id FROM memories LIMIT 5)")
    psql_load(server, target, dump)
    with psycopg.connect(server.dsn(source)) as a, psycopg.connect(server.dsn(target)) as b:
        assert schema.table_digests(a) == schema.table_digests(b)


def test_memories_json_hold_every_row_and_the_folder_verifies(server, exported):
    source, folder = exported
    core = json.loads((folder / "memories" / "core_memory.json").read_text())
    assert core["row_count"] == len(core["rows"]) == 2
    first = next(r for r in core["rows"] if r["id"] == "block-1")
    assert first["value"] == "likes\ttea\nand \\ backslashes" and first["limit_"] == 5000
    assert first["filter_tags"] == {"$json": {"scope": "x"}} and first["last_modify"] == '{"a":  1}'
    info = json.loads((folder / "database" / "schema_info.json").read_text())
    assert info["database_type"] == "postgresql" and info["tables"]["memories"]["row_count"] == 300
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["backup_info"]["database_type"] == "postgresql"
    assert subprocess.run(["md5sum", "-c", "--quiet", "verification/checksums.md5"], cwd=folder).returncode == 0
    result = verify_backup(folder, pg_url=server.url("postgres"))
    assert result["valid"], result["errors"]
    assert ok(run_cli("verify-folder", folder)).returncode == 0


def test_copy_text_fields_decode_like_the_server(server):
    """Every escape COPY TEXT writes comes back as the server's own text of the value."""
    values = ["plain", "tab\t", "nl\n cr\r", "back\\slash", "\\N as text", "bell\x07 vt\x0b ff\x0c bs\x08", "ü 記"]
    with psycopg.connect(server.dsn("postgres")) as conn:
        data = bytearray()
        with conn.cursor().copy("COPY (SELECT v, NULL::text FROM unnest(%s::text[]) v) TO STDOUT",
                                (values,)) as copy:
            for block in copy:
                data += block
    rows = list(copy_rows(iter([bytes(data[:7]), bytes(data[7:])])))  # a block boundary mid-row
    assert [copy_field(r[0]) for r in rows] == values
    assert all(copy_field(r[1]) is None for r in rows)
