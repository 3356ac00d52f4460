"""A repository's life: which snapshots a policy keeps (policy.py), removing the others
(forget.py), what changed between snapshots (diff/), space over time (stats.py) and
running backups on a schedule (schedule.py)."""
