"""snapstore stats: figures equal to what the repository's files and manifests say; plots drawn."""
import json
from pathlib import Path

from backends import RepoObjects
from helpers import assert_one_line_error, backed_up_agent, ok, run_cli
from snapstore.sample_agent import mutate_agent


def test_stats_figures_and_plots(tmp_path, repo_url):
    agent, repo_path = backed_up_agent(tmp_path, scale=0.5, seed=11, repo=repo_url)
    for seed in (1, 2):
        mutate_agent(agent.directory, 0.02, seed=seed)
        ok(run_cli("backup", "--config", agent.config_path, repo=repo_path))
    doc = json.loads(ok(run_cli("stats", "--json", repo=repo_path)).stdout)
    snaps = json.loads(ok(run_cli("snapshots", "--json", repo=repo_path)).stdout)
    assert [s["id"] for s in doc["snapshots"]] == [s["id"] for s in snaps]
    assert [s["logical_bytes"] for s in doc["snapshots"]] == [s["total_size"] for s in snaps]
    assert [s["added_bytes"] for s in doc["snapshots"]] == [s["added_bytes"] for s in snaps]
    repo = doc["repository"]
    objects = RepoObjects(repo_path)
    on_disk = sum(objects.size(name) for d in ("data/", "index/", "snapshots/") for name in objects.names(d))
    objects.close()
    assert repo["disk_bytes"] == on_disk
    # every backup's added bytes, summed, are what the repository holds
    assert sum(s["added_bytes"] for s in doc["snapshots"]) == on_disk
    assert repo["logical_bytes"] == sum(s["total_size"] for s in snaps)
    assert repo["unique_bytes"] < repo["logical_bytes"] and repo["dedup_ratio"] > 2
    assert repo["dedup_ratio"] == round(repo["logical_bytes"] / repo["unique_bytes"], 3)
    assert repo["compression_ratio"] == round(repo["unique_bytes"] / repo["stored_bytes"], 3) > 1
    series = doc["growth"][f"{snaps[0]['agent']}@{snaps[0]['host']}"]
    assert [p["cumulative_added_bytes"] for p in series][-1] == on_disk
    for name in ("growth.png", "growth.svg"):
        out = ok(run_cli("stats", "--plot", tmp_path / name, repo=repo_path)).stdout
        assert f"plot written to {tmp_path / name}" in out
    assert (tmp_path / "growth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "growth.png").stat().st_size > 20_000
    assert "<svg" in (tmp_path / "growth.svg").read_text()[:2000]
    assert_one_line_error(run_cli("stats", "--plot", tmp_path / "x.gif", repo=repo_path), ".png or .svg")
    assert not Path(tmp_path / "x.gif").exists()
