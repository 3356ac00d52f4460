"""``snapstore prune`` and ``forget --prune``: frees exactly the garbage, loses nothing to
concurrent backups, survives SIGKILL anywhere, refuses when it cannot be sure.

Everything runs through the CLI in separate processes on the real sample agent, in local
and S3 (SeaweedFS) repositories with tiny packs, so a history of a few days spreads over
dozens of packs and prune has packs to delete, to repack and to keep.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import msgpack
import pytest

from backends import repo_location
from helpers import (DB_PATH, assert_one_line_error, cli_env, dead_pid, ok, popen_cli, repo_listing, run_cli,
                     temp_name_of)
from snapstore.chunklist import load_list
from snapstore.manifest import list_snapshots
from snapstore.repository import Repository

PACK_SIZE = 64 * 1024
DAYS = 5


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def init_repo(location, pack_size: int = PACK_SIZE, password: str | None = None) -> None:
    """A new repository (any backend) whose config asks for tiny packs; encrypted with ``password``."""
    repo = Repository.init(location, encrypt=password is not None, password=password)
    cfg = msgpack.unpackb(repo.storage.get("config"))
    cfg["pack_size"] = pack_size
    repo.storage.put("config", msgpack.packb(cfg))
    repo.close()


def backup(agent: Path, repo, env=None) -> str:
    out = ok(run_cli("backup", "--config", agent / "mirix.yaml", "--json", repo=repo, env=env)).stdout
    return json.loads(out)["snapshot_id"]


def make_history(root: Path, repo, days: int = DAYS, scale: str = "0.5", fraction: str = "0.05",
                 env=None, pack_size: int = PACK_SIZE) -> dict[str, str]:
    """``days`` backups of a sample agent, a day of use between; snapshot id -> sha256 of its database.
    Encrypted when ``env`` holds a passphrase."""
    agent = root / "agent"
    ok(run_cli("sample-agent", agent, "--scale", scale, "--seed", "7", env=env))
    init_repo(repo, pack_size, (env or {}).get("SNAPSTORE_PASSWORD"))
    digests = {}
    for day in range(days):
        if day:
            ok(run_cli("sample-agent", agent, "--mutate", fraction, "--seed", str(day), env=env))
        digests[backup(agent, repo, env)] = sha256(agent / "sqlite.db")
    return digests


def snapshot_ids(repo, env=None) -> list[str]:
    return [s["id"] for s in json.loads(ok(run_cli("snapshots", "--json", repo=repo, env=env)).stdout)]


def assert_restores(repo, digests: dict[str, str], out: Path, env=None) -> None:
    """Every snapshot left restores byte for byte, and verify --full is clean."""
    remaining = snapshot_ids(repo, env)
    assert remaining
    for sid in remaining:
        ok(run_cli("dump", sid, DB_PATH, "--out", out, repo=repo, env=env))
        assert sha256(out) == digests[sid], f"snapshot {sid[:8]} does not restore byte for byte"
        out.unlink()
    ok(run_cli("verify", "--full", repo=repo, env=env))


def prune_json(repo, *args, env=None) -> dict:
    return json.loads(ok(run_cli("prune", "--json", *args, repo=repo, env=env)).stdout)


def needed(repo: Repository, snaps) -> set[bytes]:
    """Blobs the given snapshots need, computed independently of prune (load_list per file)."""
    out: set[bytes] = set()
    with repo.reader() as reader:
        for snap in snaps:
            for entry in snap.files:
                ids = load_list(entry.chunks, reader)
                out.update(ids[i:i + 32] for i in range(0, len(ids), 32))
                out.update(entry.chunks.tree_ids(reader))
    return out


def payloads(repo: Repository) -> dict[tuple[bytes, int], tuple[int, set[bytes]]]:
    """(pack, offset) -> (stored length, blob ids) of every payload the index lists."""
    out: dict[tuple[bytes, int], tuple[int, set[bytes]]] = {}
    for pack_id, members in repo.index.by_pack().items():
        for blob_id, loc in members:
            out.setdefault((pack_id, loc.offset), (loc.stored_length, set()))[1].add(blob_id)
    return out


def stored_bytes(repo: Repository) -> int:
    return sum(o.size for prefix in ("data/", "index/") for o in repo.storage.list(prefix))


# -- prune frees exactly the garbage ---------------------------------------------------------

@pytest.mark.parametrize("backend,max_unused", [("local", "0%"), ("local", "5%"), ("s3", "0%"),
                                               ("local-encrypted", "0%")])
def test_prune_frees_exactly_what_only_forgotten_snapshots_used(request, tmp_path, backend, max_unused, monkeypatch):
    """Also on an encrypted repository: sealed payloads are repacked as stored, and still open."""
    env = cli_env(SNAPSTORE_CACHE_DIR=str(tmp_path / "cache"))
    if backend == "local-encrypted":
        backend = "local"
        env["SNAPSTORE_PASSWORD"] = "prune passphrase"
        monkeypatch.setenv("SNAPSTORE_PASSWORD", "prune passphrase")
    location = repo_location(request, backend, tmp_path / "repo")
    if backend == "s3":
        env.update({k: v for k, v in request.getfixturevalue("s3_session").env().items()})
    digests = make_history(tmp_path, location, env=env)
    ids = sorted(digests, key=lambda sid: snapshot_ids(location, env).index(sid))
    forgotten, kept = ids[:3], ids[3:]

    repo = Repository.open(location, cache=False)
    snaps = {s.id: s for s in list_snapshots(repo)}
    keep_blobs = needed(repo, [snaps[s] for s in kept])
    all_blobs = needed(repo, snaps.values())
    assert all_blobs - keep_blobs, "the forgotten days held data of their own"
    before = payloads(repo)
    garbage = {key: slen for key, (slen, blobs) in before.items() if not blobs & keep_blobs}
    unique = sum(garbage.values())
    assert unique > 0
    size_before = stored_bytes(repo)
    repo.close()

    ok(run_cli("forget", *forgotten, repo=location, env=env))
    report = prune_json(location, "--max-unused", max_unused, env=env)
    assert report["snapshots"] == len(kept) and not report["nothing_to_do"]
    assert report["packs"]["deleted"] > 0

    repo = Repository.open(location, cache=False)
    after = payloads(repo)
    size_after = stored_bytes(repo)
    assert report["bytes"]["freed"] == size_before - size_after  # the report says what really went
    assert len(repo.index.files) == 1  # compacted
    kept_garbage = sum(slen for key, (slen, blobs) in after.items() if not blobs & keep_blobs)
    freed_payload = sum(s for s, _ in before.values()) - sum(s for s, _ in after.values())
    if max_unused == "0%":
        # Every unused payload went, nothing else: the repository shrank by exactly the
        # payloads unique to the forgotten snapshots, plus the pack and index overhead.
        assert kept_garbage == 0 and freed_payload == unique
        assert report["packs"]["repacked"] > 0
        assert unique <= size_before - size_after <= unique * 1.25
    else:
        # Per pack, at most 5% of a kept pack's payload bytes are garbage; the rest of it went.
        assert freed_payload == unique - kept_garbage
        assert kept_garbage == report["bytes"]["kept_unused"]
        by_pack: dict[bytes, list[int]] = {}
        for (pack_id, _off), (slen, blobs) in after.items():
            by_pack.setdefault(pack_id, [0, 0])[0 if blobs & keep_blobs else 1] += slen
        assert all(unused <= 0.05 * (used + unused) for used, unused in by_pack.values())
    assert all(blob in repo.index for blob in keep_blobs)
    if backend == "s3":  # the local cache keeps nothing that left the repository
        cache = next((tmp_path / "cache").iterdir())
        present = {o.name for prefix in ("data/", "index/", "snapshots/") for o in repo.storage.list(prefix)}
        cached = {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}
        assert cached and cached <= present, cached - present
    repo.close()

    assert_restores(location, digests, tmp_path / "out.db", env)
    assert prune_json(location, "--max-unused", max_unused, env=env)["nothing_to_do"]


def test_forget_with_prune_frees_the_data_in_one_command(tmp_path):
    repo = tmp_path / "repo"
    digests = make_history(tmp_path, repo, days=3)
    doc = json.loads(ok(run_cli("forget", "--keep-last", "1", "--prune", "--max-unused", "0%", "--json",
                                repo=repo)).stdout)
    assert doc["removed"] == 2 and doc["prune"]["packs"]["deleted"] > 0 and doc["prune"]["bytes"]["freed"] > 0
    text = ok(run_cli("forget", "--keep-last", "1", "--prune", repo=repo)).stdout
    assert "0 snapshots removed" in text and "nothing to prune" in text
    assert_restores(repo, digests, tmp_path / "out.db")


# -- refusals and the dry run ------------------------------------------------------------------

def forgotten_repo(tmp_path: Path, pack_size: int = PACK_SIZE) -> tuple[Path, dict[str, str]]:
    """A repository with three of five days forgotten: prune has packs to delete and to repack."""
    repo = tmp_path / "repo"
    digests = make_history(tmp_path, repo, fraction="0.2", pack_size=pack_size)  # busy days: more partly unused packs
    ids = snapshot_ids(repo)
    ok(run_cli("forget", *ids[:3], repo=repo))
    return repo, digests


@pytest.fixture
def forgotten(tmp_path):
    return forgotten_repo(tmp_path)


def test_dry_run_changes_nothing_and_says_what_would_go(forgotten):
    repo, _ = forgotten
    before = repo_listing(repo)
    doc = prune_json(repo, "--dry-run")
    assert doc["dry_run"] and doc["packs"]["deleted"] > 0 and doc["bytes"]["freed"] > 0
    text = ok(run_cli("prune", "--dry-run", repo=repo)).stdout
    assert "would delete" in text and "dry run; nothing changed" in text
    assert repo_listing(repo) == before
    real = prune_json(repo)
    assert real["packs"]["deleted"] == doc["packs"]["deleted"]
    assert real["packs"]["repacked"] == doc["packs"]["repacked"]


def test_prune_removes_what_killed_writers_left_half_written(forgotten, tmp_path):
    repo, digests = forgotten
    stale = repo / temp_name_of(dead_pid(), "data/pack")
    stale.write_bytes(b"SNAPPK\x00\x01" + b"half a pack" * 1000)
    doc = prune_json(repo)
    assert doc["temps_removed"] == [stale.relative_to(repo).as_posix()]
    assert not stale.exists()
    assert_restores(repo, digests, tmp_path / "out.db")


HOLD_LOCK = """
import sys, time
from snapstore.repository import Repository
repo = Repository.open(sys.argv[1])
with repo.lock():
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_prune_while_another_process_holds_the_lock_exits_11_with_one_line(forgotten):
    repo, _ = forgotten
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(repo)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = repo_listing(repo)
        result = run_cli("prune", repo=repo, env=cli_env(SNAPSTORE_LOCK_WAIT="0"))
        assert result.returncode == 11
        assert_one_line_error(result, "lock")
        assert repo_listing(repo) == before
    finally:
        holder.stdin.close()
        holder.wait()


def test_a_corrupt_manifest_stops_prune_before_anything_is_deleted(forgotten):
    repo, _ = forgotten
    manifest = next((repo / "snapshots").iterdir())
    manifest.write_bytes(manifest.read_bytes()[:-7] + b"garbage")
    before = repo_listing(repo)
    result = run_cli("prune", repo=repo)
    assert result.returncode == 4
    line = assert_one_line_error(result, "manifest", manifest.name[:8], "nothing")
    assert "prune deletes nothing" in line
    assert repo_listing(repo) == before


def test_bad_options_are_usage_errors(forgotten):
    repo, _ = forgotten
    for args in (["--max-unused", "150%"], ["--max-unused", "x"], ["--max-repack-size", "12Q"]):
        result = run_cli("prune", *args, repo=repo)
        assert result.returncode == 2
        assert_one_line_error(result, args[0])


def test_max_repack_size_bounds_a_run_and_the_next_run_continues(forgotten, tmp_path):
    repo, digests = forgotten
    full = prune_json(repo, "--max-unused", "0%", "--dry-run")
    assert full["packs"]["repacked"] >= 2
    limit = max(p["size"] for p in full["repack"])  # room for the largest, not for two
    first = prune_json(repo, "--max-unused", "0%", "--max-repack-size", str(limit))
    assert 1 <= first["packs"]["repacked"] < full["packs"]["repacked"]
    assert first["bytes"]["repacked_packs"] <= limit
    rest = prune_json(repo, "--max-unused", "0%")
    assert first["packs"]["repacked"] + rest["packs"]["repacked"] == full["packs"]["repacked"]
    assert prune_json(repo, "--max-unused", "0%")["nothing_to_do"]
    assert_restores(repo, digests, tmp_path / "out.db")


# -- concurrent with backups -------------------------------------------------------------------

ROUNDS = 6


def test_prune_concurrent_with_backups_loses_nothing(tmp_path):
    """Two backup processes loop (a day of use, a backup) while forget --prune loops: every
    snapshot that is left restores to the database its backup saw."""
    repo = tmp_path / "repo"
    init_repo(repo)
    agents = []
    for i in range(2):
        agent = tmp_path / f"agent{i}"
        ok(run_cli("sample-agent", agent, "--scale", "0.3", "--seed", str(10 + i)))
        yaml = agent / "mirix.yaml"
        yaml.write_text(yaml.read_text().replace("agent_name: mirix", f"agent_name: agent{i}"))
        agents.append(agent)
    digests: dict[str, str] = {}
    errors: list[str] = []

    def backups(agent: Path, seed: int) -> None:
        try:
            for r in range(ROUNDS):
                ok(run_cli("sample-agent", agent, "--mutate", "0.05", "--seed", str(seed * 100 + r)))
                state = sha256(agent / "sqlite.db")
                digests[backup(agent, repo)] = state
        except Exception as exc:  # reported by the main thread
            errors.append(repr(exc))

    workers = [threading.Thread(target=backups, args=(a, i)) for i, a in enumerate(agents)]
    for w in workers:
        w.start()
    prunes = freed = 0
    try:
        while any(w.is_alive() for w in workers) or prunes < 3:
            doc = json.loads(ok(run_cli("forget", "--keep-last", "2", "--group-by", "", "--prune",
                                        "--max-unused", "0%", "--json", repo=repo)).stdout)
            prunes += 1
            freed += doc["prune"]["bytes"]["freed"] > 0
    finally:
        for w in workers:
            w.join()
    assert not errors, errors
    assert len(digests) == 2 * ROUNDS and prunes >= 3 and freed >= 1
    remaining = snapshot_ids(repo)
    assert 1 <= len(remaining) <= 2 + 2  # the last prune kept two; at most two backups came after it
    assert_restores(repo, digests, tmp_path / "out.db")


# -- SIGKILL anywhere ------------------------------------------------------------------------

KILLS = 22


def _steps(repo: Path) -> list[str]:
    """The phases of a whole prune of ``repo``, in order (the test hook's log)."""
    result = ok(run_cli("prune", "--max-unused", "0%", repo=repo, env=cli_env(SNAPSTORE_TEST_PRUNE_STEPS="log")))
    return [line.split(": ", 1)[1] for line in result.stderr.splitlines() if line.startswith("prune step ")]


def test_prune_killed_at_any_step_then_rerun_ends_clean(tmp_path):
    repo, digests = forgotten_repo(tmp_path, 16 * 1024)  # tinier packs: dozens of index files and packs
    base = tmp_path / "base"
    shutil.copytree(repo, base)
    trial = tmp_path / "trial"
    shutil.copytree(base, trial)
    phases = _steps(trial)
    shutil.rmtree(trial)
    assert {"repack", "write-index", "delete-index", "delete-pack"} <= set(phases), phases
    # Kill points spread over the whole run, plus the first and last step of every phase.
    picks = {1 + (len(phases) - 1) * k // (KILLS - 1) for k in range(KILLS)}
    for phase in set(phases):
        picks |= {phases.index(phase) + 1, len(phases) - phases[::-1].index(phase)}
    assert len(picks) >= 20
    hit: dict[str, int] = {}
    for n in sorted(picks):
        work = tmp_path / f"kill{n}"
        shutil.copytree(base, work)
        proc = popen_cli("prune", "--max-unused", "0%", repo=work, env=cli_env(SNAPSTORE_TEST_PRUNE_STEPS=str(n)))
        _out, err = proc.communicate()
        assert proc.returncode == -9, err
        phase = err.strip().splitlines()[-1].split(": ", 1)[1]
        hit[phase] = hit.get(phase, 0) + 1
        verified = run_cli("verify", "--full", repo=work)  # whole right after the kill
        assert verified.returncode == 0, f"killed at step {n} ({phase}):\n{verified.stdout}{verified.stderr}"
        again = prune_json(work, "--max-unused", "0%")
        assert not again["nothing_to_do"], "every kill leaves a step for the next prune"
        assert_restores(work, digests, tmp_path / "out.db")
        assert prune_json(work, "--max-unused", "0%")["nothing_to_do"], f"killed at step {n} ({phase})"
        shutil.rmtree(work)
    assert {"repack", "write-index", "delete-index", "delete-pack"} <= set(hit), hit


def _copy_prefix(client, source: str, target: str) -> None:
    from helpers import S3_BUCKET

    for page in client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=source + "/"):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            client.copy_object(Bucket=S3_BUCKET, Key=target + key[len(source):],
                               CopySource={"Bucket": S3_BUCKET, "Key": key})


def test_prune_killed_on_s3_at_each_kind_of_step_then_rerun_ends_clean(request, tmp_path):
    """The same on SeaweedFS (no temp names, packs uploaded in the background): one kill at the
    first step of each phase."""
    from helpers import S3_BUCKET, s3_client

    server = request.getfixturevalue("s3_session")
    env = cli_env(SNAPSTORE_CACHE_DIR=str(tmp_path / "cache"), **server.env())
    base_prefix = f"prune-kill-{tmp_path.name[-12:]}"
    base = f"s3:{server.endpoint}/{S3_BUCKET}/{base_prefix}"
    digests = make_history(tmp_path, base, fraction="0.2", env=env, pack_size=16 * 1024)
    ok(run_cli("forget", *snapshot_ids(base, env)[:3], repo=base, env=env))
    client = s3_client(server)
    _copy_prefix(client, base_prefix, base_prefix + "-trial")
    log = ok(run_cli("prune", "--max-unused", "0%", repo=base + "-trial",
                     env={**env, "SNAPSTORE_TEST_PRUNE_STEPS": "log"}))
    phases = [line.split(": ", 1)[1] for line in log.stderr.splitlines() if line.startswith("prune step ")]
    assert {"repack", "write-index", "delete-index", "delete-pack"} <= set(phases), phases
    picks = {phases.index(phase) + 1 for phase in set(phases)}  # the first step of each phase
    hit = set()
    for n in sorted(picks):
        prefix = f"{base_prefix}-k{n}"
        _copy_prefix(client, base_prefix, prefix)
        work = f"s3:{server.endpoint}/{S3_BUCKET}/{prefix}"
        proc = popen_cli("prune", "--max-unused", "0%", repo=work, env={**env, "SNAPSTORE_TEST_PRUNE_STEPS": str(n)})
        _out, err = proc.communicate()
        assert proc.returncode == -9, err
        hit.add(err.strip().splitlines()[-1].split(": ", 1)[1])
        verified = run_cli("verify", "--full", repo=work, env=env)
        assert verified.returncode == 0, f"killed at step {n}:\n{verified.stdout}{verified.stderr}"
        assert not prune_json(work, "--max-unused", "0%", env=env)["nothing_to_do"]
        assert_restores(work, digests, tmp_path / "out.db", env)
        assert prune_json(work, "--max-unused", "0%", env=env)["nothing_to_do"]
    assert {"repack", "write-index", "delete-index", "delete-pack"} <= hit, hit
