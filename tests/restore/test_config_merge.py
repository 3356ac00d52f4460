"""Merging a sanitised backup config into the live one: every redaction marker, whole values
and connection-string passwords alike, keeps the live value."""
from __future__ import annotations

from snapstore.restore.config_merge import merge_config
from snapstore.sanitize import MARKER, sanitize_config


def test_markers_of_both_kinds_keep_the_current_values():
    live = {"agent_name": "a", "llm_config": {"api_key": "sk-live", "model": "old"},
            "cache_url": "redis://app:live-pw@cache:6379/0", "token": "t-live"}
    backup, removed = sanitize_config({"agent_name": "a", "llm_config": {"api_key": "sk-old", "model": "new"},
                                       "cache_url": "redis://app:old-pw@cache:6379/0", "token": "t-old"})
    assert backup["cache_url"] == f"redis://app:{MARKER}@cache:6379/0"
    assert sorted(removed) == ["cache_url", "llm_config.api_key", "token"]
    merged, missing = merge_config(backup, live)
    assert merged == {"agent_name": "a", "llm_config": {"api_key": "sk-live", "model": "new"},
                      "cache_url": "redis://app:live-pw@cache:6379/0", "token": "t-live"}
    assert missing == []


def test_markers_without_a_current_value_are_reported():
    merged, missing = merge_config({"cache_url": f"redis://app:{MARKER}@cache/0", "api_key": MARKER},
                                   {"cache_url": f"redis://app:{MARKER}@cache/0"})
    assert merged == {"cache_url": f"redis://app:{MARKER}@cache/0", "api_key": MARKER}
    assert missing == ["cache_url", "api_key"]
