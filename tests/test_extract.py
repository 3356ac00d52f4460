"""Reading snapshot files back (snapstore/extract.py): byte-exact whatever the file's shape.

Durable restores send page-aligned bulk with O_DIRECT and the rest through the
page cache; these tests cover the shapes that take each path: databases whose
size is not a multiple of 4 KiB (512-byte pages), streams cut by content, empty
files, and a buffer the kernel refuses for O_DIRECT.
"""
from __future__ import annotations

import mmap
import os
import sqlite3
from pathlib import Path

import pytest

from helpers import pack_files

from snapstore import extract
from snapstore.backup import DB_PATH, backup_agent
from snapstore.errors import IntegrityError
from snapstore.extract import _write_range, materialize, write_file
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository
from snapstore.sources.agent import load_agent_source


def make_db(path: Path, page_size: int, rows: int) -> Path:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size={page_size}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    conn.executemany("INSERT INTO t (body) VALUES (?)", ((os.urandom(300 + i % 700),) for i in range(rows)))
    conn.commit()
    while page_size < 4096 and path.stat().st_size % 4096 == 0:  # leave a tail that is not 4 KiB-aligned
        conn.execute("INSERT INTO t (body) VALUES (?)", (os.urandom(200),))
        conn.commit()
    conn.close()
    return path


def snapshot_of(tmp_path: Path, db: Path):
    repo = Repository.init(tmp_path / "repo")
    snap = backup_agent(repo, load_agent_source(db_path=db)).snapshot
    return repo, snap


@pytest.mark.parametrize("page_size,rows", [(512, 3001), (4096, 2500), (65536, 40)])
@pytest.mark.parametrize("durable", [True, False])
def test_materialized_database_is_the_captured_file(tmp_path, page_size, rows, durable):
    db = make_db(tmp_path / "a.db", page_size, rows)
    repo, snap = snapshot_of(tmp_path, db)
    out = tmp_path / "restored.db"
    payloads = materialize(repo, snap.file(DB_PATH), out, durable=durable, workers=2)
    assert out.read_bytes() == db.read_bytes()
    assert payloads and all(size > 0 for size in payloads.values())
    if page_size == 512:
        assert db.stat().st_size % 4096 != 0  # the unaligned tail really was exercised


@pytest.mark.parametrize("in_process_first", [False, True])
def test_small_task_ranges_cover_the_file_in_many_pieces(tmp_path, monkeypatch, in_process_first):
    monkeypatch.setattr(extract, "RESTORE_TASK_CHUNKS", 7)  # odd ranges: most start unaligned for 512-byte pages
    db = make_db(tmp_path / "a.db", 512, 2000)
    repo, snap = snapshot_of(tmp_path, db)
    if in_process_first:  # must not leave this process a buffer (forked workers would inherit it)
        materialize(repo, snap.file(DB_PATH), tmp_path / "first.db", workers=1)
        assert extract._scratch is None
    out = tmp_path / "restored.db"
    materialize(repo, snap.file(DB_PATH), out, workers=2)
    assert out.read_bytes() == db.read_bytes()


def test_stream_files_cut_by_content_come_back_exactly(tmp_path):
    db = make_db(tmp_path / "a.db", 4096, 10)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    data = os.urandom(3 << 20) + b"tail"
    (log_dir / "agent.log").write_bytes(data)
    config = tmp_path / "mirix.yaml"
    config.write_text(f"database_url: sqlite:///{db}\nlog_dir: {log_dir}\n")
    repo = Repository.init(tmp_path / "repo")
    snap = backup_agent(repo, load_agent_source(config), include_logs=True).snapshot
    entry = snap.file("logs/agent.log")
    out = tmp_path / "agent.log"
    materialize(repo, entry, out)
    assert out.read_bytes() == data
    with open(tmp_path / "streamed.log", "wb") as f:
        assert write_file(repo, entry, f) == len(data)
    assert (tmp_path / "streamed.log").read_bytes() == data


def test_a_buffer_o_direct_refuses_is_written_the_ordinary_way(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"\0" * 16384)
    buf = mmap.mmap(-1, 16384)
    buf[:] = os.urandom(16384)
    view = memoryview(buf)[1:8193]  # not aligned in memory: O_DIRECT gives EINVAL
    _write_range(str(target), view, 4096, direct=True)
    assert target.read_bytes()[4096:12288] == bytes(view)
    assert target.read_bytes()[:4096] == b"\0" * 4096


def test_a_tampered_chunk_fails_the_restore(tmp_path):
    db = make_db(tmp_path / "a.db", 4096, 500)
    repo, snap = snapshot_of(tmp_path, db)
    pack = max(pack_files(repo), key=lambda p: p.stat().st_size)
    with open(pack, "r+b") as f:
        f.seek(64)
        byte = f.read(1)
        f.seek(64)
        f.write(bytes([byte[0] ^ 0xFF]))
    repo = Repository.open(tmp_path / "repo")
    with pytest.raises(IntegrityError):
        materialize(repo, snap.file(DB_PATH), tmp_path / "restored.db", workers=2)


def frame_ids(repo: Repository, ids: bytes, blob_id: bytes) -> set[str]:
    """Short ids of every chunk stored in the same payload (frame) as ``blob_id``: a damaged frame
    is reported under whichever of its chunks the reader met first."""
    loc = repo.index.get(blob_id)
    return {ids[o:o + 32].hex()[:16] for o in range(0, len(ids), 32)
            if (repo.index.get(ids[o:o + 32]).pack_id, repo.index.get(ids[o:o + 32]).offset) == (loc.pack_id,
                                                                                                   loc.offset)}


def test_dump_decodes_pieces_in_workers_byte_for_byte_and_names_a_damaged_chunk(tmp_path, repo_url, monkeypatch):
    """write_file (dump) on either backend: pieces decoded in forked workers come out in order,
    byte-identical; a damaged chunk in a later piece stops it with the chunk and its pack named
    (the CLI's --out then leaves no file)."""
    from backends import RepoObjects
    from helpers import assert_one_line_error, ok, run_cli
    from snapstore.chunklist import load_list
    from snapstore.repository.pack import pack_name

    db = make_db(tmp_path / "a.db", 4096, 3000)
    repo = Repository.init(repo_url)
    snap = backup_agent(repo, load_agent_source(db_path=db)).snapshot
    entry = snap.file(DB_PATH)
    monkeypatch.setattr(extract, "PIECE_BYTES", 64 * 1024)  # ~40 pieces: several rounds of the slots
    assert len(extract._piece_bounds(repo, entry, load_list(entry.chunks, repo.reader()))) > 8
    for workers in (2, 3):
        with open(tmp_path / f"out{workers}.db", "wb") as f:
            assert write_file(repo, entry, f, workers=workers) == entry.size
        assert (tmp_path / f"out{workers}.db").read_bytes() == db.read_bytes()
    assert extract._pieces is None  # nothing left for later forks to inherit

    ids = load_list(entry.chunks, repo.reader())
    victim = ids[len(ids) * 3 // 4 // 32 * 32:][:32]  # in a late piece: earlier ones were already written
    loc = repo.index.get(victim)
    RepoObjects(repo_url).flip(pack_name(loc.pack_id), loc.offset + loc.stored_length // 2)
    repo = Repository.open(repo_url, cache=False)
    named = frame_ids(repo, ids, victim)
    with pytest.raises(IntegrityError) as caught:
        with open(tmp_path / "damaged.db", "wb") as f:
            write_file(repo, entry, f, workers=2)
    assert loc.pack_id.hex()[:16] in str(caught.value)
    assert any(short in str(caught.value) for short in named), str(caught.value)

    monkeypatch.undo()  # the CLI runs with the real piece size: a file of two pieces (from S3: in workers)
    big = make_db(tmp_path / "big.db", 4096, 40000)
    assert big.stat().st_size > extract.PIECE_BYTES
    location = repo_url + "-cli" if repo_url.startswith("s3:") else str(tmp_path / "cli-repo")
    ok(run_cli("init", repo=location))
    ok(run_cli("backup", "--db", big, repo=location))
    ok(run_cli("dump", "latest", DB_PATH, "--out", tmp_path / "d.db", repo=location))
    assert (tmp_path / "d.db").read_bytes() == big.read_bytes()
    repo = Repository.open(location, cache=False)
    big_entry = list_snapshots(repo)[-1].file(DB_PATH)
    ids = load_list(big_entry.chunks, repo.reader())
    victim = ids[-32 * 100:][:32]  # in the second piece
    loc = repo.index.get(victim)
    RepoObjects(location).flip(pack_name(loc.pack_id), loc.offset + loc.stored_length // 2)
    line = assert_one_line_error(run_cli("dump", "latest", DB_PATH, "--out", tmp_path / "e.db", repo=location),
                                 loc.pack_id.hex()[:16])
    assert any(short in line for short in frame_ids(repo, ids, victim)), line
    assert not [p.name for p in tmp_path.iterdir() if "e.db" in p.name]  # neither the file nor a temp
