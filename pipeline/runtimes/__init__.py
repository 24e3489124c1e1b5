"""Runtimes: the embedded one (one process, SQLite) and the faust one (Kafka, PostgreSQL) drive the same handlers."""
