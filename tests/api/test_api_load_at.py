"""``load_agent(at=TIME)``: the agent as it was at TIME, the snapshot ``restore --at`` picks."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from api_helpers import db_execute, db_rows
from helpers import run_cli
from snapstore import AgentWrapper

DB = Path("configs/sqlite.db")
CONFIG = Path("configs/mirix.yaml")


def _cli_pick(agent: AgentWrapper, at: str, tmp: Path) -> str:
    """The snapshot ``restore --at`` restores for the same time."""
    done = run_cli("restore", "--at", at, "--agent", agent.name, "--to", tmp, "--json", repo=agent.repository_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["snapshot_id"]


def test_load_agent_at_a_time_loads_the_snapshot_restore_at_picks(home):
    agent = AgentWrapper(CONFIG)
    original = db_rows(DB, "episodic_memory")
    first = agent.save_agent("./b1")
    db_execute(DB, "DELETE FROM episodic_memory")
    second = agent.save_agent("./b2")
    db_execute(DB, "DELETE FROM semantic_memory")
    assert first["success"] and second["success"]
    times = {s.id: datetime.fromisoformat(s.time) for s in agent.snapshots()}
    t1, t2 = times[first["snapshot_id"]], times[second["snapshot_id"]]
    between = t1 + (t2 - t1) / 2

    result = agent.load_agent(at=between)
    assert result["success"], result.get("error")
    assert result["snapshot_id"] == first["snapshot_id"] == _cli_pick(agent, between.isoformat(), home / "c1.db")
    assert db_rows(DB, "episodic_memory") == original and result["memory_count"] > 0
    assert result["undo"] and "snapshot" in result["message"]

    # the CLI's strings, and a naive datetime meaning local time
    text = t2.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    result = agent.load_agent(at=text, restore_components={"memories": ["episodic"]})
    assert result["success"] and result["snapshot_id"] == second["snapshot_id"] == _cli_pick(agent, text, home / "c2.db")
    assert db_rows(DB, "episodic_memory") == []
    naive = t1.astimezone().replace(tzinfo=None)
    result = agent.load_agent(at=naive)
    assert result["success"] and result["snapshot_id"] == first["snapshot_id"]
    # the pre-restore safety snapshots taken meanwhile are never a point in time
    later = datetime.now(timezone.utc)
    assert agent.load_agent(at=later)["snapshot_id"] == second["snapshot_id"]


def test_load_agent_at_refuses_clearly(home):
    agent = AgentWrapper(CONFIG)
    assert agent.save_agent("./b")["success"]
    before = db_rows(DB, "episodic_memory")
    early = agent.load_agent(at="2000-01-01 00:00")
    assert not early["success"] and "taken at or before 2000-01-01 00:00:00" in early["error"]
    both = agent.load_agent("./b", at="2000-01-01 00:00")
    assert not both["success"] and "give no backup_path" in both["error"]
    bad = agent.load_agent(at="yesterday")
    assert not bad["success"] and "invalid time 'yesterday'" in bad["error"]
    neither = agent.load_agent()
    assert not neither["success"] and "give the backup folder" in neither["error"]
    assert db_rows(DB, "episodic_memory") == before
