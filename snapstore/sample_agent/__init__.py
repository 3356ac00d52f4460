"""A generated Mirix-compatible agent for demos, tests and benchmarks.

``create_sample_agent(DIR, scale, seed)`` writes ``mirix.yaml`` (with
``database_url: sqlite:///sqlite.db`` and a fake ``api_key``), ``.env`` with
fake secrets, ``logs/agent.log`` and ``logs/security.log``, and ``sqlite.db``:
a WAL-mode SQLite database with Mirix's tables (``block``, ``episodic_memory``,
``semantic_memory``, ``procedural_memory``, ``resource_memory``,
``knowledge_vault``, ``messages``, ``agents``, ``users``, ``organizations`` …),
random uuid ids, JSON columns, base64 float32 embeddings padded to 4096 dims
(about 85 % of the bytes) and FTS5 external-content tables kept by triggers.

Size is linear in ``scale``: about 5 MB per unit, so ``BENCHMARK_SCALE`` (200)
gives about 1 GB. ``mutate_agent`` applies "a day of use" and
``write_transactions`` is a steady writer for snapshot-while-writing tests.
"""
from .activity import MutationStats, check_write_invariant, mutate_agent, write_transactions
from .generate import BENCHMARK_SCALE, SampleAgentInfo, create_sample_agent
from .schema import EMBEDDING_COLUMNS, FTS_COLUMNS, MEMORY_TABLES
from .text import ACTIVE_DIM, EMBEDDING_DIM, decode_embedding

__all__ = [
    "ACTIVE_DIM", "BENCHMARK_SCALE", "EMBEDDING_COLUMNS", "EMBEDDING_DIM", "FTS_COLUMNS",
    "MEMORY_TABLES", "MutationStats", "SampleAgentInfo", "check_write_invariant",
    "create_sample_agent", "decode_embedding", "mutate_agent", "write_transactions",
]
