"""The task list implementation at its edges: identities and attestation bytes, forged and
tampered states, malformed messages, local guards, and the merge laws."""

from __future__ import annotations

import contextlib

import blake3
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey, VerifyKey

from harness.laws import check_delta_idempotence, check_merge_laws
from implementations import lww, orset
from implementations.tasklist import (
    CLAIMED,
    DELTA_KIND,
    DONE,
    Record,
    TaskList,
    TaskRefused,
    agent_id,
    attestation_message,
    encode_message,
    task_id,
)
from implementations.wire import DecodeError
from machines.adapters.tasklist_x0x import LIST_ID, X0xTaskListReplica, agent_key
from machines.contracts import FORGERIES, Refused
from models.clock import ManualClock

NOW_NS = 1_700_000_000_123_000_000
KEY = SigningKey(bytes(range(32)))
VECTOR_LIST = bytes([7]) * 32


def make(replica_id: int, clock: ManualClock | None = None) -> TaskList:
    return TaskList(LIST_ID, agent_key(replica_id), clock or ManualClock(NOW_NS), peer_id=replica_id)


# ----- identities and the signed bytes -----------------------------------------------------


def test_agent_id_is_blake3_of_the_public_key():
    public_key = bytes(KEY.verify_key)
    assert public_key.hex() == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert agent_id(public_key) == blake3.blake3(public_key).digest()
    assert agent_id(public_key).hex() == "98ba85304ac639f0f55daab01ad6d592be44a125d9b3b65e1efca5b96960baec"


def test_task_id_is_blake3_of_title_creator_and_little_endian_millis():
    creator = agent_id(bytes(KEY.verify_key))
    ms = 1_700_000_000_123
    assert task_id("write spec", creator, ms) == blake3.blake3(b"write spec" + creator + ms.to_bytes(8, "little")).digest()
    assert task_id("write spec", creator, ms).hex() == "e89cf100e7e52ac58b36be917db9b03108b64c724a7a74b1870f204f84249fa1"
    assert task_id("write spec", creator, ms) != task_id("write spec", creator, ms + 1)


def test_a_replica_computes_task_ids_per_spec_from_its_clock():
    replica = make(1)
    task = replica.add_task("ship it", "")
    assert task == blake3.blake3(b"ship it" + replica.agent_id + (NOW_NS // 1_000_000).to_bytes(8, "little")).digest()


def test_attestation_bytes_are_domain_list_task_agent_and_big_endian_millis():
    task, agent = bytes(range(32)), bytes(range(32, 64))
    ts = 0x0102030405060708
    claim = attestation_message(CLAIMED, VECTOR_LIST, task, agent, ts)
    assert claim == b"x0x.task.claim.v2" + VECTOR_LIST + task + agent + bytes([1, 2, 3, 4, 5, 6, 7, 8])
    assert len(claim) == 17 + 32 * 3 + 8
    done = attestation_message(DONE, VECTOR_LIST, task, agent, ts)
    assert done == b"x0x.task.complete.v2" + VECTOR_LIST + task + agent + bytes([1, 2, 3, 4, 5, 6, 7, 8])


def test_signatures_are_plain_ed25519_over_those_bytes():
    creator = agent_id(bytes(KEY.verify_key))
    task = task_id("write spec", creator, 1_700_000_000_123)
    record = Record.sign(CLAIMED, VECTOR_LIST, task, KEY, 1_700_000_000_456)
    assert record.signature.hex() == (
        "d2bb0649091862b92f24afe6ca99c6f92ef9fc920ecd2fd906995eed7d0f339d"
        "516324f33a326ee9a165b7c27deb3d80b1ae5ec6459df57f02ffb2def4c15806"
    )
    message = b"x0x.task.claim.v2" + VECTOR_LIST + task + creator + (1_700_000_000_456).to_bytes(8, "big")
    VerifyKey(bytes(KEY.verify_key)).verify(message, record.signature)
    assert record.verifies(VECTOR_LIST)
    assert not record.verifies(LIST_ID)
    assert Record.from_bytes(record.to_bytes()) == record
    assert len(record.to_bytes()) == 169


# ----- local guards ------------------------------------------------------------------------


def test_local_guards_refuse_with_the_models_kinds():
    replica = make(0)
    task = replica.add_task("t", "")
    missing = bytes(32)
    for operation in (replica.claim, replica.complete, replica.remove_task):
        with pytest.raises(TaskRefused) as refusal:
            operation(missing)
        assert refusal.value.kind == "not_found"
    with pytest.raises(TaskRefused) as refusal:
        replica.complete(task)
    assert refusal.value.kind == "must_claim_first"
    replica.claim(task)
    replica.complete(task)
    for operation in (replica.claim, replica.complete):
        with pytest.raises(TaskRefused) as refusal:
            operation(task)
        assert refusal.value.kind == "already_done"
    with pytest.raises(ValueError, match="priority"):
        replica.set_field(task, "priority", 256)
    with pytest.raises(ValueError, match="unknown field"):
        replica.set_field(task, "colour", "red")


def test_claims_are_not_locks_the_earliest_claim_wins_after_merge():
    clock = ManualClock(NOW_NS)
    early, late = make(0, clock), make(1, clock)
    task = early.add_task("t", "")
    late.merge(early.state())
    early.claim(task)
    clock.advance(5_000_000)
    late.claim(task)
    assert late.checkbox(task)[1] == late.agent_id
    late.merge(early.state())
    assert late.checkbox(task) == ("claimed", early.agent_id, NOW_NS // 1_000_000)
    late.complete(task)  # any agent may complete a claimed task
    assert late.checkbox(task) == ("done", late.agent_id, NOW_NS // 1_000_000 + 5)


# ----- forged and tampered attestations ------------------------------------------------------


def _with_task_and_claim() -> tuple[X0xTaskListReplica, bytes]:
    replica = X0xTaskListReplica(0, ManualClock(NOW_NS))
    task = replica.add_task("t", "")
    replica.claim(task)
    return replica, task


@pytest.mark.parametrize("how", FORGERIES)
@pytest.mark.parametrize("state", ["claimed", "done"])
@pytest.mark.parametrize("whole_state", [False, True])
def test_forged_states_are_dropped(how, state, whole_state):
    replica, task = _with_task_and_claim()
    before = replica.value()
    message = replica.forge(task, state, 0, 0, how, whole_state)
    decoded = (replica.tasks.decode_state if whole_state else replica.tasks.decode_delta)(message)
    # A tampered copy of the record held ranks with it: it could change nothing, so it is not even verified.
    assert decoded.dropped == (0 if how == "tampered_copy" else 1)
    assert decoded.records == []
    (replica.merge if whole_state else replica.apply_delta)(message)
    assert replica.value() == before


def test_a_tampered_copy_does_not_shadow_the_genuine_state():
    source, sink = make(0), make(1)
    task = source.add_task("t", "")
    sink.merge(source.state())
    source.take_deltas()
    source.claim(task)
    (genuine,) = source.take_deltas()
    kind, version, body = msgpack.unpackb(genuine)
    record = bytearray(body[4][0])
    record[-1] ^= 0xFF
    body[4][0] = bytes(record)
    sink.apply_delta(msgpack.packb([kind, version, body], use_bin_type=True))
    assert sink.checkbox(task) == ("empty",)
    sink.apply_delta(genuine)
    assert sink.checkbox(task) == ("claimed", source.agent_id, NOW_NS // 1_000_000)


def test_only_the_bad_record_of_a_message_is_dropped():
    replica = make(0)
    task = replica.add_task("t", "")
    good = Record.sign(CLAIMED, LIST_ID, task, agent_key(3), 5).to_bytes()
    bad = bytearray(Record.sign(CLAIMED, LIST_ID, task, agent_key(4), 4).to_bytes())
    bad[-5] ^= 1
    replica.apply_delta(encode_message(DELTA_KIND, LIST_ID, orset.DotStore(), None, [], [good, bytes(bad)]))
    assert replica.checkbox(task) == ("claimed", agent_id(bytes(agent_key(3).verify_key)), 5)


# ----- malformed messages ------------------------------------------------------------------


def _busy_replica() -> TaskList:
    replica = make(0)
    first = replica.add_task("a", "x")
    second = replica.add_task("b", "")
    replica.claim(first)
    replica.set_field(second, "assignee", replica.agent_id)
    replica.set_field(second, "priority", 3)
    replica.move(second, 0)
    replica.remove_task(first)
    return replica


def test_messages_of_another_list_or_kind_are_refused_whole():
    replica, other = make(0), TaskList(bytes(32), agent_key(1), ManualClock(NOW_NS))
    other.add_task("x", "")
    with pytest.raises(DecodeError, match="list"):
        replica.merge(other.state())
    with pytest.raises(DecodeError, match="kind"):
        replica.merge(_busy_replica().take_deltas()[0])
    assert replica.value() == ()


def test_bad_field_values_and_records_are_decode_errors():
    replica = make(0)
    too_high = encode_message(DELTA_KIND, LIST_ID, orset.DotStore(), None,
                              [(bytes(32), 3, lww.Entry(NOW_NS, 0, 1, 300))], [])
    with pytest.raises(DecodeError, match="priority"):
        replica.apply_delta(too_high)
    with pytest.raises(DecodeError, match="record"):
        replica.apply_delta(encode_message(DELTA_KIND, LIST_ID, orset.DotStore(), None, [], [b"short record"]))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_truncated_or_mutated_messages_change_nothing_or_apply_whole(data):
    source = _busy_replica()
    message = data.draw(st.sampled_from([source.state(), _busy_replica().take_deltas()[0]]))
    kind_is_state = message == source.state()
    cut = data.draw(st.integers(0, len(message)))
    spoiled = bytearray(message[:cut] if data.draw(st.booleans()) else message)
    for position in data.draw(st.lists(st.integers(0, max(len(spoiled) - 1, 0)), max_size=3)):
        if spoiled:
            spoiled[position] ^= data.draw(st.integers(1, 255))
    target = make(1)
    target.add_task("mine", "")
    before = target.state()
    try:
        (target.merge if kind_is_state else target.apply_delta)(bytes(spoiled))
    except DecodeError:
        assert target.state() == before


# ----- merge laws --------------------------------------------------------------------------

OPERATIONS = st.lists(st.tuples(st.sampled_from(["add", "claim", "complete", "title", "priority", "move", "remove_task",
                                                 "tick"]),
                                st.integers(0, 5)), max_size=12)


def _program(base_state: bytes, operations):
    def run(replica: TaskList) -> None:
        replica.merge(base_state)
        for name, raw in operations:
            tasks = replica.order()
            if name == "tick":
                replica.clock.advance(raw * 1_000_000)
                continue
            if name == "add" or not tasks:
                replica.add_task(f"t{raw % 2}", "")
                continue
            task = tasks[raw % len(tasks)]
            with contextlib.suppress(TaskRefused):
                if name in ("claim", "complete", "remove_task"):
                    getattr(replica, name)(task)
                elif name == "move":
                    replica.move(task, raw)
                else:
                    replica.set_field(task, name, f"title {raw}" if name == "title" else raw * 40)

    return run


@settings(max_examples=40, deadline=None)
@given(programs=st.lists(OPERATIONS, min_size=3, max_size=3), skews=st.lists(st.integers(-3, 3), min_size=3, max_size=3))
def test_merge_is_commutative_associative_and_idempotent(programs, skews):
    base = make(50)
    shared = base.add_task("shared", "")
    base.claim(shared)
    clocks = {}

    def replica(index: int) -> TaskList:
        clocks.setdefault(index, ManualClock(NOW_NS + skews[index % 3] * 1_000_000))
        return make(index, clocks[index])

    check_merge_laws(replica, [_program(base.state(), ops) for ops in programs], lambda r: r.value())


@settings(max_examples=30, deadline=None)
@given(operations=OPERATIONS)
def test_deltas_applied_twice_change_nothing(operations):
    def program(replica: TaskList) -> None:
        _program(make(50).state(), operations)(replica)

    check_delta_idempotence(lambda index: make(index), program, lambda r: r.value())


def test_contract_refusals_come_through_the_adapter():
    replica = X0xTaskListReplica(0, ManualClock(NOW_NS))
    with pytest.raises(Refused) as refusal:
        replica.claim(bytes(32))
    assert refusal.value.kind == "not_found"
