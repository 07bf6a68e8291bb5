"""The OR-Set machine catches realistic bugs, each with a short trace.

The bugs are the catalogue's (``tests/bugs/orset.py``): each is planted for the length of one
search, which runs with the budget measured for it under ten seeds (``tests/bugs/budgets.json``,
``python -m tests.bugs.sweep``), and must end in a short trace that fails with the bug and
passes without it. The committed regression traces each catch their bug by replay alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Implementation, load_trace, replay
from machines.orset import ORSetMachine
from tests.bugs.hunt import assert_caught, robust
from tests.bugs.orset import (
    BelievesEveryContext,
    BelievesEveryTag,
    CountsOnlyItsOwnAdds,
    JoinIgnoresContext,
    RemoveKillsUnobserved,
    TimestampTags,
    TombstonesReplaced,
)

BUGS = robust("orset")


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_orset_machine_catches(bug):
    assert_caught(bug)


# ----- the committed regression traces each catch their bug ---------------------------------

REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"
GUARDS = [
    ("orset-old-add-resurrects-removed-element", lambda i, clock: JoinIgnoresContext(i)),
    ("orset-same-millisecond-adds-are-distinct", TimestampTags),
    ("orset-remove-spares-unobserved-add", lambda i, clock: RemoveKillsUnobserved(i)),
    ("orset-tombstones-from-two-replicas-add-up", lambda i, clock: TombstonesReplaced(i)),
    ("orset-own-counter-at-max-poisons-adds", lambda i, clock: BelievesEveryContext(i)),
    ("orset-own-counter-at-max-poisons-adds", lambda i, clock: BelievesEveryTag(i)),
    ("orset-own-dots-ahead-hide-own-adds", lambda i, clock: CountsOnlyItsOwnAdds(i)),
]


@pytest.mark.parametrize(("name", "make_replica"), GUARDS, ids=[f"{name}-{n}" for n, (name, _) in enumerate(GUARDS)])
def test_committed_regression_trace_fails_against_its_bug(name, make_replica):
    trace = load_trace(REGRESSIONS / f"{name}.json")
    outcome = replay(trace, ORSetMachine, Implementation("orset", f"bug-{name}", make_replica))
    assert outcome.status == "failed", outcome
