"""harness.faults: crash points and interleavings at the storage seam, on a bare Store."""

from __future__ import annotations

import pytest

from harness import faults
from implementations.storage import Store

SCHEMA = "CREATE TABLE IF NOT EXISTS t (a INTEGER);"


def _two_commits(store: Store):
    def operation():
        for value in (1, 2):
            with store.transaction():
                store.execute("INSERT INTO t VALUES (?)", (value,))
        return "done"

    return operation


def _rows(path) -> list[int]:
    store = Store(path)
    try:
        return [r[0] for r in store.execute("SELECT a FROM t ORDER BY a")]
    finally:
        store.close()


@pytest.mark.parametrize(("when", "commit", "durable"), [("before", 1, []), ("after", 1, [1]), ("before", 2, [1]),
                                                          ("after", 2, [1, 2]), ("start", 1, []), ("start", 2, [1])])
def test_a_crash_point_keeps_exactly_the_commits_before_it(tmp_path, when, commit, durable):
    path = str(tmp_path / "a.db")
    store = Store(path, SCHEMA)
    run = faults.run_operation(store, _two_commits(store), crash=faults.CrashPoint(when, commit))
    store.close()
    assert run.crashed and run.commits == len(durable)
    assert run.took_effect == bool(durable)
    assert _rows(path) == durable


def test_a_crash_at_the_start_of_a_transaction_fires_only_in_an_operation_that_reaches_it(tmp_path):
    """``start`` k waits for an operation with a k-th transaction (where ``after`` k-1 fires in
    any operation that commits): the one-commit operation runs whole, the crash stays unfired."""
    path = str(tmp_path / "a.db")
    store = Store(path, SCHEMA)

    def one_commit():
        with store.transaction():
            store.execute("INSERT INTO t VALUES (7)")

    point = faults.CrashPoint("start", 2)
    assert not faults.run_operation(store, one_commit, crash=point).crashed
    run = faults.run_operation(store, _two_commits(store), crash=point)
    store.close()
    assert run.crashed and run.commits == 1 and _rows(path) == [1, 7]


def test_a_crash_point_beyond_the_operation_does_not_fire_and_the_observer_is_restored(tmp_path):
    store = Store(str(tmp_path / "a.db"), SCHEMA)
    store.observer = sentinel = lambda point, commit: None
    run = faults.run_operation(store, _two_commits(store), crash=faults.CrashPoint("after", 3))
    assert (run.crashed, run.commits, run.value()) == (False, 2, "done")
    assert store.observer is sentinel


@pytest.mark.parametrize(("boundary", "seen_by_other", "other_first"), [(1, [], True), (2, [1], False), (3, [1, 2], False)])
def test_the_other_instance_runs_at_a_boundary_and_sees_the_commits_before_it(tmp_path, boundary, seen_by_other, other_first):
    path = str(tmp_path / "a.db")
    first, second = Store(path, SCHEMA), Store(path)
    run = faults.run_operation(first, _two_commits(first), boundary=boundary,
                               other=lambda: [r[0] for r in second.execute("SELECT a FROM t ORDER BY a")])
    assert run.other.value() == seen_by_other
    assert run.other_first == other_first
    assert run.other_at == (None if boundary == 3 else boundary - 1)


def test_an_operation_refusal_is_data_not_a_crash(tmp_path):
    store = Store(str(tmp_path / "a.db"), SCHEMA)

    def refuses():
        with store.transaction():
            store.execute("INSERT INTO t VALUES (1)")
            raise ValueError("no")

    run = faults.run_operation(store, refuses, crash=faults.CrashPoint("after", 1))
    assert not run.crashed and isinstance(run.error, ValueError) and run.commits == 0
    with pytest.raises(ValueError):
        faults.CrashPoint("during", 1)


def test_store_directory_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MBT_STORE_DIR", str(tmp_path / "stores"))
    assert faults.store_directory() == str(tmp_path / "stores")
    assert (tmp_path / "stores").is_dir()
