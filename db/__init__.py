"""PostgreSQL access: a per-process connection pool, numbered migrations, and one module of queries per table."""

from db.pool import Database, get_database

__all__ = ["Database", "get_database"]
