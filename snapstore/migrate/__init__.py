"""Moving an agent's rows between SQLite and PostgreSQL (Mirix's "Migration Between Systems")."""
