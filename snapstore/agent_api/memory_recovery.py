"""``recover_specific_memories``: bring back only some memory types from a backup folder.

The folder is verified first (its checksums; an encrypted folder is opened with
``encryption_key``); the chosen types' ``memories/*.json`` documents then replace
those tables' rows in the agent's live database in one transaction, after one
``pre-restore`` safety snapshot.  A type whose file the backup does not hold is
skipped, as in the reference.  Returns the ``AgentWrapper``; what was done is in
its ``recovery_results``.
"""
from __future__ import annotations

import io
import json
import os
from typing import Iterable

from ..folder.layout import ZST
from ..importer import plan_folder
from ..memory_types import memory_file_name, memory_tables, parse_memory_types
from ..restore.sources import FolderSource
from .exceptions import RecoveryError
from .opened import opened_backup
from .wrapper import AgentWrapper


def _read_document(source: FolderSource, rel: str) -> dict:
    buf = io.BytesIO()
    source.write(rel, buf)
    try:
        return json.loads(buf.getvalue())
    except ValueError as exc:
        raise RecoveryError(f"{rel} of the backup is not valid JSON: {exc}") from None


def recover_specific_memories(backup_path: str | os.PathLike, memory_types: Iterable[str] | str,
                              config_path: str | os.PathLike = "./configs/mirix.yaml", *,
                              encryption_key: str | bytes | None = None) -> AgentWrapper:
    agent = AgentWrapper(config_path)
    mapping = memory_tables(agent.config)
    kinds = parse_memory_types(list(memory_types) if not isinstance(memory_types, str) else memory_types, mapping)
    documents, skipped = {}, []
    with opened_backup(backup_path, encryption_key) as folder:
        plan = plan_folder(folder)  # checksums verified before anything is read
        source = FolderSource(folder, plan)
        for kind in kinds:
            rel = f"memories/{memory_file_name(kind)}"
            if (folder / rel).is_file():
                source.plan.files[rel] = (folder / rel, False)
            elif (folder / (rel + ZST)).is_file():
                source.plan.files[rel] = (folder / (rel + ZST), True)
            else:
                skipped.append(kind)
                continue
            # Memory files are derived data, verified by plan_folder but not in its plan of files to store.
            documents[kind] = _read_document(source, rel)
    results = {"skipped": skipped, "memory_types": {}, "safety_snapshot_id": None}
    if documents:
        out = agent.restore_memory_documents(documents)
        if not out["success"]:
            raise RecoveryError(f"cannot restore {', '.join(documents)} memories from {backup_path}: {out['error']}")
        results.update(memory_types=out["memory_types"], safety_snapshot_id=out["safety_snapshot_id"],
                       warnings=out["warnings"])
    agent.recovery_results = results
    return agent
