"""``repair packs`` killed with SIGKILL at seeded random points leaves a usable repository, and
running it again finishes the job: after that and a backup of the same data, every snapshot is
whole and restores byte for byte.

Tiny packs and many damaged ones make the salvage write dozens of packs, so the kills land in
every step: reading, salvaging, replacing the index, deleting the damaged packs.  On a local
and an S3 repository (``repo_url``; each attempt works on a copy on the same backend).
"""
from __future__ import annotations

import random
import shutil
import time

from backends import RepoObjects, backend_of, repo_location
from helpers import init_small_pack_repo, kill_group, ok, popen_cli, run_cli
from snapstore.repository import Repository
from snapstore.repository.pack import pack_name

from test_repair_packs import back_up_state, damage, data_packs, dump_digest, snapshots

SEED = 90210
ATTEMPTS = 6


def check_usable(repo_path, expected_snapshots):
    """What a reader needs after any crash: the index loads, names only packs that exist, and
    every snapshot is still listed."""
    repo = Repository.open(repo_path)
    index = repo.index
    present = set(RepoObjects(repo_path).packs())
    for pack_id in index.pack_sizes:
        assert pack_name(pack_id) in present, f"index names missing pack {pack_id.hex()[:16]}"
    assert repo.snapshot_ids() == expected_snapshots


def test_repair_killed_anywhere_then_rerun_heals(tmp_path, repo_url, request):
    agent, repo = tmp_path / "agent", repo_url
    ok(run_cli("sample-agent", agent, "--scale", "1"))
    init_small_pack_repo(repo, 8 * 1024)
    ok(run_cli("backup", "--config", agent / "mirix.yaml", repo=repo))
    state = tmp_path / "state"
    shutil.copytree(agent, state)
    ids = snapshots(repo)
    digest = dump_digest(repo, ids[0], tmp_path / "out.db")
    packs = data_packs(repo)
    assert len(packs) >= 20
    for pack in packs[::2]:
        damage(repo, pack, "flip")

    def copy_of(source: str, name: str) -> str:
        return RepoObjects(source).copy_to(repo_location(request, backend_of(repo_url), tmp_path / name))

    damaged = copy_of(repo, "damaged")
    started = time.monotonic()
    ok(run_cli("repair", "packs", repo=repo))
    span = time.monotonic() - started  # only to spread the kill points over a run, never asserted

    rnd = random.Random(SEED)
    for attempt in range(ATTEMPTS):
        work = copy_of(damaged, f"attempt{attempt}")
        proc = popen_cli("repair", "packs", repo=work)
        time.sleep(span * (attempt + rnd.random()) / ATTEMPTS)
        kill_group(proc)
        check_usable(work, ids)

        ok(run_cli("repair", "packs", repo=work))
        check_usable(work, ids)
        assert not set(packs[::2]) & set(RepoObjects(work).packs()), "every damaged pack is gone after a complete repair"
        back_up_state(agent, state, work)
        verified = run_cli("verify", "--full", repo=work)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        for sid in snapshots(work):
            assert dump_digest(work, sid, tmp_path / "out.db") == digest
