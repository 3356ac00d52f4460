"""snapstore: content-addressed, deduplicated, incremental snapshots of AI-agent memory."""
__version__ = "0.1.0"
