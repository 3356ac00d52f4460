"""Secrets never leave the agent; harmless settings do, and the report names what was removed."""
from __future__ import annotations

from snapstore.sanitize import MARKER, agent_environment, sanitize_config, sanitize_env, sanitize_yaml_text


def test_env_secrets_replaced_and_named():
    text = "OPENAI_API_KEY=sk-abc123\nMIRIX_PG_PASSWORD='hunter2'\nMIRIX_LOG_LEVEL=INFO\n# comment\nexport HF_TOKEN=hf_x\n"
    clean, removed = sanitize_env(agent_environment(text, environ={}))
    assert "sk-abc123" not in clean and "hunter2" not in clean and "hf_x" not in clean
    assert "MIRIX_LOG_LEVEL=INFO" in clean
    assert f"OPENAI_API_KEY={MARKER}" in clean
    assert sorted(removed) == ["HF_TOKEN", "MIRIX_PG_PASSWORD", "OPENAI_API_KEY"]


def test_process_environment_is_filtered_by_prefix():
    pairs = agent_environment(None, environ={"MIRIX_DIR": "/x", "HOME": "/root", "GEMINI_API_KEY": "AIzaX"})
    clean, removed = sanitize_env(pairs)
    assert "HOME" not in clean and "MIRIX_DIR=/x" in clean and removed == ["GEMINI_API_KEY"]


def test_secret_looking_values_are_caught_under_innocent_keys():
    clean, removed = sanitize_env([("MIRIX_PG_URI", "postgresql://u:pw@db/mirix"), ("MIRIX_X", "plain")])
    assert "pw@" not in clean and removed == ["MIRIX_PG_URI"]


def test_nested_config_sanitised_without_touching_numbers():
    doc = {"agent_name": "a", "model": {"api_key": "sk-1", "max_tokens": 4096}, "keys": [{"token": "t"}]}
    clean, removed = sanitize_config(doc)
    assert clean["model"] == {"api_key": MARKER, "max_tokens": 4096}
    assert clean["keys"][0]["token"] == MARKER
    assert removed == ["model.api_key", "keys[0].token"]
    text, removed_yaml = sanitize_yaml_text("agent_name: a\napi_key: sk-2\n")
    assert "sk-2" not in text and removed_yaml == ["api_key"]


def test_yaml_secrets_are_redacted_in_place_keeping_every_other_byte():
    text = ("# Mirix agent configuration\r\n"
            "agent_name: helper   # shown in the UI\r\n"
            "\r\n"
            "llm_config:\r\n"
            "  model: gemini-2.0-flash\r\n"
            "  api_key: \"sk-abc123\"   # rotate monthly\r\n"
            "  tokens: [1, 2]\r\n"
            "database_url: postgresql://mirix:pw@db/mirix\r\n"
            "empty_password:\r\n")
    clean, removed = sanitize_yaml_text(text)
    assert removed == ["llm_config.api_key", "database_url"]
    assert clean == text.replace('"sk-abc123"', f"'{MARKER}'").replace("postgresql://mirix:pw@db/mirix", f"'{MARKER}'")
    assert sanitize_yaml_text("a: 1  # nothing secret\n") == ("a: 1  # nothing secret\n", [])


def test_yaml_the_in_place_edit_cannot_express_is_redacted_by_rewriting():
    text = "creds: &c {password: hunter2}\nother: *c\nlist:\n  - token: >\n      folded\n      secret\n"
    clean, removed = sanitize_yaml_text(text)
    import yaml

    doc = yaml.safe_load(clean)
    assert "hunter2" not in clean and "folded" not in clean
    assert doc["creds"]["password"] == MARKER and doc["list"][0]["token"] == MARKER
