"""What every SQLite-backed core shares: one write transaction at a time.

``write_transaction(db)`` is ``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the
block raises. ``IMMEDIATE`` takes the write lock before anything is read, so a check and
the write it guards (a volume reservation, a recorded answer) cannot be interleaved with
another connection's, in this process or another one sharing the file. Connections must be
opened with ``isolation_level=None`` (autocommit), so these statements are the only
transaction control.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
