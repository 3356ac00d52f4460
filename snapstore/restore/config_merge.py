"""Restoring an agent's ``mirix.yaml`` from a backup without breaking the running set-up.

``restore --only config`` (CLI and ``load_agent`` alike) merges into the agent's
live config; ``--files-dir`` writes the backup's config files there instead.

A backup's config is usually sanitised (secrets replaced by ``***REDACTED***``) and
describes where things were on the machine that wrote it.  Restoring it therefore
merges: the backup's settings win, except

* values the backup holds as the redaction marker (or a connection string whose password is
  the marker) keep the current value
  (reported in ``placeholders`` when there is none);
* the settings that say where things live on *this* machine (``database_url``,
  ``pg_*``, ``log_dir``, the ``snapstore`` section) keep their current values.

The previous config is captured first (safety snapshot of the whole agent, or a
``mirix.yaml.pre-restore-<time>`` copy when the agent has no database yet) and the
new file is written atomically with the old file's permissions, changing only the
values that differ (comments and order kept, ``yaml_edit``); a merge that changes
nothing leaves the file alone.
"""
from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from ..atomic import AtomicFile
from ..backup import CONFIG_PATH
from ..errors import SourceError, UsageError
from ..sanitize import MARKER
from ..sources.agent import read_config
from ..yaml_edit import KEEP, edited_or_dumped, leaves
from .sources import FolderSource, SnapshotSource

LOCAL_KEYS = ("database_url", "pg_user", "pg_password", "pg_host", "pg_port", "pg_db", "log_dir", "snapstore")


def merge_config(backup: Any, current: Any, path: str = "") -> tuple[Any, list[str]]:
    """The backup's document with redaction markers filled from ``current``; the paths left unfilled."""
    if isinstance(backup, dict):
        current = current if isinstance(current, dict) else {}
        out, missing = {}, []
        for key, value in backup.items():
            sub = f"{path}.{key}" if path else str(key)
            out[key], more = merge_config(value, current.get(key), sub)
            missing += more
        return out, missing
    if isinstance(backup, list):
        current = current if isinstance(current, list) else []
        out_list, missing = [], []
        for i, value in enumerate(backup):
            item, more = merge_config(value, current[i] if i < len(current) else None, f"{path}[{i}]")
            out_list.append(item)
            missing += more
        return out_list, missing
    if isinstance(backup, str) and MARKER in backup:  # a secret, or a connection string's password
        if current not in (None, "") and not isinstance(current, (dict, list)) and MARKER not in str(current):
            return current, []
        return backup, [path]
    return backup, []


def backup_config(source: FolderSource | SnapshotSource) -> dict:
    if CONFIG_PATH not in source.paths():
        raise UsageError(f"{source.label} holds no {CONFIG_PATH} (saved with include_config=False?)")
    buf = io.BytesIO()
    source.write(CONFIG_PATH, buf)
    try:
        doc = yaml.safe_load(buf.getvalue()) or {}
    except yaml.YAMLError as exc:
        raise SourceError(f"{CONFIG_PATH} of the backup is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{CONFIG_PATH} of the backup is not a mapping")
    return doc


def restore_config(config_path: Path, source: FolderSource | SnapshotSource, safety_snapshot_id: str | None) -> dict:
    """Write the merged config over ``config_path``; returns what was done."""
    current = read_config(config_path)
    merged, placeholders = merge_config(backup_config(source), current)
    kept = []
    for key in LOCAL_KEYS:
        if key in current:
            if merged.get(key) != current[key]:
                kept.append(key)
            merged[key] = current[key]
        else:
            merged.pop(key, None)
    done = {"config_path": str(config_path), "kept_local_settings": kept, "placeholders": placeholders,
            "previous_config_copy": None, "changed": merged != current}
    if not done["changed"]:
        return done  # the user's file stays byte for byte
    if safety_snapshot_id is None:
        copy = config_path.with_name(f"{config_path.name}.pre-restore-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(config_path, copy)
        done["previous_config_copy"] = str(copy)
    original = config_path.read_bytes().decode()
    wanted, present = dict(leaves(merged)), dict(leaves(current))

    def merged_value(path: tuple, _node):
        return wanted[path] if path in wanted and wanted[path] != present.get(path) else KEEP

    text = edited_or_dumped(original, merged_value, merged)  # comments and order kept where possible
    mode = config_path.stat().st_mode & 0o777
    with AtomicFile(config_path, overwrite=True) as out:
        out.write(text.encode())
        os.chmod(out.tmp_path, mode)
    return done
