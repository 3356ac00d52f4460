"""A backup killed with SIGKILL at random points leaves a consistent repository.

Real processes only: the ``snapstore backup`` command runs as a subprocess and is
killed with SIGKILL (with its process group, i.e. its pool workers too) either
after a seeded random delay or right after it has committed its k-th new pack
or index file.  The repository is configured with tiny packs so that every
backup writes many packs and index files and the kills land mid-write.

After every kill, and again at the end, every snapshot the repository lists must
be whole: read back in full when it first appears, and every blob it needs indexed
in a pack that exists; at the end each one is dumped with the CLI and must be a sound
SQLite database holding exactly the data the agent had when that backup started.
The next backup must succeed, leftover ``*.tmp-*`` files must not matter, and
``snapstore repair index`` must rebuild an index that places every referenced
blob where the incremental index had it.  On a local and an S3 repository
(``repo_url``): the repository is watched and read through the storage interface.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from pathlib import Path

from backends import RepoObjects, backend_of
from helpers import (DB_PATH, init_small_pack_repo, integrity_check, kill_group, ok, popen_cli, referenced_blobs,
                     run_cli, snapshot_ids, table_checksums)
from snapstore import sample_agent
from snapstore.extract import iter_file_chunks
from snapstore.manifest import list_snapshots, load_snapshot
from snapstore.repository import Repository
from snapstore.repository.pack import pack_id_of, pack_name, read_trailer


SEED = 424242
PACK_SIZE = 32 * 1024  # a 4 KiB page compresses to ~1 KiB: a few dozen chunks per pack
ATTEMPTS = 10
TMP_MARK = ".tmp-"


def committed_packs(objects: RepoObjects) -> int:
    return len(objects.packs())  # listings leave out half-written (temp) files


def committed_index_files(objects: RepoObjects) -> int:
    return len(objects.names("index/"))


def file_digests(repo_path: str, snapshot_id: str) -> dict[str, str]:
    """SHA-256 of every file of a snapshot, read through the library (every chunk hash-checked)."""
    repo = Repository.open(repo_path)
    snap = load_snapshot(repo, snapshot_id)
    digests = {}
    for entry in snap.files:
        h = hashlib.sha256()
        size = 0
        for data in iter_file_chunks(repo, entry):
            h.update(data)
            size += len(data)
        assert size == entry.size, f"{snapshot_id[:8]}:{entry.path} read {size} of {entry.size} bytes"
        digests[entry.path] = h.hexdigest()
    return digests


def check_repository(repo_path: str, expected: dict[str, dict], digests: dict[str, dict]) -> None:
    """The repository as a fresh reader sees it: loadable, self-consistent, every snapshot whole."""
    repo = Repository.open(repo_path)
    index = repo.index  # every index file present must load and match its hash
    objects = RepoObjects(repo_path)
    sizes = {name: objects.size(name) for name in objects.packs()}
    for pack_id, size in index.pack_sizes.items():
        assert pack_name(pack_id) in sizes, f"index names pack {pack_id.hex()[:16]} which does not exist"
        assert sizes[pack_name(pack_id)] == size
    listed = [s.id for s in list_snapshots(repo)]  # every manifest loads
    assert set(listed) == set(expected), "a snapshot appeared that no backup attempt can have written"
    unindexed = [b.hex()[:16] for b in referenced_blobs(repo) if b not in index]
    assert not unindexed, f"snapshots need blobs no index places: {unindexed[:5]}"
    for sid in listed:
        # Read whole (every chunk hash-checked) when first seen.  Later its blobs only need to stay
        # indexed in packs that exist with their size (above): packs are immutable and named by
        # their hash.  The end of the test dumps every snapshot again with the CLI.
        if sid not in digests:
            digests[sid] = file_digests(repo_path, sid)
            assert DB_PATH in digests[sid]


def test_sigkill_during_backup_leaves_a_consistent_repository(tmp_path, repo_url):
    rng = random.Random(SEED)
    info = sample_agent.create_sample_agent(tmp_path / "agent", scale=1, seed=SEED)
    agent_dir, config, db = Path(info.directory), Path(info.config_path), Path(info.db_path)
    repo_path = repo_url
    init_small_pack_repo(repo_path, PACK_SIZE)
    objects = RepoObjects(repo_path)

    expected: dict[str, dict] = {}  # snapshot id -> table checksums of the agent when it was taken
    digests: dict[str, dict] = {}  # snapshot id -> file digests when first seen

    def record_new_snapshots(state: dict) -> list[str]:
        new = [sid for sid in snapshot_ids(repo_path) if sid not in expected]
        for sid in new:
            expected[sid] = state
        return new

    # A first, complete backup; its duration only scales the random kill delays.
    state = table_checksums(db)
    started = time.monotonic()
    ok(run_cli("backup", "--config", config, repo=repo_path))
    full_run = time.monotonic() - started
    assert len(record_new_snapshots(state)) == 1
    check_repository(repo_path, expected, digests)

    killed_mid_write = 0
    finished = 0
    orphaned: list[int] = []  # process groups whose main process alone was killed
    for attempt in range(ATTEMPTS):
        sample_agent.mutate_agent(agent_dir, fraction=0.1, seed=SEED + attempt)
        state = table_checksums(db)
        packs0, index0 = committed_packs(objects), committed_index_files(objects)
        proc = popen_cli("backup", "--config", config, repo=repo_path)
        mode = attempt % 3
        if mode == 0:  # after a random delay, spread over about two runs
            time.sleep(rng.uniform(0.0, 2.0) * full_run)
        else:  # right after the k-th new pack (mode 1) or index file (mode 2) is committed
            k = rng.randint(1, 12) if mode == 1 else rng.randint(1, 3)
            counter, base = (committed_packs, packs0) if mode == 1 else (committed_index_files, index0)
            while proc.poll() is None and counter(objects) < base + k:
                time.sleep(0.002)
        if proc.poll() is None:
            wrote = committed_packs(objects) > packs0
            if attempt % 2:
                # `kill -9 PID`: only the main process; its forked scan workers are orphaned
                # and must go away by themselves without keeping the repository locked.
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                orphaned.append(proc.pid)
            else:  # the whole process group at once (OOM killer / systemd stop)
                kill_group(proc)
            proc.communicate(timeout=60)  # drains the pipes; returns when the orphans are gone
            new = record_new_snapshots(state)
            assert len(new) <= 1
            if wrote and not new:
                killed_mid_write += 1
        else:
            out, err = proc.communicate()
            assert proc.returncode == 0, f"backup attempt {attempt} failed on its own:\n{err}"
            assert len(record_new_snapshots(state)) == 1
            finished += 1
        check_repository(repo_path, expected, digests)

    # The test would prove nothing if no kill had landed between the first pack and the snapshot.
    assert killed_mid_write >= 2, f"only {killed_mid_write} kills landed mid-write ({finished} runs finished)"

    # No kill leaves the repository locked (a stale lock would be held for ever; 10 s tells them apart).
    assert orphaned, "no attempt killed the main process alone"
    with Repository.open(repo_path).lock(exclusive=True, wait=10):
        pass

    # Leftovers of the kills, plus planted garbage temp files, must be ignored by everything.
    # Temp files are the local format's (an S3 upload lands whole or not at all).
    if backend_of(repo_path) == "local":
        root = Path(repo_path)
        (root / "data" / "ab").mkdir(exist_ok=True)
        for garbage in (root / "data" / f"pack{TMP_MARK}0badc0ffee00",
                        root / "data" / "ab" / f"{'ab' * 32}{TMP_MARK}123456789abc",
                        root / "index" / f"{'cd' * 32}{TMP_MARK}123456789abc",
                        root / "snapshots" / f"{'ef' * 32}{TMP_MARK}123456789abc"):
            garbage.write_bytes(os.urandom(1000))
        assert any(TMP_MARK in p.name for p in root.rglob("*"))

    # The next backup succeeds and reads back.
    sample_agent.mutate_agent(agent_dir, fraction=0.05, seed=SEED + 1000)
    state = table_checksums(db)
    result = ok(run_cli("backup", "--config", config, "--json", repo=repo_path))
    new_id = json.loads(result.stdout)["snapshot_id"]
    assert record_new_snapshots(state) == [new_id]
    check_repository(repo_path, expected, digests)

    listing = json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)
    assert sorted(row["id"] for row in listing) == sorted(expected)

    # Every snapshot, dumped by the CLI, is a sound database with the data of its moment.
    for n, sid in enumerate(sorted(expected)):
        out = tmp_path / "dumps" / f"{n}.db"
        out.parent.mkdir(exist_ok=True)
        ok(run_cli("dump", sid, DB_PATH, "--out", out, repo=repo_path))
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digests[sid][DB_PATH]
        assert integrity_check(out) == "ok", f"snapshot {sid[:8]}"
        assert table_checksums(out) == expected[sid], f"snapshot {sid[:8]} does not hold its moment's data"

    # repair index rebuilds, from the packs alone, an index that agrees on every referenced blob.
    repo = Repository.open(repo_path)
    before = repo.index
    needed = referenced_blobs(repo)
    assert needed and all(b in before for b in needed)
    copies: dict[bytes, set] = {}
    for name in objects.packs():
        for e in read_trailer(objects.storage, name):
            copies.setdefault(e.blob_id, set()).add((pack_id_of(name), e.offset))
    ok(run_cli("repair", "index", repo=repo_path))
    after = Repository.open(repo_path).index
    assert set(before.ids()) <= set(after.ids())
    for blob_id in needed:
        old, new = before.get(blob_id), after.get(blob_id)
        assert new is not None
        assert (new.pack_id, new.offset) in copies[blob_id]
        if len(copies[blob_id]) == 1:
            assert new == old, f"blob {blob_id.hex()[:16]} moved in the rebuilt index"
        else:  # stored twice (a killed run's unindexed pack, then again): any copy will do
            assert (new.blob_type, new.plain_length) == (old.blob_type, old.plain_length)
    check_repository(repo_path, expected, digests)

    # ... and backing up on top of the rebuilt index works too.
    sample_agent.mutate_agent(agent_dir, fraction=0.02, seed=SEED + 2000)
    state = table_checksums(db)
    ok(run_cli("backup", "--config", config, repo=repo_path))
    (last,) = record_new_snapshots(state)
    out = tmp_path / "dumps" / "last.db"
    ok(run_cli("dump", "latest", DB_PATH, "--out", out, repo=repo_path))
    assert integrity_check(out) == "ok"
    assert table_checksums(out) == expected[last]
    check_repository(repo_path, expected, digests)
