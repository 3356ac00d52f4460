"""Moving an agent to another system: ``export_for_migration`` and ``import_from_migration``.

The export is a full backup folder (logs and config included, secrets sanitised)
plus ``MIGRATION_GUIDE.json``: true facts about the source system (platform,
Python, host, snapstore version, database type, the agent's Mirix version) and
the steps to take on the target.  The import verifies the package (the guide, and
``verify_backup`` of the folder), loads it into the agent of ``new_config_path``
(``AgentWrapper(..., load_from=...)``) and runs ``run_post_migration_tests``.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..atomic import AtomicFile
from ..errors import SnapstoreError
from .exceptions import InvalidMigrationPackage
from .opened import opened_backup
from .post_migration import run_post_migration_tests
from .results import error_text
from .verification import verify_backup
from .versions import get_mirix_version, get_system_info
from .wrapper import AgentWrapper

GUIDE = "MIGRATION_GUIDE.json"


def _agent(source_agent: Any) -> AgentWrapper:
    return source_agent if isinstance(source_agent, AgentWrapper) else AgentWrapper(source_agent)


def migration_guide(agent: AgentWrapper, backup_result: dict) -> dict:
    secrets = sorted(item.split(":", 1)[-1] for item in backup_result.get("sanitized", []))
    verification = backup_result.get("verification", {})
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "agent_name": agent.name,
        "snapshot_id": backup_result.get("snapshot_id"),
        "source_system": get_system_info(),
        "mirix_version": get_mirix_version(agent),
        "database_type": agent.database_type,
        "memory_counts": verification.get("memory_counts", {}),
        "conversation_count": verification.get("conversation_count", 0),
        "migration_steps": [
            "1. Install Mirix and snapstore on the target system (pip install snapstore)",
            "2. Configure the database in the target's mirix.yaml (database_url; PostgreSQL recommended "
            "for large agents)",
            "3. Set up environment variables: fill in the sanitised settings listed in sanitized_settings",
            "4. Restore from this backup: snapstore.import_from_migration(<this folder>, <target mirix.yaml>)",
            "5. Verify all memories are accessible: the import runs run_post_migration_tests "
            "(snapstore verify-folder <this folder> checks the folder itself)",
        ],
        "sanitized_settings": secrets,
        "notes": [
            "API keys and sensitive data have been sanitized" + (f" ({len(secrets)} settings)" if secrets else ""),
            "Update environment variables after restore",
            "Test search functionality after migration",
        ],
    }


def export_for_migration(source_agent: Any, export_path: str | os.PathLike) -> dict:
    """A full backup at ``export_path`` plus ``MIGRATION_GUIDE.json``; returns save_agent's result."""
    try:
        agent = _agent(source_agent)
    except SnapstoreError as exc:
        return {"success": False, "message": f"Agent state could not be saved: {exc.message}",
                "backup_path": str(export_path), "error": exc.message}
    result = agent.save_agent(backup_path=export_path, include_logs=True, include_config=True,
                              sanitize_sensitive=True)
    if not result["success"]:
        return result
    path = Path(export_path) / GUIDE
    try:
        with AtomicFile(path, overwrite=True) as out:
            out.write((json.dumps(migration_guide(agent, result), indent=2) + "\n").encode())
    except OSError as exc:
        result.update(success=False, error=f"cannot write {path}: {error_text(exc)}")
        return result
    result["migration_guide"] = str(path)
    return result


def migration_package_problems(backup_path: str | os.PathLike, *,
                               encryption_key: str | bytes | None = None) -> list[str]:
    """Why ``backup_path`` is not a usable migration package (empty when it is)."""
    try:
        with opened_backup(backup_path, encryption_key) as folder:
            try:
                guide = json.loads((folder / GUIDE).read_text())
            except FileNotFoundError:
                return [f"{GUIDE} is missing (not written by export_for_migration)"]
            except (ValueError, UnicodeDecodeError) as exc:
                return [f"{GUIDE} is not valid JSON: {exc}"]
            if not isinstance(guide, dict) or not isinstance(guide.get("migration_steps"), list):
                return [f"{GUIDE} has no migration_steps"]
    except SnapstoreError as exc:
        return [exc.message]
    check = verify_backup(backup_path, encryption_key=encryption_key)
    return [f"{name}: {msg}" for name, msgs in check["errors"].items() for msg in msgs]


def verify_migration_package(backup_path: str | os.PathLike, *, encryption_key: str | bytes | None = None) -> bool:
    return not migration_package_problems(backup_path, encryption_key=encryption_key)


def import_from_migration(backup_path: str | os.PathLike, new_config_path: str | os.PathLike, *,
                          encryption_key: str | bytes | None = None) -> dict:
    """``{"agent": AgentWrapper, "verification": run_post_migration_tests(agent)}``.

    Raises ``InvalidMigrationPackage`` (a ``ValueError``) for a package that fails
    verification and ``AgentLoadError`` when the load fails, as the reference does.
    """
    problems = migration_package_problems(backup_path, encryption_key=encryption_key)
    if problems:
        raise InvalidMigrationPackage(f"Invalid migration package {backup_path}: {problems[0]}")
    agent = AgentWrapper(config_path=new_config_path, load_from=backup_path, encryption_key=encryption_key)
    return {"agent": agent, "verification": run_post_migration_tests(agent)}
