"""PostgreSQL as an agent database: capture (capture.py) and the stored snapshot's reader (reader.py)."""
