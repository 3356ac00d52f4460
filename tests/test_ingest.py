"""Page ingest: how new pages are grouped into payloads (frames), and that every page comes back."""
from __future__ import annotations

import random
import sqlite3
from collections import defaultdict

from snapstore.ingest import COLD_GROUP_PAGES, GROUP_PAGES, ingest_pages
from snapstore.repository import Repository
from snapstore.repository.pack import read_trailer
from snapstore.sources.sqlite import SQLiteImageReader


ROWS = 8000


def make_db(path, rows: int) -> None:
    rng = random.Random(1)
    con = sqlite3.connect(path)
    con.execute("PRAGMA page_size=4096")
    con.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, body TEXT)")
    con.executemany("INSERT INTO m VALUES (?, ?)",
                    ((i, f"memory {i} " + " ".join(rng.choice(["cat", "dog", "owl"]) for _ in range(120)))
                     for i in range(rows)))
    con.commit()
    con.close()


def payload_groups(repo: Repository) -> dict[tuple[bytes, int], list[bytes]]:
    """Blob ids per payload (pack, offset), from the packs' own trailers."""
    groups = defaultdict(list)
    for info in repo.storage.list("data/"):
        pack_id = bytes.fromhex(info.name.rsplit("/", 1)[-1])
        for entry in read_trailer(repo.storage, info.name, info.size):
            groups[(pack_id, entry.offset)].append(entry.blob_id)
    return groups


def ingest(repo: Repository, db) -> tuple[bytes, bytes]:
    """Ingest the database; returns its page ids and its bytes."""
    with repo.writer() as writer, SQLiteImageReader(db) as image:
        ids = ingest_pages(image, writer, workers=2).ids
    return ids, db.read_bytes()


def test_new_runs_go_in_large_frames_scattered_changes_in_small_ones(tmp_path):
    db = tmp_path / "a.db"
    make_db(db, ROWS)
    repo = Repository.init(str(tmp_path / "repo"))
    ids, data = ingest(repo, db)
    pages = len(ids) // 32
    assert pages > 2 * COLD_GROUP_PAGES
    first = payload_groups(repo)
    sizes = sorted(len(m) for m in first.values())
    # every page of an initial backup is new and consecutive: full large frames but the last of each task
    assert sizes.count(COLD_GROUP_PAGES) >= pages // COLD_GROUP_PAGES - 1
    assert sum(sizes) == len(set(ids[i:i + 32] for i in range(0, len(ids), 32)))

    con = sqlite3.connect(db)  # a scattered change: one row in every 300, and a few appended rows
    con.executemany("UPDATE m SET body = body || ' changed' WHERE id = ?", ((i,) for i in range(0, ROWS, 300)))
    con.executemany("INSERT INTO m VALUES (?, ?)", ((ROWS + i, "new " * 900) for i in range(40)))
    con.commit()
    con.close()
    ids2, data2 = ingest(repo, db)
    added = {k: v for k, v in payload_groups(repo).items() if k not in first}
    known = {ids[i:i + 32] for i in range(0, len(ids), 32)}
    position = {ids2[i:i + 32]: i // 32 for i in range(0, len(ids2), 32)}
    for members in added.values():
        numbers = [position[m] for m in members]
        assert not any(m in known for m in members)
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            assert len(members) <= GROUP_PAGES  # pages from all over the file: a small frame
    assert any(len(m) > GROUP_PAGES for m in added.values())  # the appended run: one larger frame

    with repo.reader() as reader:
        for pages, expect in ((ids, data), (ids2, data2)):
            out = bytearray(len(expect))
            assert reader.read_into(memoryview(out), pages) == len(expect)
            assert out == expect
