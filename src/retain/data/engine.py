"""The process's DuckDB database: one per process, a fresh connection per use.

Opening a new in-memory database costs about 20 ms, which is the whole latency budget of scoring one
customer over HTTP; a cursor on a shared database costs microseconds. Each cursor has its own
registered tables and temporary tables, so concurrent callers (the service's threads) stay apart.
A forked child (a batch worker) opens its own database rather than share its parent's.
"""

from __future__ import annotations

import os
import threading

import duckdb

__all__ = ["connect"]

_lock = threading.Lock()
_database: tuple[int, duckdb.DuckDBPyConnection] | None = None


def connect() -> duckdb.DuckDBPyConnection:
    """A new connection to the process's in-memory database (UTC session, no progress bar)."""
    global _database
    with _lock:
        if _database is None or _database[0] != os.getpid():
            database = duckdb.connect()
            database.execute("SET GLOBAL TimeZone = 'UTC'")
            _database = (os.getpid(), database)
        cursor = _database[1].cursor()
    cursor.execute("SET enable_progress_bar = false")  # a session setting only
    return cursor
