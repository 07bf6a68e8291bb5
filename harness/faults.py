"""Faults at the storage seam: crashes inside an operation, and a second process between
two of its transactions.

Every durable write of a core goes through ``implementations.storage.Store``, which calls
its ``observer`` at every transaction boundary (``"begin"``), just before a commit
(``"before-commit"``) and just after it (``"after-commit"``). A machine uses that to say,
as plain data in its trace:

* **"crash before (or after) the k-th commit of the next operation of core X"**
  (``CrashPoint``): the observer raises ``Crash`` (a ``BaseException``, so no
  ``except Exception`` in a core can swallow it). Before a commit, the store rolls the
  transaction back, as a killed process's file would; after it, the commit is durable. The
  machine then throws the in-memory object away and opens a new one on the same file.
* **"run operation Y on instance B at the k-th transaction boundary of operation X on
  instance A"**: two instances of one core on one file, as two processes would be. At a
  boundary A holds no transaction, so B's whole operation runs there synchronously (no
  lock is waited for, nothing is threaded, the run is deterministic) and Hypothesis shrinks
  the interleaving like any other argument.

``run_operation`` carries out one operation under such faults and says what happened
(``Run``). How a machine turns that into a prediction rests on the rule every core follows
(``implementations.storage``): **an operation decides at its first commit**. So:

* a crash before the first commit loses the operation whole (``Run.took_effect`` false);
  a crash at or after it keeps the operation's decision, and loses at most its answer (a
  restarted core finishes the rest from its file);
* an operation B run at a boundary before A's first commit is ordered before A
  (``Run.other_first``); run at a later boundary, or after A, it is ordered after A.

``store_directory()`` says where machines keep their SQLite files: a RAM file system in
``dev`` and ``ci`` (fast; a crash is simulated anyway), the real disk in ``nightly``
(``MBT_STORE_DIR`` overrides both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs

from harness import profiles

#: Where a crash point sits relative to its commit.
WHEN = ("before", "after")
#: ... or at the start of the k-th transaction, before it does anything: it fires only in an
#: operation that reaches a k-th transaction (with k = 2, a coordinator's delivery that decided
#: and is about to submit), where "after the (k-1)-th commit" fires in any operation that commits.
START = "start"
#: The points at which a store calls its observer, in the order of one transaction.
POINTS = ("begin", "before-commit", "after-commit")


class Crash(BaseException):
    """A simulated process death at an observation point of a store."""


@attrs.frozen
class CrashPoint:
    """Crash just before (or just after) the ``commit``-th commit of the next operation, or at
    the start of its ``commit``-th transaction (``START``)."""

    when: str
    commit: int

    def __attrs_post_init__(self) -> None:
        if self.when not in (*WHEN, START) or not isinstance(self.commit, int) or self.commit < 1:
            raise ValueError(f"a crash point is before/after the k-th commit or at the start of the k-th transaction "
                             f"(k >= 1), not {self.when!r} {self.commit!r}")

    def __str__(self) -> str:
        return f"crash {self.when} commit {self.commit}"


@attrs.define
class Run:
    """What happened to one operation run by ``run_operation``.

    ``result`` is what it returned and ``error`` what it raised (never a ``Crash``);
    ``crashed`` says the crash point fired; ``commits`` counts its durable commits;
    ``other`` is the interleaved operation's own ``Run`` and ``other_at`` how many commits
    this operation had made when it ran (``None``: it ran after this operation ended).
    """

    result: Any = None
    error: Exception | None = None
    crashed: bool = False
    commits: int = 0
    other: Run | None = None
    other_at: int | None = None

    @property
    def took_effect(self) -> bool:
        """The operation decided (it reached its first commit), whether it crashed or not.
        An operation that writes nothing at all has nothing to lose."""
        return not self.crashed or self.commits >= 1

    @property
    def other_first(self) -> bool:
        """The interleaved operation is ordered before this one (it ran before our first commit)."""
        return self.other is not None and self.other_at == 0

    def value(self) -> Any:
        """The result, or the operation's own exception raised again."""
        if self.error is not None:
            raise self.error
        return self.result


def _attempt(operation: Callable[[], Any]) -> Run:
    try:
        return Run(result=operation())
    except Exception as error:  # the operation's own refusal: data for the machine
        return Run(error=error)


class _Watch:
    """The observer installed on a store for exactly one operation."""

    def __init__(self, base: int, crash: CrashPoint | None, boundary: int | None, other: Callable[[], Any] | None) -> None:
        self.base, self.crash, self.boundary, self.other = base, crash, boundary, other
        self.boundaries = 0
        self.commits = 0
        self.other_run: Run | None = None
        self.other_at: int | None = None

    def __call__(self, point: str, commit: int) -> None:
        # The store numbers its commits from 1: "begin" and "before-commit" carry the number of the
        # commit to come, "after-commit" that of the commit just made (implementations.storage). A
        # point or a number off by one would move every crash and interleaving the trace names.
        expected = self.base + self.commits + 1
        assert point in POINTS and commit == expected, (
            f"the store observed {point!r} at commit {commit}: expected one of {POINTS} at commit {expected}")
        if point == "begin":
            if self.crash is not None and self.crash.when == START and commit - self.base == self.crash.commit:
                raise Crash(str(self.crash))
            self.boundaries += 1
            if self.other is not None and self.other_run is None and self.boundaries == self.boundary:
                self.other_at = self.commits
                self.other_run = _attempt(self.other)
        elif point == "before-commit":
            if self.crash is not None and self.crash.when == "before" and commit - self.base == self.crash.commit:
                raise Crash(str(self.crash))
        elif point == "after-commit":
            self.commits = commit - self.base
            if self.crash is not None and self.crash.when == "after" and self.commits == self.crash.commit:
                raise Crash(str(self.crash))


def run_operation(
    store: Any,
    operation: Callable[[], Any],
    *,
    crash: CrashPoint | None = None,
    boundary: int | None = None,
    other: Callable[[], Any] | None = None,
) -> Run:
    """Run ``operation`` of the core whose ``implementations.storage.Store`` is ``store``.

    ``crash``: fire this crash point during it (if it makes that many commits). ``other``:
    run this operation (of another instance on the same file) at the ``boundary``-th
    transaction boundary of ``operation``, or after it if it has fewer boundaries. The
    store's own observer is restored afterwards. After a crash the caller must throw the
    core away and open a new one on the same file.
    """
    if other is not None and (not isinstance(boundary, int) or boundary < 1):
        raise ValueError(f"an interleaved operation runs at a boundary k >= 1, not {boundary!r}")
    watch = _Watch(store.commits, crash, boundary, other)
    previous, store.observer = store.observer, watch
    try:
        run = _attempt(operation)
    except Crash:
        run = Run(crashed=True)
    finally:
        store.observer = previous
    run.commits = watch.commits
    if other is not None:
        run.other, run.other_at = (watch.other_run, watch.other_at) if watch.other_run else (_attempt(other), None)
    return run


def store_directory() -> str | None:
    """The directory for machines' SQLite files (``None``: the system's temporary directory).

    ``MBT_STORE_DIR`` if set; under the ``nightly`` profile the real disk (the system's
    temporary directory), so ``synchronous=FULL`` meets a real fsync; otherwise ``/dev/shm``
    where it is writable: SQLite syncs every commit, and on a busy disk that costs tens of
    milliseconds a step, while a crash in a machine is simulated at the seam anyway.
    """
    chosen = os.environ.get("MBT_STORE_DIR")
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        return chosen
    if profiles.current_profile() == "nightly":
        return None
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
