"""The README's adapter guide for other languages and other kinds of library, as tests.

* A user checks an OR-Set written in JavaScript by writing only that program
  (``examples/node_orset.mjs``, Node.js alone) and one registration line
  (``examples/my_node_orset.py``).
* An operation-based library (``examples/op_orset.py``) is adapted by delivering its
  operations causally and merging by replaying the other replica's history.
* The law tests in ``tests/`` run against your own adapter, named in ``MBT_ADAPTERS``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from hypothesis import settings

from examples.my_node_orset import NODE_ORSET
from examples.op_orset import OP_ORSET
from harness import run_machine
from machines.orset import ORSetMachine

ROOT = Path(__file__).resolve().parent.parent
CI = settings(settings.get_profile("ci"), max_examples=100)


def test_the_guide_example_in_javascript_is_one_program_and_one_line():
    registration = (ROOT / "examples" / "my_node_orset.py").read_text()
    assert registration.count("register(") == 1
    stats = run_machine(ORSetMachine, NODE_ORSET, hypothesis_settings=CI)  # skipped with the reason without node
    assert stats.never_ran() == []
    assert NODE_ORSET.make_replica.host.started == 1


def test_an_operation_based_library_passes_at_add_wins():
    stats = run_machine(ORSetMachine, OP_ORSET, hypothesis_settings=CI)
    assert stats.never_ran() == []


#: Replica 0 adds a, broadcasts it, adds b, and sends b's operation to replica 1 first.
SECOND_ADD_FIRST = (
    ("start", {"replicas": 2, "skews_ns": [0, 0]}),
    ("add", {"replica": 0, "element": "a"}),
    ("broadcast", {"source": 0}),
    ("add", {"replica": 0, "element": "b"}),
    ("send_delta", {"source": 0, "target": 1}),
    ("sync_all", {}),
)


def test_an_operation_based_library_is_not_exact_it_holds_operations_back():
    """b's operation depends on a's, so replica 1 holds it back; the OR-Set model shows b."""
    from harness import Step, Trace, replay

    trace = Trace("orset", "op-orset", tuple(Step(rule, args) for rule, args in SECOND_ADD_FIRST))
    assert replay(trace, ORSetMachine, OP_ORSET).status == "passed"
    outcome = replay(trace, ORSetMachine, attrs.evolve(OP_ORSET, level="exact"))
    assert (outcome.status, outcome.step) == ("failed", 4), outcome
    assert "replica 1 has frozenset(), the model says frozenset({'b'})" in outcome.message


def test_the_law_tests_run_against_your_own_adapter():
    env = {**os.environ, "MBT_ADAPTERS": "examples.op_orset"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_orset_laws.py", "-k", "op-orset", "-q", "-p", "no:cacheprovider",
         "--hypothesis-profile=ci"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "deselected" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("bad", [b"", b"{", b'{"kind": "add"}', b"[1, 2]", "text"])
def test_the_operation_based_adapter_refuses_bad_bytes_whole(bad):
    from implementations.wire import DecodeError
    from models.clock import ManualClock

    replica = OP_ORSET.make_replica(0, ManualClock(0))
    replica.add("a")
    before = (replica.value(), replica.state())
    with pytest.raises(DecodeError):
        replica.apply_delta(bad)
    with pytest.raises(DecodeError):
        replica.merge(bad)
    assert (replica.value(), replica.state()) == before
