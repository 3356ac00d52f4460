"""Secrets never leave the agent; harmless settings do, and the report names what was removed."""
from __future__ import annotations

import json

import pytest

from snapstore.errors import UsageError
from snapstore.sanitize import MARKER, redacted, sanitize_config, sanitize_env_text, sanitize_file, sanitize_yaml_text


def test_env_secrets_replaced_in_place_and_named():
    text = ("OPENAI_API_KEY=sk-abc123\r\nMIRIX_PG_PASSWORD='hunter2'\nMIRIX_LOG_LEVEL=INFO\n# comment: TOKEN=x\n"
            "\nexport HF_TOKEN=hf_x\nEMPTY_TOKEN=\n")
    clean, removed = sanitize_env_text(text)
    assert clean == (f"OPENAI_API_KEY={MARKER}\r\nMIRIX_PG_PASSWORD='{MARKER}'\nMIRIX_LOG_LEVEL=INFO\n"
                     f"# comment: TOKEN=x\n\nexport HF_TOKEN={MARKER}\nEMPTY_TOKEN=\n")
    assert removed == ["OPENAI_API_KEY", "MIRIX_PG_PASSWORD", "HF_TOKEN"]
    assert sanitize_env_text(clean) == (clean, [])  # a sanitised file has nothing left to remove


def test_secret_looking_values_are_caught_under_innocent_keys():
    clean, removed = sanitize_env_text("MIRIX_PG_URI=postgresql://u:pw@db/mirix\nMIRIX_X=plain\nK2=ghp_abc\n")
    assert clean == f"MIRIX_PG_URI=postgresql://u:{MARKER}@db/mirix\nMIRIX_X=plain\nK2={MARKER}\n"
    assert removed == ["MIRIX_PG_URI", "K2"]


@pytest.mark.parametrize("value, expected", [
    ("postgresql://mirix:s3cret@db:5432/mirix", f"postgresql://mirix:{MARKER}@db:5432/mirix"),
    ("postgresql+psycopg://:s3cret@db/mirix", f"postgresql+psycopg://:{MARKER}@db/mirix"),
    ("host=db port=5432 password=s3cret dbname=m", f"host=db port=5432 password={MARKER} dbname=m"),
    ("Server=db;Pwd=s3cret;Database=m", f"Server=db;Pwd={MARKER};Database=m"),
    ("host=db password='s3 cret' dbname=m", f"host=db password={MARKER} dbname=m"),
    ("postgresql://mirix@db/mirix", None),
    ("sqlite:///sqlite.db", None),
    ("https://example.org/a:b@c", None),
])
def test_connection_strings_lose_only_their_password(value, expected):
    assert redacted("database_url", value) == expected


def test_a_secret_key_redacts_any_value_but_not_nothing():
    assert redacted("pg_password", 12345) == MARKER and redacted("api_key", "x") == MARKER
    assert redacted("api_key", None) is None and redacted("api_key", "") is None
    assert redacted("api_key", MARKER) is None and redacted("max_tokens", 4096) is None


def test_json_and_unknown_files():
    text = json.dumps({"agent_name": "a", "llm_config": {"api_key": "sk-9", "model": "m"}}, indent=4)
    clean, removed = sanitize_file("config/agent_config.json", text.encode())
    assert json.loads(clean) == {"agent_name": "a", "llm_config": {"api_key": MARKER, "model": "m"}}
    assert removed == ["llm_config.api_key"]
    plain = json.dumps({"agent_name": "a"}, indent=4).encode()
    assert sanitize_file("config/agent_config.json", plain) == (plain, [])  # bytes kept as they were
    assert sanitize_file("config/notes.txt", b"api_key=sk-1") == (b"api_key=sk-1", [])
    with pytest.raises(UsageError, match="config/agent_config.json.*--no-sanitize"):
        sanitize_file("config/agent_config.json", b"{not json")


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
            "pg_password: 12345\r\n"
            "empty_password:\r\n")
    clean, removed = sanitize_yaml_text(text)
    assert removed == ["llm_config.api_key", "database_url", "pg_password"]
    assert clean == (text.replace('"sk-abc123"', f"'{MARKER}'").replace("12345", f"'{MARKER}'")
                     .replace("postgresql://mirix:pw@db/mirix", f"'postgresql://mirix:{MARKER}@db/mirix'"))
    assert sanitize_yaml_text("a: 1  # nothing secret\n") == ("a: 1  # nothing secret\n", [])


def test_yaml_the_in_place_edit_cannot_express_is_redacted_by_rewriting():
    text = "creds: &c {password: hunter2}\nother: *c\nlist:\n  - token: >\n      folded\n      secret\n"
    clean, removed = sanitize_yaml_text(text)
    import yaml

    doc = yaml.safe_load(clean)
    assert "hunter2" not in clean and "folded" not in clean
    assert doc["creds"]["password"] == MARKER and doc["list"][0]["token"] == MARKER
