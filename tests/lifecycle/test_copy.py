"""``snapstore copy``: a plaintext (v1) repository moves into an encrypted (v2) one, whole and
deduplicated; copies are idempotent, survive SIGKILL, and keep the two passphrases apart.

Real processes and repositories: a sample agent backed up three times (a day of use between)
into a v1 repository with the CLI, then copied with the CLI into a v2 repository on a local
directory and on S3 (SeaweedFS).  Every copied snapshot is compared with its original file by
file (read through the library, every chunk hash-checked) and restored with the CLI.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgpack
import psycopg
import pytest

import pg_agent_schema as schema
from backends import RepoObjects
from helpers import DB_PATH, assert_one_line_error, cli_env, kill_group, ok, popen_cli, run_cli, wait_for
from snapstore.chunklist import load_list, store_list
from snapstore.extract import iter_file_pieces
from snapstore.lifecycle.copy import copy_snapshots
from snapstore.manifest import content_digest, list_snapshots, load_snapshot, save_snapshot
from snapstore.repository import Repository

PASSWORD = "correct horse battery staple"
SOURCE_PASSWORD = "another passphrase"
DAYS = 3


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dest_env(**extra: str) -> dict[str, str]:
    return cli_env(SNAPSTORE_PASSWORD=PASSWORD, **extra)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A v1 repository with ``DAYS`` snapshots of a sample agent (logs and a tag on some);
    returns (repository, {snapshot id: sha256 of the agent's database when it was taken})."""
    root = tmp_path_factory.mktemp("copy-history")
    agent, repo = root / "agent", root / "v1"
    ok(run_cli("sample-agent", agent, "--scale", "0.3", "--seed", "11"))
    ok(run_cli("init", repo=repo))
    digests = {}
    for day in range(DAYS):
        if day:
            ok(run_cli("sample-agent", agent, "--mutate", "0.05", "--seed", str(day)))
        extra = ["--include-logs"] if day == 0 else ["--tag", f"day{day}"]
        out = ok(run_cli("backup", "--config", agent / "mirix.yaml", "--json", *extra, repo=repo)).stdout
        digests[json.loads(out)["snapshot_id"]] = sha256(agent / "sqlite.db")
    return repo, digests


def init_encrypted(location, password: str = PASSWORD, pack_size: int | None = None) -> None:
    repo = Repository.init(location, encrypt=True, password=password)
    if pack_size is not None:  # tiny packs: a copy writes many, so a kill lands mid-run
        cfg = msgpack.unpackb(repo.storage.get("config"))
        cfg["pack_size"] = pack_size
        repo.storage.put("config", msgpack.packb(cfg))
    repo.close()


def file_digests(repo: Repository, snap) -> dict[str, str]:
    out = {}
    for entry in snap.files:
        h = hashlib.sha256()
        for piece in iter_file_pieces(repo, entry):
            h.update(piece)
        out[entry.path] = h.hexdigest()
    return out


def stored_bytes(location) -> int:
    objects = RepoObjects(location)
    try:
        return sum(objects.size(name) for name in objects.packs())
    finally:
        objects.close()


def copy_json(dest, src, *args, env=None) -> dict:
    return json.loads(ok(run_cli("copy", "--from-repo", src, "--json", *args, repo=dest,
                                 env=env or dest_env())).stdout)


def assert_same_snapshots(src_path, dest_location, digests: dict[str, str], out: Path) -> None:
    """Every source snapshot has one copy in the destination: same metadata, every file the same
    bytes, its database restoring byte for byte; and ``verify --full`` finds the destination clean."""
    src = Repository.open(src_path)
    dest = Repository.open(dest_location, password=PASSWORD)
    originals = list_snapshots(src)
    copies = {s.summary["copied_from"]: s for s in list_snapshots(dest)}
    assert sorted(copies) == sorted(s.id for s in originals)
    dest_of = {sid: c.id for sid, c in copies.items()}
    env = dest_env()
    for snap in originals:
        copy = copies[snap.id]
        assert (copy.time, copy.host, copy.agent, copy.tags, copy.source, copy.database, copy.sanitized) == \
            (snap.time, snap.host, snap.agent, snap.tags, snap.source, snap.database, snap.sanitized)
        assert copy.parent == (dest_of.get(snap.parent) if snap.parent else None)
        recounted = {"added_chunks", "new_data_bytes", "added_pack_bytes", "copied_from"}
        assert {k: v for k, v in copy.summary.items() if k not in recounted} == \
            {k: v for k, v in snap.summary.items() if k not in recounted}  # total_size, database_unchanged
        assert [(f.path, f.size, f.md5, f.chunker) for f in copy.files] == \
            [(f.path, f.size, f.md5, f.chunker) for f in snap.files]
        assert file_digests(dest, copy) == file_digests(src, snap), f"snapshot {snap.short_id} differs"
        ok(run_cli("dump", copy.id, DB_PATH, "--out", out, repo=dest_location, env=env))
        assert sha256(out) == digests[snap.id], f"copy of {snap.short_id} does not restore byte for byte"
        out.unlink()
        restored = out.with_suffix(".restored.db")
        ok(run_cli("restore", copy.id, "--to", restored, repo=dest_location, env=env))
        assert sha256(restored) == digests[snap.id]
        restored.unlink()
    report = ok(run_cli("verify", "--full", repo=dest_location, env=env)).stdout
    assert "no damage found" in report


def test_v1_to_v2_copy_is_whole_deduplicated_and_idempotent(history, repo_url, tmp_path):
    src, digests = history
    init_encrypted(repo_url)
    result = copy_json(repo_url, src)
    assert [c["source_id"] for c in result["copied"]] == list(digests)  # oldest first
    assert result["skipped"] == []
    assert_same_snapshots(src, repo_url, digests, tmp_path / "out.db")

    # deduplication intact: the three snapshots cost about what they cost in the source, not three times
    # (the encrypted copy adds 32 bytes per payload and stores packs per snapshot, as backups did)
    src_bytes, dest_bytes = stored_bytes(src), stored_bytes(repo_url)
    total = sum(s.summary["total_size"] for s in list_snapshots(Repository.open(src)))
    assert dest_bytes <= 1.1 * src_bytes, (dest_bytes, src_bytes)
    assert dest_bytes < total / 2, (dest_bytes, total)
    assert result["added_bytes"] >= dest_bytes

    # a second run adds nothing: every object of the destination stays as it was
    objects = RepoObjects(repo_url)
    before = {k: v for k, v in objects.state().items() if not k.startswith("locks/")}
    again = copy_json(repo_url, src)
    assert again["copied"] == [] and again["read_chunks"] == 0 and again["added_bytes"] == 0
    assert sorted(s["source_id"] for s in again["skipped"]) == sorted(digests)
    assert {k: v for k, v in objects.state().items() if not k.startswith("locks/")} == before
    objects.close()


def test_copy_of_some_snapshots_then_the_rest_reads_only_what_changed(history, tmp_path):
    """Named snapshots only; a later run maps the chunks of the copied parent without reading them."""
    src, digests = history
    first, second, third = list(digests)
    dest = tmp_path / "v2"
    init_encrypted(dest)
    got = copy_json(dest, src, first[:8], second)
    assert [c["source_id"] for c in got["copied"]] == [first, second]
    rest = copy_json(dest, src)
    assert [c["source_id"] for c in rest["copied"]] == [third]
    assert sorted(s["source_id"] for s in rest["skipped"]) == sorted([first, second])
    src_repo = Repository.open(src)
    with src_repo.reader() as reader:
        snap = next(s for s in list_snapshots(src_repo) if s.id == third)
        chunks = len({load_list(f.chunks, reader)[i:i + 32] for f in snap.files
                      for i in range(0, f.chunks.count * 32, 32)})
    # the parent's chunks come from the id map: only the day's changes are read
    assert 0 < rest["read_chunks"] < chunks / 3, (rest["read_chunks"], chunks)
    assert_same_snapshots(src, dest, digests, tmp_path / "out.db")


def test_source_passphrase_is_its_own(history, tmp_path):
    """An encrypted source: its passphrase comes from --from-password-file / SNAPSTORE_FROM_PASSWORD,
    never from the destination's SNAPSTORE_PASSWORD; a wrong one is exit 12, one line."""
    src, digests = history
    middle = tmp_path / "v2-a"
    init_encrypted(middle, password=SOURCE_PASSWORD)
    copy_json(middle, src, env=cli_env(SNAPSTORE_PASSWORD=SOURCE_PASSWORD))
    dest = tmp_path / "v2-b"
    init_encrypted(dest)
    before = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())

    wrong = run_cli("copy", "--from-repo", middle, repo=dest, env=dest_env(SNAPSTORE_FROM_PASSWORD="nope"))
    assert wrong.returncode == 12
    assert_one_line_error(wrong, "wrong passphrase", str(middle))
    missing = run_cli("copy", "--from-repo", middle, repo=dest, env=dest_env())  # SNAPSTORE_PASSWORD is the dest's
    assert missing.returncode == 2
    assert_one_line_error(missing, "--from-password-file")
    unreadable = run_cli("copy", "--from-repo", middle, "--from-password-file", tmp_path / "absent", repo=dest,
                         env=dest_env())
    assert unreadable.returncode == 2
    assert_one_line_error(unreadable, "SNAPSTORE_FROM_PASSWORD_FILE")
    wrong_dest = run_cli("copy", "--from-repo", middle, repo=dest,
                         env=cli_env(SNAPSTORE_PASSWORD="nope", SNAPSTORE_FROM_PASSWORD=SOURCE_PASSWORD))
    assert wrong_dest.returncode == 12
    assert_one_line_error(wrong_dest, "wrong passphrase", str(dest))
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == before

    pw = tmp_path / "source-pw"
    pw.write_text(SOURCE_PASSWORD + "\n")
    got = copy_json(dest, middle, "--from-password-file", pw)
    assert len(got["copied"]) == DAYS
    # v2 -> v2 (two id keys): the copies are whole and restore as the originals
    dest_repo = Repository.open(dest, password=PASSWORD)
    copies = {s.time: s for s in list_snapshots(dest_repo)}
    v1 = Repository.open(src)
    for snap in list_snapshots(v1):
        assert file_digests(dest_repo, copies[snap.time]) == file_digests(v1, snap)
    ok(run_cli("verify", "--full", repo=dest, env=dest_env()))


def test_same_repository_and_unknown_snapshot_are_refused(history, tmp_path):
    src, _ = history
    same = run_cli("copy", "--from-repo", src, repo=src)
    assert_one_line_error(same, "same repository")
    dest = tmp_path / "v2"
    init_encrypted(dest)
    unknown = run_cli("copy", "--from-repo", src, "ffffffff", repo=dest, env=dest_env())
    assert unknown.returncode == 2
    assert_one_line_error(unknown, "ffffffff")
    absent = run_cli("copy", "--from-repo", tmp_path / "nothing", repo=dest, env=dest_env())
    assert absent.returncode == 10


def test_killed_copy_leaves_destination_clean_and_a_rerun_finishes(history, tmp_path):
    """SIGKILL after the k-th new pack (tiny packs: dozens per run): the destination verifies
    clean every time, holds only whole snapshots, and the next run completes the copy."""
    src, digests = history
    dest = tmp_path / "v2"
    init_encrypted(dest, pack_size=16 * 1024)
    objects = RepoObjects(dest)
    interrupted = 0
    for k in (2, 12, 30):
        start = len(objects.packs())
        proc = popen_cli("copy", "--from-repo", src, repo=dest, env=dest_env())
        wait_for(lambda: len(objects.packs()) >= start + k or proc.poll() is not None, what=f"pack {k}")
        finished = proc.poll() is not None
        kill_group(proc)
        if not finished:
            interrupted += 1
        ok(run_cli("verify", "--full", repo=dest, env=dest_env()))
        repo = Repository.open(dest, password=PASSWORD)
        for snap in list_snapshots(repo):  # every committed copy is whole
            file_digests(repo, snap)
    assert interrupted >= 2, "the copy finished before it could be killed: make it longer"
    ok(run_cli("copy", "--from-repo", src, repo=dest, env=dest_env()))
    assert_same_snapshots(src, dest, digests, tmp_path / "out.db")
    objects.close()


def test_api_copy_reports_the_id_map(history, tmp_path):
    """The library call: plain -> encrypted, and the id map's size is reported (for a 1 GB agent's
    ~250 000 chunks, ~45 MB: about 180 bytes per chunk)."""
    src, digests = history
    dest = tmp_path / "v2"
    init_encrypted(dest)
    result = copy_snapshots(Repository.open(src), Repository.open(dest, password=PASSWORD))
    assert len(result.copied) == DAYS
    assert result.map_entries >= result.read_chunks > 0
    assert result.map_bytes / result.map_entries < 250


def test_a_look_alike_destination_snapshot_seeds_nothing(history, tmp_path):
    """The id map is seeded from the copied parent only after a few positions are re-hashed: a
    destination snapshot that matches the parent's identity but names other chunks (here: its
    database list reversed) does not poison the copy of the child."""
    src, digests = history
    first, second, _ = list(digests)
    dest = tmp_path / "v2"
    init_encrypted(dest)
    copy_json(dest, src, first)
    repo = Repository.open(dest, password=PASSWORD)
    with repo.lock(exclusive=True):
        (real,) = list_snapshots(repo)
        with repo.writer() as writer, repo.reader() as reader:
            entry = real.file(DB_PATH)
            ids = load_list(entry.chunks, reader)
            rev = b"".join(ids[i:i + 32] for i in range(len(ids) - 32, -1, -32))
            assert rev != ids
            entry.chunks = store_list(rev, writer, None, reader)
            entry.digest = content_digest(rev)
        genuine = real.id
        save_snapshot(repo, real)  # the look-alike, under a new id
        repo.remove_snapshot_file(genuine)
    assert load_snapshot(repo, real.id).summary["copied_from"] == first
    got = copy_json(dest, src, second)
    assert [c["source_id"] for c in got["copied"]] == [second]
    copy = next(s for s in list_snapshots(Repository.open(dest, password=PASSWORD)) if s.id != real.id)
    assert copy.parent == real.id
    ok(run_cli("dump", copy.id, DB_PATH, "--out", tmp_path / "out.db", repo=dest, env=dest_env()))
    assert sha256(tmp_path / "out.db") == digests[second]


@pytest.mark.postgres
def test_postgres_snapshots_copy_whole(postgres_server, tmp_path):
    """A PostgreSQL agent's snapshots (COPY data per key range, padded with the zero-byte chunk,
    whose id differs between the two repositories) copy whole, and diff reads the copies alike."""
    server = postgres_server
    db = server.create_database()
    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        schema.create(conn, rows=800)
    src, dest = tmp_path / "v1", tmp_path / "v2"
    env = cli_env(SNAPSTORE_PG_BIN=str(server.bindir))
    ok(run_cli("init", repo=src))
    ok(run_cli("backup", "--db", server.url(db), repo=src, env=env))
    with psycopg.connect(server.dsn(db), autocommit=True) as conn:
        schema.one_percent_day(conn, seed=3)
    ok(run_cli("backup", "--db", server.url(db), repo=src, env=env))
    init_encrypted(dest)
    got = copy_json(dest, src)
    assert len(got["copied"]) == 2
    src_repo, dest_repo = Repository.open(src), Repository.open(dest, password=PASSWORD)
    originals, copies = list_snapshots(src_repo), list_snapshots(dest_repo)
    assert dest_repo.cipher.empty_id != src_repo.cipher.empty_id
    with dest_repo.reader() as reader:  # the padding is there, under the destination's id
        lists = [load_list(f.chunks, reader) for f in copies[-1].files]
    padded = [ids for ids in lists if dest_repo.cipher.empty_id in {ids[i:i + 32] for i in range(0, len(ids), 32)}]
    assert padded
    for snap, copy in zip(originals, copies):
        assert copy.summary["copied_from"] == snap.id
        assert file_digests(dest_repo, copy) == file_digests(src_repo, snap)
    ok(run_cli("verify", "--full", repo=dest, env=dest_env()))
    env = dest_env(SNAPSTORE_PG_BIN=str(server.bindir))
    diffs = [json.loads(ok(run_cli("diff", a.id, b.id, "--json", repo=repo, env=env)).stdout)["tables"]
             for repo, (a, b) in ((src, originals), (dest, copies))]
    assert diffs[0] == diffs[1] and any(t["added"] or t["changed"] for t in diffs[0].values())
