"""One operation at a time, each on a state of a realistic size, with pytest-benchmark.

Each benchmark measures one call (the set-up is outside the timing), in CPU time (see
``conftest.py``), and pytest-benchmark keeps every run (``--benchmark-autosave``) and shows
the change against the previous one (``--benchmark-compare``). The states: an OR-Set of 1,000
elements, a task list of 100 tasks, a group holding 50 UTXOs.
"""

from __future__ import annotations

import itertools

import nacl.signing
import pytest
from blake3 import blake3

pytest.importorskip("pytest_benchmark", reason="the micro-benchmarks need pytest-benchmark (pip install -e '.[dev]')")

from implementations import pskt
from implementations import tasklist as tl
from implementations.ledger import Ledger, MultisigGroup
from implementations.lww import LWWRegister
from implementations.orset import DeltaORSet
from implementations.policy import Policy, PolicyEnforcer
from implementations.threshold_envelope import authenticate, decode_envelope, seal
from models.clock import NS_PER_MS, ManualClock

START_NS = 1_700_000_000 * 1_000_000_000
ELEMENTS = 1_000


# ----- OR-Set ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def orset_state() -> bytes:
    replica = DeltaORSet(1)
    for i in range(ELEMENTS):
        replica.add(f"element-{i}")
    for i in range(0, ELEMENTS, 4):
        replica.remove(f"element-{i}")
    return replica.state()


def test_orset_add(benchmark, orset_state):
    replica = DeltaORSet(2)
    replica.merge(orset_state)
    fresh = (f"new-{i}" for i in itertools.count())
    benchmark(lambda: replica.add(next(fresh)))


def test_orset_merge_full_state_into_empty(benchmark, orset_state):
    benchmark.pedantic(lambda replica: replica.merge(orset_state), setup=lambda: ((DeltaORSet(2),), {}), rounds=50)


def test_orset_apply_one_add_delta(benchmark, orset_state):
    source = DeltaORSet(3)
    source.add("late")
    (delta,) = source.take_deltas()
    replica = DeltaORSet(2)
    replica.merge(orset_state)
    benchmark(replica.apply_delta, delta)


# ----- LWW register ----------------------------------------------------------------------------

def test_lww_write(benchmark):
    clock = ManualClock(START_NS)
    register = LWWRegister(1, clock)
    values = itertools.count()

    def write() -> None:
        clock.advance(NS_PER_MS)
        register.write(next(values))

    benchmark(write)


def test_lww_merge(benchmark):
    clock = ManualClock(START_NS)
    theirs = LWWRegister(2, clock)
    theirs.write("theirs")
    state = theirs.state()
    mine = LWWRegister(1, clock)
    mine.write("mine")
    benchmark(mine.merge, state)


# ----- task list -------------------------------------------------------------------------------

LIST_ID = bytes(range(32))


@pytest.fixture
def tasklist() -> tl.TaskList:
    """A task list of 100 tasks, a third claimed, as the seed's targets are stated."""
    clock = ManualClock(START_NS)
    replica = tl.TaskList(LIST_ID, nacl.signing.SigningKey(bytes([1]) * 32), clock)
    for i in range(100):
        clock.advance(NS_PER_MS)
        task = replica.add_task(f"task {i}", "")
        if i % 3 == 0:
            replica.claim(task)
    replica.take_deltas()
    return replica


def test_tasklist_add_task(benchmark, tasklist):
    titles = (f"more {i}" for i in itertools.count())

    def add() -> None:
        tasklist.clock.advance(NS_PER_MS)
        tasklist.add_task(next(titles), "")

    benchmark(add)


def test_tasklist_claim(benchmark, tasklist):
    tasks = itertools.cycle(tasklist.order())

    def claim() -> None:
        tasklist.clock.advance(NS_PER_MS)
        tasklist.claim(next(tasks))

    benchmark(claim)


def test_tasklist_state(benchmark, tasklist):
    benchmark(tasklist.state)


def test_tasklist_merge(benchmark, tasklist):
    state = tasklist.state()
    other = tl.TaskList(LIST_ID, nacl.signing.SigningKey(bytes([2]) * 32), tasklist.clock)
    benchmark.pedantic(lambda: other.merge(state), rounds=20)


# ----- PSKT, threshold envelopes, policy --------------------------------------------------------

def test_pskt_build_template(benchmark):
    keys = [nacl.signing.SigningKey(blake3(b"micro" + bytes([i])).digest()) for i in range(3)]
    ledger = Ledger()
    address = ledger.add_group(MultisigGroup(2, tuple(k.verify_key.encode() for k in keys)))
    for _ in range(50):
        ledger.fund(address, 100_000_000)
    utxos = ledger.utxos_for(address, order_seed=7)
    event = pskt.Event("hyperlane", "micro", "kaspa:recipient", 20 * 100_000_000, (("reason", "bench"),), 0)
    benchmark(lambda: pskt.build_template(event, utxos, fee=2_000, fee_mode=pskt.Split(1, 1), change_address=address))


SENDER = nacl.signing.SigningKey(bytes([9]) * 32)
GROUP_ID = bytes(32)


def test_envelope_seal(benchmark):
    seq = itertools.count()
    benchmark(lambda: seal(SENDER, GROUP_ID, "session", next(seq), START_NS, b"p" * 200))


def test_envelope_open(benchmark):
    sealed = seal(SENDER, GROUP_ID, "session", 1, START_NS, b"p" * 200)
    benchmark(lambda: authenticate(decode_envelope(sealed), GROUP_ID))


def test_policy_submit(benchmark):
    enforcer = PolicyEnforcer(Policy(max_daily_volume=10**15), ManualClock(START_NS))
    requests = (f"request-{i}" for i in itertools.count())
    benchmark(lambda: enforcer.submit(next(requests), "kaspa:recipient", 1_000, reason="bench"))
    enforcer.close()
