"""The storage seam: durability stated, writes only inside transactions, commits observable."""

from __future__ import annotations

import pytest

from implementations.storage import StorageError, Store


class Crash(BaseException):
    pass


def test_durability_is_stated_not_inherited(tmp_path):
    store = Store(str(tmp_path / "a.db"))
    assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    store.close()


def test_a_write_outside_a_transaction_is_refused_and_changes_nothing(tmp_path):
    store = Store(str(tmp_path / "a.db"), "CREATE TABLE IF NOT EXISTS t (a INTEGER);")
    with pytest.raises(StorageError, match="outside a transaction"):
        store.execute("INSERT INTO t VALUES (1)")
    assert store.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    with pytest.raises(StorageError, match="do not nest"), store.transaction(), store.transaction():
        pass


def test_observer_sees_every_boundary_and_a_crash_before_commit_loses_the_transaction(tmp_path):
    path = str(tmp_path / "a.db")
    store = Store(path, "CREATE TABLE IF NOT EXISTS t (a INTEGER);")
    seen = []
    store.observer = lambda point, commit: seen.append((point, commit))
    with store.transaction():
        store.execute("INSERT INTO t VALUES (1)")
    assert seen == [("begin", 1), ("before-commit", 1), ("after-commit", 1)]

    def crash_before_commit(point, commit):
        if point == "before-commit":
            raise Crash

    store.observer = crash_before_commit
    with pytest.raises(Crash), store.transaction():
        store.execute("INSERT INTO t VALUES (2)")
    store.close()
    reopened = Store(path)
    assert reopened.execute("SELECT a FROM t").fetchall() == [(1,)]
    reopened.close()
