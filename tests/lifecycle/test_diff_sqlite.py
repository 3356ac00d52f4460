"""diff of SQLite snapshots: counts equal to SQL over the two restored databases."""
import json
from collections import Counter
import sqlite3
from pathlib import Path

from helpers import backed_up_agent, ok, run_cli
from snapstore.lifecycle.diff import diff_snapshots
from snapstore.repository import Repository
from snapstore.sample_agent import mutate_agent


def sql_diff(old_db, new_db) -> dict:
    """Per table (not FTS): rows added, removed, changed by primary key, computed by SQLite itself."""
    conn = sqlite3.connect(new_db)
    conn.execute("ATTACH DATABASE ? AS old", (str(old_db),))
    out = {}
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND sql NOT LIKE 'CREATE VIRTUAL%' AND name NOT LIKE 'sqlite_%'")]
    virtual = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%'")]
    for t in tables:
        if any(t.startswith(v + "_") for v in virtual):
            continue
        pk = [r[1] for r in sorted(conn.execute(f"PRAGMA table_info({t})"), key=lambda r: r[5]) if r[5]]
        in_old = conn.execute("SELECT count(*) FROM old.sqlite_master WHERE name = ?", (t,)).fetchone()[0]
        if not in_old:
            out[t] = {"added": conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0], "removed": 0, "changed": 0}
            continue
        if not pk:  # no key: the rows as a multiset
            new, old = (Counter(conn.execute(f"SELECT * FROM {db}.{t}")) for db in ("main", "old"))
            out[t] = {"added": sum((new - old).values()), "removed": sum((old - new).values()), "changed": 0}
            continue
        keys = ", ".join(pk)
        added = conn.execute(f"SELECT count(*) FROM main.{t} WHERE ({keys}) NOT IN (SELECT {keys} FROM old.{t})").fetchone()[0]
        removed = conn.execute(f"SELECT count(*) FROM old.{t} WHERE ({keys}) NOT IN (SELECT {keys} FROM main.{t})").fetchone()[0]
        changed = conn.execute(f"SELECT count(*) FROM (SELECT * FROM main.{t} EXCEPT SELECT * FROM old.{t}) "
                               f"WHERE ({keys}) IN (SELECT {keys} FROM old.{t})").fetchone()[0]
        out[t] = {"added": added, "removed": removed, "changed": changed}
    return out


def dump_db(repo_path, ref, out):
    ok(run_cli("dump", ref, "database/sqlite.db", "--out", out, repo=repo_path))
    return out


def test_diff_of_a_day_matches_sql_over_both_databases(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=1, seed=5, include_logs=True, repo=repo_url)
    mutate_agent(agent.directory, 0.05, seed=6)
    (Path(agent.directory) / "mirix.yaml").write_text((Path(agent.directory) / "mirix.yaml").read_text() + "# edited\n")
    ok(run_cli("backup", "--config", agent.config_path, "--include-logs", repo=repo_path))
    ids = Repository.open(repo_path).snapshot_ids()
    snaps = json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)
    a, b = snaps[0]["id"], snaps[1]["id"]
    expected = sql_diff(dump_db(repo_path, a, tmp_path / "a.db"), dump_db(repo_path, b, tmp_path / "b.db"))
    doc = json.loads(ok(run_cli("diff", a, b, "--json", repo=repo_path)).stdout)
    got = {t: {k: v[k] for k in ("added", "removed", "changed")} for t, v in doc["tables"].items()}
    assert got == expected
    assert sum(v["added"] for v in got.values()) and sum(v["changed"] for v in got.values())
    assert "config/mirix.yaml" in doc["files"]["changed"]
    # only what the two sides do not share was decoded
    assert doc["read"]["fallback_full"] is False
    assert doc["read"]["leaf_pages_decoded"] < doc["read"]["pages"] / 4
    # the reverse direction swaps added and removed
    back = json.loads(ok(run_cli("diff", b, a, "--json", repo=repo_path)).stdout)["tables"]
    assert all(back[t]["added"] == got[t]["removed"] and back[t]["changed"] == got[t]["changed"] for t in got)
    text = ok(run_cli("diff", a, b, "--rows", "2", repo=repo_path)).stdout
    assert "episodic_memory" in text and "file changed: config/mirix.yaml" in text
    assert len(ids) == 2


def test_big_rows_rewritten_in_place_vacuum_and_schema_changes(tmp_path, repo_url):
    """Rows with overflow chains rewritten, a table dropped and one created, then VACUUM
    (every page moves): the counts still equal SQL's."""
    db = tmp_path / "agent.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE episodic_memory (id TEXT PRIMARY KEY, summary TEXT, embedding BLOB);
        CREATE TABLE scratch (n INTEGER PRIMARY KEY, v TEXT);
        CREATE TABLE nokey (a, b);
    """)
    conn.executemany("INSERT INTO episodic_memory VALUES (?, ?, ?)",
                     [(f"m{i:04}", f"memory {i}", bytes([i % 251]) * 9000) for i in range(300)])
    conn.executemany("INSERT INTO scratch (v) VALUES (?)", [(f"s{i}",) for i in range(50)])
    conn.executemany("INSERT INTO nokey VALUES (?, ?)", [(i, i * 2) for i in range(100)])
    conn.commit()
    ok(run_cli("init", repo=repo_url))
    ok(run_cli("backup", "--db", db, repo=repo_url))
    # same size, same local prefix: only the overflow pages differ
    conn.execute("UPDATE episodic_memory SET embedding = ? WHERE id IN ('m0007', 'm0100')", (bytes([7]) * 8999 + b"x",))
    conn.execute("DELETE FROM episodic_memory WHERE id = 'm0200'")
    conn.execute("INSERT INTO episodic_memory VALUES ('new', 'a new memory', zeroblob(20000))")
    conn.execute("DROP TABLE scratch")
    conn.execute("CREATE TABLE fresh (k TEXT PRIMARY KEY)")
    conn.execute("INSERT INTO fresh VALUES ('x'), ('y')")
    conn.execute("DELETE FROM nokey WHERE a < 10")
    conn.commit()
    ok(run_cli("backup", "--db", db, repo=repo_url))
    conn.execute("VACUUM")
    conn.close()
    ok(run_cli("backup", "--db", db, repo=repo_url))
    repo = Repository.open(repo_url)
    snaps = json.loads(ok(run_cli("snapshots", "--json", repo=repo_url)).stdout)
    dbs = [dump_db(repo_url, s["id"], tmp_path / f"{i}.db") for i, s in enumerate(snaps)]
    for i, j in ((0, 1), (1, 2), (0, 2), (2, 0)):
        result = diff_snapshots(repo, snaps[i]["id"], snaps[j]["id"])
        got = {t: c.as_dict(False) for t, c in result.tables.items()}
        expected = sql_diff(dbs[i], dbs[j])
        for t in set(got) - set(expected):  # a table only in the old side: all its rows removed
            expected[t] = {"added": 0, "removed": sqlite3.connect(dbs[i]).execute(
                f"SELECT count(*) FROM {t}").fetchone()[0], "changed": 0}
        assert got == expected, (i, j)
    vacuumed = diff_snapshots(repo, snaps[1]["id"], snaps[2]["id"])
    assert all(c.total == 0 for c in vacuumed.tables.values())


def test_live_diff_and_bad_input(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=0.3, seed=8, repo=repo_url)
    before = dump_db(repo_path, "latest", tmp_path / "before.db")
    mutate_agent(agent.directory, 0.05, seed=9)
    doc = json.loads(ok(run_cli("diff", "latest", "--live", "--json", repo=repo_path)).stdout)
    live_copy = tmp_path / "live.db"
    src = sqlite3.connect(agent.db_path)
    src.backup(sqlite3.connect(live_copy))
    expected = sql_diff(before, live_copy)
    assert {t: {k: v[k] for k in ("added", "removed", "changed")} for t, v in doc["tables"].items()} == expected
    for args in (["diff", "latest"], ["diff", "latest", "latest", "--live"], ["diff", "latest", "--db", "x"]):
        result = run_cli(*args, repo=repo_path)
        assert result.returncode == 2 and result.stderr.startswith("snapstore: ") and not result.stdout, args


def test_row_changed_only_in_an_overflow_page_beside_other_changes(tmp_path, repo_url):
    """One row's bytes changed in the middle of its overflow chain, its leaf untouched (the file
    edited directly), while other rows are added and removed: the diff still sees that row."""
    db = tmp_path / "agent.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE episodic_memory (id TEXT PRIMARY KEY, summary TEXT, embedding BLOB)")
    conn.executemany("INSERT INTO episodic_memory VALUES (?, ?, ?)",
                     [(f"m{i:04}", f"memory {i}", f"<{i:04}>".encode() * 3000) for i in range(200)])
    conn.commit()
    ok(run_cli("init", repo=repo_url))
    ok(run_cli("backup", "--db", db, repo=repo_url))
    conn.execute("DELETE FROM episodic_memory WHERE id IN ('m0010', 'm0150')")
    conn.executemany("INSERT INTO episodic_memory VALUES (?, ?, ?)",
                     [(f"n{i}", f"new {i}", b"z" * 12000) for i in range(5)])
    conn.commit()
    conn.close()
    data = bytearray(db.read_bytes())
    run, page = b"<0042>" * 100, 4096
    at = data.index(run)
    while data[at // page * page] != 0:  # on an overflow page (its first byte: the next page's high byte)
        at = data.index(run, (at // page + 1) * page)
    data[at + 1:at + 5] = b"XXXX"
    db.write_bytes(bytes(data))
    ok(run_cli("backup", "--db", db, repo=repo_url))
    snaps = json.loads(ok(run_cli("snapshots", "--json", repo=repo_url)).stdout)
    dbs = [dump_db(repo_url, s["id"], tmp_path / f"{i}.db") for i, s in enumerate(snaps)]
    expected = sql_diff(dbs[0], dbs[1])
    assert expected["episodic_memory"] == {"added": 5, "removed": 2, "changed": 1}
    for i, j in ((0, 1), (1, 0)):
        result = diff_snapshots(Repository.open(repo_url), snaps[i]["id"], snaps[j]["id"])
        got = {t: c.as_dict(False) for t, c in result.tables.items()}
        assert got == sql_diff(dbs[i], dbs[j]), (i, j)
        assert result.read["fallback_full"]  # that page belongs to no row that was decoded


def test_summaries_from_part_of_an_overflow_chain_equal_the_whole_rows(tmp_path):
    """A shown row's summary reads its chain only as far as the summary needs: equal, for
    every row, to ``summarize`` of the whole row -- blank or short texts before a long one,
    multi-byte characters and runs of whitespace across page boundaries, texts just around
    the cut, a summary column that is not text."""
    from blake3 import blake3

    from snapstore.lifecycle.diff.model import summarize
    from snapstore.lifecycle.diff.sqlite_btree import Geometry, btree_pages, decode_record, full_payload, leaf_cells
    from snapstore.lifecycle.diff.sqlite_diff import _Schema, _Side, live_side

    db = tmp_path / "agent.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA page_size = 1024")
    conn.execute("CREATE TABLE episodic_memory (id INTEGER PRIMARY KEY, pad BLOB, summary, details TEXT, content TEXT)")
    word = "é€𝄞 word "  # 2-, 3- and 4-byte characters
    texts = ["", " " * 5000, "\n\t " * 3000 + "late start " * 40, "x" * 99, "y" * 100, "z" * 101,
             "a " * 49 + "b", "a " * 50 + "bc", word * 2000, " " * 1017 + word * 300, "€" * 700 + " tail",
             "x" * 100 + " " * 2000, "x" * 100 + " " * 2000 + "y", "short", None, 12345, b"bytes" * 400]
    rows = []
    for i, s in enumerate(texts):
        for j, pad in enumerate((0, 700, 3000)):
            rows.append((i * 10 + j, b"p" * pad, s, texts[(i + 3) % len(texts)] if isinstance(s, str) else None,
                         "content " * (50 + i * 37)))
    conn.executemany("INSERT INTO episodic_memory VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    with live_side(db, lambda page: blake3(page).digest()) as pages:
        geo = Geometry.from_page1(pages.get(1))
        table = _Schema(pages, geo).tables["episodic_memory"]
        checked = partial = 0
        for leaf in btree_pages(table["root"], pages.node)[1]:
            for cell in leaf_cells(pages.get(leaf), leaf, geo):
                whole = summarize(table["columns"], decode_record(full_payload(cell, geo, pages.get, []), 1))
                side = _Side(pages, geo)
                assert side.summary(table["columns"], cell)() == whole, cell.rowid
                checked += 1
                partial += bool(cell.head) and len(side.overflow) < -(-(cell.total - len(cell.local)) // (1024 - 4))
    assert checked == len(rows) and partial > 10


def test_btree_pages_parsed_by_one_diff_are_not_read_by_the_next(tmp_path, monkeypatch):
    """The b-tree pages a diff parsed (and the tables' declared keys) are kept in the local
    cache: the next diff reads fewer pages and finds the same; a damaged cache file is
    ignored and rewritten."""
    from snapstore.lifecycle.diff.sqlite_diff import diff_sqlite, snapshot_sides
    from snapstore.manifest import resolve_snapshot

    monkeypatch.setenv("SNAPSTORE_CACHE_DIR", str(tmp_path / "cache"))
    agent, repo_path = backed_up_agent(tmp_path, scale=0.3, seed=11)
    mutate_agent(agent.directory, 0.05, seed=12)
    ok(run_cli("backup", "--config", agent.config_path, repo=repo_path))

    snaps = json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)

    def run():
        repo = Repository.open(repo_path)
        with repo.lock():
            a, b = (resolve_snapshot(repo, s["id"]) for s in snaps)
            with snapshot_sides(repo, a, b) as (side_a, side_b, positions):
                result = diff_sqlite(side_a, side_b, 3, positions)
        return {t: c.as_dict(True) for t, c in result.tables.items()}, side_a.reads + side_b.reads

    first, reads = run()
    [cache_file] = (tmp_path / "cache" / "btree").iterdir()
    second, fewer = run()
    assert second == first and sum(c["added"] + c["changed"] for c in first.values())
    assert fewer < reads - 20
    data = bytearray(cache_file.read_bytes())
    data[-1] ^= 1
    cache_file.write_bytes(bytes(data))
    assert run() == (first, reads)  # damaged: parsed afresh ...
    assert run() == (first, fewer)  # ... and rewritten
