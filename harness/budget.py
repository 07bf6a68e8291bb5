"""One wall-clock budget for a whole command, shared by the machine runs it makes.

Under a budgeted profile (``nightly``) ``MBT_BUDGET_SECONDS`` is the time of the whole
``pytest`` command, not of each machine: at the start of the session ``plan`` learns how
many machine runs (machine x implementation) were collected, and each run, when its turn
comes, gets an even share of what remains for the runs still to come (``next_deadline``).
A run that ends early (a failure, a machine that finds nothing more) leaves its time to the
others; one that ends late (its last step, then shrinking and writing a trace) takes it
from them, so the command as a whole overruns by at most the last run's last example.

Without a plan (a run outside pytest, or a test calling ``run_machine`` itself) a run gets
the whole budget; a run beyond the plan gets what remains.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Budget:
    def __init__(self, seconds: float, runs: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.end = clock() + seconds
        self.runs_left = max(runs, 1)

    def next_deadline(self) -> float:
        """The deadline of the next run: now plus an even share of what remains."""
        now = self.clock()
        share = max(0.0, self.end - now) / max(self.runs_left, 1)
        self.runs_left = max(self.runs_left - 1, 0)
        return now + share


_session: Budget | None = None


def plan(seconds: float, runs: int, clock: Callable[[], float] = time.monotonic) -> Budget:
    """Start the session's budget: ``seconds`` for ``runs`` machine runs."""
    global _session
    _session = Budget(seconds, runs, clock)
    return _session


def next_deadline(seconds: float) -> float:
    """The deadline of the next run of this session (of ``seconds`` alone without a plan)."""
    if _session is None:
        return Budget(seconds, 1).next_deadline()
    return _session.next_deadline()


def clock() -> Callable[[], float]:
    """The clock deadlines are measured on (the session's, if planned)."""
    return _session.clock if _session is not None else time.monotonic


def reset() -> None:
    global _session
    _session = None
