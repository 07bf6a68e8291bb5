"""The one seam through which every durable write goes: a SQLite file and its transactions.

A core that keeps state (the policy enforcer, a signer, a coordinator, a node) opens its
file through ``Store`` and makes every write inside ``store.transaction()``::

    store = Store("signer.db", schema=SCHEMA)
    with store.transaction():            # BEGIN IMMEDIATE ... COMMIT (ROLLBACK if it raises)
        store.execute("INSERT ...", (...))
    row = store.execute("SELECT ...").fetchone()   # reads need no transaction

``BEGIN IMMEDIATE`` takes the write lock before anything is read, so a check and the write
it guards cannot be interleaved with another connection's, in this process or in another
one sharing the file. A write outside ``transaction()`` is refused (``StorageError``): every
commit passes through the seam, so every commit can be observed.

Durability is stated here, not inherited from SQLite's defaults (file stores only):

* ``journal_mode=WAL``: a reader never blocks the writer of another process, and a crash at
  any instant leaves the file at its last committed transaction.
* ``synchronous=FULL``: ``COMMIT`` returns only once the log is on disk, so an operation
  acknowledged after its commit survives a power cut as well as a crash. (``NORMAL`` in WAL
  mode may lose the last commits on power loss: acceptable for a cache, not for a signer's
  record of what it signed.)
* ``busy_timeout``: a second process waits at most ``BUSY_TIMEOUT_MS`` for the write lock,
  then gets "database is locked": every wait is bounded.

**Observation points.** ``store.observer``, when set, is called with ``(point, commit)`` at
three points of every transaction: ``"begin"`` (before ``BEGIN``: no transaction of this
store is open, a transaction *boundary*), ``"before-commit"`` (the writes are done, not yet
committed) and ``"after-commit"``; ``commit`` counts this store's commits from 1. The test
harness uses them to crash a core in the middle of an operation and to run another
process's operation between two transactions of this one (``harness.faults``).
Implementations never set it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: How long a connection waits for another connection's write lock before giving up.
BUSY_TIMEOUT_MS = 5_000

Observer = Callable[[str, int], None]


class StorageError(RuntimeError):
    """A misuse of the storage seam (a write outside a transaction, a nested transaction)."""


class Store:
    """One SQLite file (or ``":memory:"``) with its durability settings and its transactions."""

    def __init__(self, path: str, schema: str = "") -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: our statements are the only control
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if path != ":memory:":
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"{path}: SQLite refused write-ahead logging (journal mode {mode!r})")
        self.db.execute("PRAGMA synchronous = FULL")
        self.observer: Observer | None = None
        self.commits = 0
        self._depth = 0
        if schema:  # idempotent CREATE ... IF NOT EXISTS statements, run once at opening
            self.db.executescript(schema)

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """Run one statement; a statement that writes must be inside ``transaction()``."""
        if self._depth == 0 and not _reads_only(sql):
            raise StorageError(f"{self.path}: a write outside a transaction: {sql.split()[0]} ...")
        return self.db.execute(sql, params)

    def _observe(self, point: str) -> None:
        if self.observer is not None:
            self.observer(point, self.commits + (point != "after-commit"))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; ``ROLLBACK`` when the block raises anything."""
        if self._depth:
            raise StorageError(f"{self.path}: transactions do not nest")
        self._observe("begin")
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            self._observe("before-commit")
        except BaseException:
            self._depth = 0
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        self._depth = 0
        self.commits += 1
        self._observe("after-commit")

    def close(self) -> None:
        self.db.close()


def _reads_only(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in {"SELECT", "WITH", "PRAGMA", "EXPLAIN"}


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """The old form of ``Store.transaction`` for a bare connection (being retired: use ``Store``)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
