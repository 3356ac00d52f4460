"""Removing secrets from an agent's settings before they leave the repository.

A value is secret when its key names a credential (key, token, secret, password,
...) or the value itself looks like one (``sk-...``).  The value is replaced by
``MARKER``; in a connection string (``postgresql://user:pw@host/db``,
``host=db password=pw``) only the password is, so the setting still says where
the database is.  The key is kept, so a restored agent shows exactly which
settings need to be filled in again, and the list of removed keys (never their
values) goes into the backup report.

The repository stores the agent's files as they are (a backup must give them
back); exports sanitise them on the way out unless asked not to.
"""
from __future__ import annotations

import json
import re
from typing import Any

import yaml

from .errors import UsageError
from .yaml_edit import KEEP, edited_or_dumped

MARKER = "***REDACTED***"
SECRET_KEY = re.compile(r"secret|passw|pwd|credential|(^|[_\-.])(api_?key|key|token|auth|cookie)$", re.I)
SECRET_PREFIX = re.compile(r"^(sk-|pk-|ghp_|gho_|github_pat_|hf_|xox[abp]-|AKIA|AIza)")
URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)([^/\s@]+)(@)")
DSN_PASSWORD = re.compile(r"(\b(?:password|passwd|pwd)\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s;'][^\s;]*)", re.I)
SECRET_VALUE = re.compile(SECRET_PREFIX.pattern + "|" + URL_PASSWORD.pattern + "|" + DSN_PASSWORD.pattern, re.I)


def is_secret(key: str, value: Any) -> bool:
    return bool(SECRET_KEY.search(key)) or (isinstance(value, str) and bool(SECRET_VALUE.search(value)))


def redacted(key: str, value: Any) -> Any:
    """What ``key: value`` becomes in a sanitised file, or None when it stays (no secret, or
    already redacted)."""
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    if SECRET_KEY.search(key):
        new: Any = MARKER
    elif not isinstance(value, str):
        return None
    elif SECRET_PREFIX.search(value):
        new = MARKER
    else:
        new = DSN_PASSWORD.sub(lambda m: m.group(1) + MARKER, URL_PASSWORD.sub(r"\g<1>" + MARKER + r"\g<3>", value))
    return None if new == value else new


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


_ENV_LINE = re.compile(r"^(\s*(?:export\s+)?)([^=\s#][^=]*?)(\s*=\s*)(.*?)(\s*)$", re.S)


def sanitize_env_text(text: str) -> tuple[str, list[str]]:
    """A ``.env`` file's text with secret values replaced where they stand (quotes, comments,
    ``export``, blank lines and line endings kept), and the keys that were."""
    out, removed = [], []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        eol = line[len(body):]
        match = _ENV_LINE.match(body)
        if not match or body.lstrip().startswith("#"):
            out.append(line)
            continue
        lead, key, sep, raw, trail = match.groups()
        quote = raw[0] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" else ""
        value = raw[1:-1] if quote else raw
        new = redacted(key, value)
        if new is None:
            out.append(line)
            continue
        removed.append(key)
        out.append(f"{lead}{key}{sep}{quote}{new}{quote}{trail}{eol}")
    return "".join(out), removed


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
                continue
            new = redacted(str(key), value)
            out[key] = value if new is None else new
            if new is not None:
                removed.append(path)
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
        new = redacted(str(path[-1]), node.value if node.tag.endswith(":str") else 0)
        return KEEP if new is None else new

    return edited_or_dumped(text, redact, clean), removed


def sanitize_json_text(text: str) -> tuple[str, list[str]]:
    """A JSON document (Mirix's ``agent_config.json``) with secret values replaced; unchanged
    when nothing is secret, else written again with two-space indentation."""
    clean, removed = sanitize_config(json.loads(text))
    if not removed:
        return text, []
    return json.dumps(clean, indent=2, ensure_ascii=False) + "\n", removed


def sanitize_file(rel: str, data: bytes) -> tuple[bytes, list[str]]:
    """A settings file of a backup (``config/...``) sanitised by its kind; the keys (paths in
    the document) removed.  Files of other kinds are returned as they are."""
    name = rel.rsplit("/", 1)[-1]
    if name.endswith((".yaml", ".yml")):
        sanitize = sanitize_yaml_text
    elif name.endswith(".json"):
        sanitize = sanitize_json_text
    elif name.endswith(".env") or name == ".env":
        sanitize = sanitize_env_text
    else:
        return data, []
    try:
        clean, removed = sanitize(data.decode())
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot sanitise {rel} ({reason}); export with --no-sanitize to keep it as it is") from None
    return (clean.encode() if removed else data), removed
