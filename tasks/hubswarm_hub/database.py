"""The hub's SQLite database, written without an fsync per commit."""

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine


def write_ahead(dbapi_connection, _record):
    """WAL journal, synced at checkpoints only (the durable-enough setting SQLite's docs give
    for WAL). The hub commits on its one event loop (every spawn, stop and activity update):
    an fsync per commit there made a class's logins wait seconds. A crash of the machine may
    lose the last commits, never the database's consistency."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def use_write_ahead_log():
    """Every SQLite connection the hub opens from now on uses :func:`write_ahead`."""
    if not event.contains(Engine, "connect", write_ahead):
        event.listen(Engine, "connect", write_ahead)
