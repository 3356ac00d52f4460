"""Removing secrets from environment settings and configs before they leave the agent.

A value is secret when its key names a credential (key, token, secret, password,
...) or the value itself looks like one (``sk-...``, a URL with a password).  The
value is replaced by ``MARKER``; the key is kept, so a restored agent shows
exactly which settings need to be filled in again, and the list of removed keys
goes into the snapshot and the backup report.
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterable

import yaml

from .yaml_edit import KEEP, edited_or_dumped

MARKER = "***REDACTED***"
SECRET_KEY = re.compile(r"secret|passw|pwd|credential|(^|[_\-.])(api_?key|key|token|auth|cookie)$", re.I)
SECRET_VALUE = re.compile(r"^(sk-|pk-|ghp_|gho_|xox[abp]-|AKIA|AIza)|://[^/\s:@]+:[^/\s@]+@")
ENV_PREFIXES = ("MIRIX_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "AZURE_", "PG", "DATABASE_URL")


def is_secret(key: str, value: Any) -> bool:
    return bool(SECRET_KEY.search(key)) or (isinstance(value, str) and bool(SECRET_VALUE.search(value)))


def parse_env(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.removeprefix("export ").strip()
        pairs.append((key, value.strip().strip("'\"")))
    return pairs


def sanitize_env(pairs: Iterable[tuple[str, str]]) -> tuple[str, list[str]]:
    """``KEY=value`` text with secret values replaced, and the keys that were."""
    lines, removed = [], []
    for key, value in pairs:
        if is_secret(key, value):
            removed.append(key)
            value = MARKER
        lines.append(f"{key}={value}")
    return "".join(line + "\n" for line in lines), removed


def agent_environment(env_file_text: str | None, environ: dict[str, str] | os._Environ = os.environ) -> list[tuple[str, str]]:
    """The agent's settings: its ``.env`` file, then matching process variables it lacks."""
    pairs = parse_env(env_file_text) if env_file_text else []
    seen = {k for k, _ in pairs}
    for key in sorted(environ):
        if key.startswith(ENV_PREFIXES) and key not in seen:
            pairs.append((key, environ[key]))
    return pairs


def sanitize_config(doc: Any, prefix: str = "") -> tuple[Any, list[str]]:
    """A copy of a parsed YAML/JSON document with secret values replaced."""
    removed: list[str] = []
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict, list)):
                out[key], sub = sanitize_config(value, path)
                removed += sub
            elif value not in (None, "") and is_secret(str(key), value):
                out[key] = MARKER
                removed.append(path)
            else:
                out[key] = value
        return out, removed
    if isinstance(doc, list):
        out_list = []
        for i, value in enumerate(doc):
            item, sub = sanitize_config(value, f"{prefix}[{i}]")
            out_list.append(item)
            removed += sub
        return out_list, removed
    return doc, removed


def sanitize_yaml_text(text: str) -> tuple[str, list[str]]:
    """``text`` with secret values replaced where they stand, every other byte (comments,
    order, quoting, blank lines) kept; unchanged when nothing is secret (``yaml_edit``)."""
    clean, removed = sanitize_config(yaml.safe_load(text))
    if not removed:
        return text, []

    def redact(path: tuple, node: yaml.ScalarNode):  # sanitize_config's rule, on the text's nodes
        if not path or isinstance(path[-1], int) or node.tag.endswith(":null") or node.value == "":
            return KEEP
        return MARKER if is_secret(str(path[-1]), node.value if node.tag.endswith(":str") else None) else KEEP

    return edited_or_dumped(text, redact, clean), removed
