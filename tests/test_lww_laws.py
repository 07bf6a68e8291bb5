"""LWW register: merge laws for every registered implementation, the hybrid logical clock
against the model's timestamp rule, and wire robustness (bad bytes change nothing)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import implementations
from harness.laws import check_delta_idempotence, check_merge_laws
from harness.runner import capped_settings
from implementations.limits import MAX_CLOCK_AHEAD_NS, MAX_HLC_COUNTER
from implementations.lww import STATE_KIND, HybridLogicalClock, LWWRegister, decode_delta, decode_state
from implementations.wire import DecodeError, OverLimit, encode
from machines.contracts import RegisterReplica
from models import lww as model
from models.clock import NS_PER_MS, ManualClock, OffsetClock
from tests.test_lww_catches_bugs import VectorClockHashTieBreak

START_NS = 1_700_000_000_000_000_000
IMPLEMENTATIONS = implementations("lww")

VALUES = st.one_of(
    st.none(),
    st.sampled_from(["a", "b", 128, b"\x00" * 32]),
    st.integers(-(2**63), 2**64 - 1),
    st.text(max_size=8),
    st.binary(min_size=32, max_size=32),
)
#: One replica's program: writes and clock advances (0 often, so timestamps tie).
ADVANCE = st.sampled_from([0, 0, 1, NS_PER_MS])
PROGRAM = st.lists(st.one_of(st.tuples(st.just("write"), VALUES), st.tuples(st.just("advance"), ADVANCE)), max_size=6)
SKEW = st.sampled_from([0, 0, 1, -1, NS_PER_MS, -NS_PER_MS])


def program_runner(clock: ManualClock, steps):
    def run(replica) -> None:
        for kind, arg in steps:
            if kind == "write":
                replica.write(arg)
            else:
                clock.advance(arg)

    return run


def replica_maker(impl, clock: ManualClock, skews: list[int]):
    return lambda index: impl.make_replica(index, OffsetClock(clock, skews[index] if index < len(skews) else 0))


# ----- merge laws ------------------------------------------------------------------------


def test_every_lww_implementation_is_a_register_replica():
    assert IMPLEMENTATIONS, "no lww implementation is registered"
    for impl in IMPLEMENTATIONS:
        assert isinstance(impl.make_replica(0, ManualClock(START_NS)), RegisterReplica), impl.name


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=[i.name for i in IMPLEMENTATIONS])
def test_merge_laws(impl):
    @capped_settings(impl)
    @given(programs=st.lists(PROGRAM, min_size=3, max_size=3), skews=st.lists(SKEW, min_size=3, max_size=3))
    def laws(programs, skews):
        clock = ManualClock(START_NS)
        check_merge_laws(replica_maker(impl, clock, skews), [program_runner(clock, p) for p in programs])

    laws()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=[i.name for i in IMPLEMENTATIONS])
def test_applying_a_delta_twice_changes_nothing(impl):
    @capped_settings(impl)
    @given(program=PROGRAM)
    def idempotence(program):
        clock = ManualClock(START_NS)
        check_delta_idempotence(replica_maker(impl, clock, []), program_runner(clock, program))

    idempotence()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=[i.name for i in IMPLEMENTATIONS])
@pytest.mark.parametrize("values", list(itertools.permutations(["a", "b", "c"])))
def test_three_concurrent_writers_with_equal_timestamps_merge_associatively(impl, values):
    """Three replicas whose clocks agree each write once: all three timestamps are equal; the
    greatest writer wins whichever way the states are grouped (any one writer, for every
    grouping the same, at level ``convergent``)."""
    clock = ManualClock(START_NS)

    def writes(value):
        return lambda replica: replica.write(value)

    make = replica_maker(impl, clock, [0, 0, 0])
    check_merge_laws(make, [writes(v) for v in values])
    replicas = [make(i) for i in range(3)]
    for replica, value in zip(replicas, values, strict=True):
        replica.write(value)
    results = set()
    for order in itertools.permutations(range(3)):
        target = make(7)
        for index in order:
            target.merge(replicas[index].state())
        results.add(target.value())
    assert len(results) == 1, f"the merge order decides the value: {results}"
    if impl.level == "exact":
        assert results == {values[2]}


def test_the_upstream_vector_clock_register_is_not_associative():
    """The upstream fault, as the laws see it: hash tie-break over merged vector clocks with
    three concurrent writers."""
    failures = []
    for counts in itertools.product([1, 2], repeat=3):
        programs = [lambda r, n=n: [r.write(f"w{r.replica_id}.{k}") for k in range(n)] for n in counts]
        try:
            check_merge_laws(lambda i: VectorClockHashTieBreak(i, None), programs)
        except AssertionError as error:
            failures.append(str(error))
    assert "merge is not associative" in failures, failures


# ----- the hybrid logical clock is the model's timestamp rule ------------------------------

EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from([0, 0, 1, NS_PER_MS, 10 * NS_PER_MS])),
        st.tuples(st.just("observe"), st.tuples(st.integers(START_NS - NS_PER_MS, START_NS + 30 * NS_PER_MS), st.integers(0, 3))),
        st.tuples(st.just("issue"), st.none()),
    ),
    max_size=30,
)


@given(events=EVENTS)
def test_the_hybrid_logical_clock_issues_what_the_model_says(events):
    clock = ManualClock(START_NS)
    hlc = HybridLogicalClock(clock)
    seen: list[model.Timestamp] = []
    for kind, arg in events:
        if kind == "advance":
            clock.advance(arg)
        elif kind == "observe":
            hlc.observe(arg)
            seen.append(model.Timestamp(*arg))
        else:
            expected = model.next_timestamp(seen, clock.now())
            assert hlc.issue() == (expected.wall_ns, expected.counter)
            seen.append(expected)


def test_registers_sharing_a_clock_stamp_above_each_other():
    clock = ManualClock(START_NS)
    hlc = HybridLogicalClock(clock)
    title, assignee = LWWRegister(1, clock, hlc), LWWRegister(1, clock, hlc)
    remote = LWWRegister(2, OffsetClock(clock, 5 * NS_PER_MS))
    remote.write("remote")
    title.merge(remote.state())  # seen by the shared clock: the next write of *any* field is above it
    assignee.write(b"\x01" * 32)
    assert assignee.entry.key > title.entry.key
    assert (assignee.entry.wall_ns, assignee.entry.counter) == (START_NS + 5 * NS_PER_MS, 1)


def test_a_replica_behind_still_overwrites_what_it_has_seen():
    clock = ManualClock(START_NS)
    ahead, behind = LWWRegister(1, OffsetClock(clock, NS_PER_MS)), LWWRegister(0, clock)
    ahead.write("old")
    behind.apply_delta(ahead.take_deltas()[0])
    behind.write("new")
    ahead.merge(behind.state())
    assert ahead.value() == behind.value() == "new"


@pytest.mark.parametrize(
    ("value", "error"),
    [(1.5, TypeError), (True, TypeError), ([1], TypeError), (2**64, ValueError), (-(2**63) - 1, ValueError)],
)
def test_write_refuses_values_a_register_cannot_hold(value, error):
    register = LWWRegister(0, ManualClock(START_NS))
    with pytest.raises(error, match="LWW register holds"):
        register.write(value)
    assert register.value() is None and register.take_deltas() == []


# ----- wire robustness ---------------------------------------------------------------------


def written_register() -> LWWRegister:
    clock = ManualClock(START_NS)
    register = LWWRegister(3, clock)
    register.write("kept")
    register.take_deltas()
    return register


def other_messages() -> tuple[bytes, bytes]:
    other = LWWRegister(4, OffsetClock(ManualClock(START_NS), NS_PER_MS))
    other.write(b"\xab" * 32)
    return other.state(), other.take_deltas()[0]


def assert_refused_whole(register: LWWRegister, apply, data: bytes) -> None:
    before_state, before_value, before_clock = register.state(), register.value(), register.hlc.latest
    try:
        apply(data)
    except DecodeError:
        assert (register.state(), register.value(), register.hlc.latest) == (before_state, before_value, before_clock)


@given(data=st.binary(max_size=80))
def test_random_bytes_raise_only_decode_error_and_change_nothing(data):
    register = written_register()
    for apply in (register.merge, register.apply_delta):
        assert_refused_whole(register, apply, data)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=[i.name for i in IMPLEMENTATIONS])
def test_every_implementation_refuses_bad_bytes_whole(impl):
    @capped_settings(impl)
    @given(data=st.one_of(st.binary(max_size=80), st.sampled_from(other_messages()).map(lambda m: m[: len(m) // 2])))
    def refused_whole(data):
        replica = impl.make_replica(3, ManualClock(START_NS))
        replica.write("kept")
        replica.take_deltas()
        for apply in (replica.merge, replica.apply_delta):
            before = (replica.state(), replica.value())
            try:
                apply(data)
            except DecodeError:
                assert (replica.state(), replica.value()) == before

    refused_whole()


def test_every_truncation_is_refused_and_changes_nothing():
    state, delta = other_messages()
    for message, kind in ((state, "merge"), (delta, "apply_delta")):
        for cut in range(len(message)):
            register = written_register()
            before = register.state()
            with pytest.raises(DecodeError):
                getattr(register, kind)(message[:cut])
            assert register.state() == before and register.value() == "kept"


def test_bit_flips_raise_only_decode_error_or_apply_a_whole_write():
    state, delta = other_messages()
    for message, kind in ((state, "merge"), (delta, "apply_delta")):
        for bit in range(len(message) * 8):
            flipped = bytearray(message)
            flipped[bit // 8] ^= 1 << (bit % 8)
            register = written_register()
            assert_refused_whole(register, getattr(register, kind), bytes(flipped))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (encode(STATE_KIND, 2, []), "version 2"),
        (encode("lww.delta", 1, []), "expected 4 items"),
        (encode(STATE_KIND, 1, [1, 2, 3]), "expected 4 items"),
        (encode(STATE_KIND, 1, [-1, 0, 0, "x"]), r"wall_ns"),
        (encode(STATE_KIND, 1, [1, True, 0, "x"]), r"counter"),
        (encode(STATE_KIND, 1, [1, 0, "w", "x"]), r"writer"),
        (encode(STATE_KIND, 1, [1, 0, 0, 1.5]), r"value"),
        (encode(STATE_KIND, 1, [1, 0, 0, False]), r"value"),
        (encode(STATE_KIND, 1, [1, 0, 0, ["x"]]), r"value"),
        (encode(STATE_KIND, 1, [1, 0, 0, "x"]) + b"\x00", "well-formed"),
    ],
)
def test_malformed_messages_name_what_is_wrong(data, match):
    is_delta = data.startswith(encode("lww.delta", 1, [])[:11])
    with pytest.raises(DecodeError, match=match):
        (decode_delta if is_delta else decode_state)(data)
    register = written_register()
    with pytest.raises(DecodeError):
        (register.apply_delta if is_delta else register.merge)(data)
    assert register.value() == "kept"


def test_a_delta_is_not_a_state_and_a_state_is_not_a_delta():
    state, delta = other_messages()
    register = written_register()
    with pytest.raises(DecodeError, match=r"kind 'lww\.delta'"):
        register.merge(delta)
    with pytest.raises(DecodeError, match=r"kind 'lww\.state'"):
        register.apply_delta(state)
    assert register.value() == "kept"


# ----- peers that lie (issue 7) ----------------------------------------------------------------


def test_the_model_and_the_limits_agree_on_the_greatest_counter():
    assert model.MAX_COUNTER == MAX_HLC_COUNTER


def test_a_counter_at_the_limit_moves_the_wall_time_on_as_the_model_says():
    clock = ManualClock(START_NS)
    register = LWWRegister(1, clock)
    register.apply_delta(encode("lww.delta", 1, [START_NS, MAX_HLC_COUNTER, 2**40, "theirs"]))
    register.write("mine")
    expected = model.next_timestamp([model.Timestamp(START_NS, MAX_HLC_COUNTER)], START_NS)
    assert expected == model.Timestamp(START_NS + 1, 0)
    assert (register.entry.wall_ns, register.entry.counter) == (START_NS + 1, 0)
    assert register.value() == "mine"


@pytest.mark.parametrize(("body", "limit"), [
    ([START_NS + MAX_CLOCK_AHEAD_NS + 1, 0, 2, "x"], "MAX_CLOCK_AHEAD_NS"),
    ([2**64 - 1, 0, 2, "x"], "MAX_CLOCK_AHEAD_NS"),
    ([START_NS, MAX_HLC_COUNTER + 1, 2, "x"], "MAX_HLC_COUNTER"),
    ([START_NS, 2**64 - 1, 2, "x"], "MAX_HLC_COUNTER"),
])
def test_timestamps_out_of_bounds_are_refused_whole_and_writes_still_work(body, limit):
    register = LWWRegister(1, ManualClock(START_NS))
    register.write("mine")
    before = register.state()
    for kind, method in (("lww.delta", register.apply_delta), ("lww.state", register.merge)):
        with pytest.raises(OverLimit) as refusal:
            method(encode(kind, 1, body))
        assert refusal.value.limit == limit and limit in str(refusal.value)
        assert register.state() == before
    register.write("again")
    assert register.value() == "again"


def test_a_write_at_the_clock_bound_is_accepted():
    register = LWWRegister(1, ManualClock(START_NS))
    register.apply_delta(encode("lww.delta", 1, [START_NS + MAX_CLOCK_AHEAD_NS, 0, 2, "x"]))
    assert register.value() == "x"
