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

**One rule for every core that keeps state: an operation decides at its first commit.**
Everything an operation reads to decide (a replay check, "event already processed", the
volume left today) is read again inside that first transaction, never only before it, so
a second process writing between two of its transactions cannot invalidate a decision.
Later transactions of the same operation only carry out what the first one decided (e.g.
record the outcome of a submission), and a restarted core finishes them from the file. A
crash before the first commit loses the operation whole; a crash after it loses at most the
operation's answer. The harness models crashes and interleavings with this rule.

A component that is part of a larger operation (the policy enforcer inside a signer's
decision) joins its caller's transaction: ``store.transaction(join=True)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from blake3 import blake3

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
        if schema:
            self.declare(schema)

    def declare(self, schema: str) -> None:
        """Run idempotent ``CREATE ... IF NOT EXISTS`` statements (at opening, outside any
        transaction): each component sharing the file declares its own tables."""
        if self._depth:
            raise StorageError(f"{self.path}: declare the schema before any transaction, not inside one")
        self.db.executescript(schema)

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """Run one statement; a statement that writes must be inside ``transaction()``."""
        if self._depth == 0 and not _reads_only(sql):
            raise StorageError(f"{self.path}: a write outside a transaction: {sql.split()[0]} ...")
        return self.db.execute(sql, params)

    def _observe(self, point: str) -> None:
        if self.observer is not None:
            self.observer(point, self.commits + (point != "after-commit"))

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self, join: bool = False) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; ``ROLLBACK`` when the block raises anything.

        With ``join=True`` and a transaction of this store already open, the block is part
        of that transaction (it commits or rolls back with it); otherwise transactions do
        not nest."""
        if self._depth and join:
            yield
            return
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

    def tables(self) -> list[str]:
        """Every table of the file, by name."""
        return [r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]

    def digest(self) -> str:
        """A BLAKE3 digest of every row of every table, in a canonical order: equal digests
        mean equal contents (how a test shows that a refused message changed nothing)."""
        h = blake3()
        for table in self.tables():
            h.update(repr(("table", table)).encode())
            for row in sorted(self.db.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr):
                h.update(repr(row).encode())
        return h.hexdigest()

    def close(self) -> None:
        self.db.close()


def _reads_only(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in {"SELECT", "WITH", "PRAGMA", "EXPLAIN"}

