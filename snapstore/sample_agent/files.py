"""The non-database files of a sample agent: config, environment, logs.

They carry fake but realistic-looking secrets (all marked ``sample``) so that
sanitising can be demonstrated without ever touching a real key.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from . import text as t

CONFIG_NAME = "mirix.yaml"
ENV_NAME = ".env"
DB_NAME = "sqlite.db"
LOG_NAMES = ("agent.log", "security.log")


def _hex(rng: random.Random, nbytes: int) -> str:
    return f"{rng.getrandbits(8 * nbytes):0{2 * nbytes}x}"


def write_config(path: Path, rng: random.Random) -> None:
    path.write_text(f"""\
# Mirix agent configuration (generated sample agent)
agent_name: mirix
model_name: gemini-2.0-flash
embedding_model: text-embedding-004
embedding_dim: {t.ACTIVE_DIM}
database_url: sqlite:///{DB_NAME}
timezone: America/New_York
is_screen_monitor: false

llm_config:
  model: gemini-2.0-flash
  model_endpoint_type: google_ai
  model_endpoint: https://generativelanguage.googleapis.com
  context_window: 1000000
  api_key: sk-sample-{_hex(rng, 24)}

embedding_config:
  embedding_model: text-embedding-004
  embedding_endpoint_type: google_ai
  embedding_dim: {t.ACTIVE_DIM}
  embedding_chunk_size: 300

memory:
  core:
    - label: human
      limit: 5000
    - label: persona
      limit: 5000
  search_method: bm25
""")


def write_env(path: Path, rng: random.Random) -> None:
    path.write_text(f"""\
OPENAI_API_KEY=sk-sample-{_hex(rng, 24)}
GEMINI_API_KEY=AIzaSample{_hex(rng, 15)}
ANTHROPIC_API_KEY=sk-ant-sample-{_hex(rng, 20)}
MIRIX_PG_PASSWORD=sample-{_hex(rng, 8)}
MIRIX_PG_USER=mirix
MIRIX_LOG_LEVEL=INFO
MIRIX_DEBUG=false
MIRIX_TIMEZONE=America/New_York
""")


def _log_lines(rng: random.Random, count: int, events: list[str], logger: str) -> str:
    moment = t.HISTORY_START
    lines = []
    for _ in range(count):
        moment += timedelta(seconds=rng.randint(5, 3600))
        level = rng.choices(["INFO", "DEBUG", "WARNING", "ERROR"], weights=[70, 20, 8, 2])[0]
        event = rng.choice(events).format(
            id=t.new_id(rng, rng.choice(["ep_mem", "sem_item", "message"])),
            n=rng.randint(1, 40), ms=rng.randint(3, 2500), s=t.sentence(rng),
            ip=f"10.0.{rng.randint(0, 9)}.{rng.randint(2, 250)}",
        )
        lines.append(f"{_log_time(moment)} - {logger} - {level} - {event}")
    return "\n".join(lines) + "\n"


def _log_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}"


_AGENT_EVENTS = [
    "Inserted {id} after processing the conversation",
    "Retrieved {n} memories for query in {ms} ms",
    "Meta memory agent dispatched update to {n} memory agents",
    "LLM call finished in {ms} ms ({n} tool calls)",
    "Summarised context window: {s}",
    "Heartbeat requested by tool call; continuing step",
    "Embedding batch of {n} texts computed in {ms} ms",
]
_SECURITY_EVENTS = [
    "API key validated for provider=google_ai (key ending ...{n:02d}f3)",
    "Sanitised {n} secret-looking values from tool output",
    "Rejected request from {ip}: invalid session token",
    "Knowledge vault item {id} accessed with sensitivity=high",
    "Login from {ip} accepted",
    "Rate limit reached for {ip}; backing off {ms} ms",
]


def write_logs(directory: Path, rng: random.Random, scale: float) -> None:
    """A few hundred lines each; grows with the fourth root of scale (logs rotate)."""
    count = max(50, round(300 * scale ** 0.25))
    directory.mkdir(exist_ok=True)
    (directory / "agent.log").write_text(_log_lines(rng, count, _AGENT_EVENTS, "Mirix.agent"))
    (directory / "security.log").write_text(_log_lines(rng, count, _SECURITY_EVENTS, "Mirix.security"))
