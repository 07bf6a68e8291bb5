"""The task-list machine's view of ``implementations.tasklist.TaskList`` (x0x-style, signed states).

Every replica is an agent with a fixed key: ``SigningKey(BLAKE3(b"agent" || replica_id))``,
so runs are reproducible and the machine can name any replica's agent. All replicas hold
the same list, ``LIST_ID``. ``forge`` plays an attacker who holds none of the agents' keys
(or holds one and tampers with what it signed): see ``machines.contracts.FORGERIES``.
"""

from __future__ import annotations

from typing import Any

import blake3
import msgpack
from nacl.signing import SigningKey

from harness import Implementation, register
from harness.hostile import register_crafter
from implementations import lww, orset
from implementations import rga as rga_impl
from implementations.tasklist import (
    CLAIMED,
    DELTA_KIND,
    DONE,
    FIELDS,
    STATE_KIND,
    U64_MAX,
    Record,
    TaskList,
    TaskRefused,
    agent_id,
    attestation_message,
    encode_message,
)
from implementations.wire import encode
from machines.contracts import FORGERIES, Refused
from models.clock import Clock
from models.tasklist import Claimed, Done, Empty, TaskView

LIST_ID = blake3.blake3(b"mbt task list").digest()
OTHER_LIST_ID = blake3.blake3(b"another task list").digest()
OUTSIDER = SigningKey(blake3.blake3(b"outsider").digest())
#: Forged records get dots of this pseudo-replica, never used by a real one.
FORGER_PEER = 2**40


def agent_key(replica_id: int) -> SigningKey:
    return SigningKey(blake3.blake3(b"agent" + bytes([replica_id])).digest())


def forged_record(task: bytes, kind: int, agent: int, ts_ms: int, how: str) -> bytes:
    """A checkbox record of ``task`` naming the agent of replica ``agent`` that does not verify."""
    if how not in FORGERIES:
        raise ValueError(f"unknown forgery {how!r}, expected one of {FORGERIES}")
    key = agent_key(agent)
    public_key = bytes(key.verify_key)
    named = agent_id(public_key)
    signer, list_id, signed_kind, signed_ts = key, LIST_ID, kind, ts_ms
    if how == "wrong_key":
        signer = OUTSIDER
        public_key = bytes(OUTSIDER.verify_key)
    elif how == "impostor":
        signer = OUTSIDER
    elif how == "other_list":
        list_id = OTHER_LIST_ID
    elif how == "swapped_domain":
        signed_kind = CLAIMED if kind == DONE else DONE
    elif how == "shifted_ts":
        signed_ts = ts_ms + 1
    signature = bytearray(signer.sign(attestation_message(signed_kind, list_id, task, named, signed_ts)).signature)
    if how == "flipped_signature":
        signature[ts_ms % 64] ^= 0x01
    return Record(kind, task, named, ts_ms, public_key, bytes(signature)).to_bytes()


class X0xTaskListReplica:
    """A ``TaskList`` keeping ``machines.contracts.TaskListReplica``."""

    def __init__(self, replica_id: int, clock: Clock) -> None:
        self.tasks = TaskList(LIST_ID, agent_key(replica_id), clock, peer_id=replica_id)
        self.agent_id = self.tasks.agent_id

    def _guarded(self, operation, *args: Any) -> None:
        try:
            operation(*args)
        except TaskRefused as refusal:
            raise Refused(refusal.kind, str(refusal)) from None

    def add_task(self, title: str, description: str) -> bytes:
        return self.tasks.add_task(title, description)

    def remove_task(self, task_id: bytes) -> None:
        self._guarded(self.tasks.remove_task, task_id)

    def claim(self, task_id: bytes) -> None:
        self._guarded(self.tasks.claim, task_id)

    def complete(self, task_id: bytes) -> None:
        self._guarded(self.tasks.complete, task_id)

    def set_field(self, task_id: bytes, field: str, value: Any) -> None:
        self._guarded(self.tasks.set_field, task_id, field, value)

    def move(self, task_id: bytes, index: int) -> None:
        self._guarded(self.tasks.move, task_id, index)

    def value(self) -> tuple[TaskView, ...]:
        views = []
        for task, title, description, assignee, priority, (state, *who) in self.tasks.value():
            checkbox = Empty() if state == "empty" else (Claimed if state == "claimed" else Done)(*who)
            views.append(TaskView(task, title, description, assignee, priority, checkbox))
        return tuple(views)

    def forge(self, task_id: bytes, state: str, agent: int, ts_ms: int, how: str, whole_state: bool) -> bytes:
        own = [record for record in self.tasks.records(task_id) if record[33:65] == self.agent_id]
        if how == "tampered_copy" and own:
            genuine = own[-1]
            record = genuine[:-64] + bytes([genuine[-64] ^ 0x01]) + genuine[-63:]
        else:
            how = "flipped_signature" if how == "tampered_copy" else how
            record = forged_record(task_id, {"claimed": CLAIMED, "done": DONE}[state], agent, ts_ms, how)
        if whole_state:
            return encode_message(STATE_KIND, LIST_ID, orset.DotStore(), rga_impl.RGA(0).state(), [], [record])
        return encode_message(DELTA_KIND, LIST_ID, orset.DotStore(), None, [], [record])

    def state(self) -> bytes:
        return self.tasks.state()

    def merge(self, state: bytes) -> None:
        self.tasks.merge(state)

    def take_deltas(self) -> list[bytes]:
        return self.tasks.take_deltas()

    def apply_delta(self, delta: bytes) -> None:
        self.tasks.apply_delta(delta)


X0X = register(Implementation(
    machine="tasklist",
    name="x0x",
    make_replica=X0xTaskListReplica,
    level="exact",
    description="OR-Set membership, HLC-stamped LWW fields, Ed25519-attested checkbox states, RGA order",
))


#: The stranger: an agent with a key of its own, that no replica is. Its signed states verify.
STRANGER_KEY = SigningKey(blake3.blake3(b"stranger").digest())
#: The stranger's dots (its own pseudo-replica, like FORGER_PEER).
STRANGER_PEER = 2**40 + 1


class X0xCrafter:
    """The adversary's pen for ``TaskList`` messages (see ``machines.tasklist``, the adversary).

    The checkbox part of a message is a list of signed records with no causal context, so
    the lies about dots are told in the only context the format has, the membership set's.
    """

    lies = ("context_erases_state", "dots_far_ahead", "own_dots_ahead", "counter_at_max", "stranger_ops",
            "relayed_record", "clock_ahead", "one_field_wrong")
    stranger_agent = agent_id(bytes(STRANGER_KEY.verify_key))

    @staticmethod
    def message(whole_state: bool, records: list[bytes], members: orset.DotStore | None = None,
                fields: list | None = None) -> bytes:
        if whole_state:
            return encode_message(STATE_KIND, LIST_ID, members or orset.DotStore(), rga_impl.RGA(0).state(), fields or [],
                                  records)
        return encode_message(DELTA_KIND, LIST_ID, members or orset.DotStore(), None, fields or [], records)

    def erase(self, holder: X0xTaskListReplica, task: bytes, whole_state: bool) -> bytes:
        """Every record the holder has but those of ``task``: as a full state, one that 'no
        longer has' them (the format has no context that could claim they were removed)."""
        records = msgpack.unpackb(holder.state(), raw=False)[2][4]
        return self.message(whole_state, [record for record in records if record[1:33] != task])

    def claim_dots(self, whole_state: bool, peer: int, counter: int, bad_record: bool) -> bytes:
        members = orset.DotStore()
        members.context.add((peer, counter))  # that dot alone: covering the dots before it would be a (legal) remove
        records = [forged_record(bytes(32), CLAIMED, 0, 0, "flipped_signature")] if bad_record else []
        return self.message(whole_state, records, members)

    def claim_own_ahead(self, holder: X0xTaskListReplica, whole_state: bool, ahead: int) -> bytes:
        peer = holder.tasks.peer_id
        members = orset.decode_body(msgpack.unpackb(holder.state(), raw=False)[2][1], "members")
        return self.claim_dots(whole_state, peer, members.context.max_seq(peer) + ahead, False)

    def stranger_state(self, whole_state: bool, task: bytes, state: str, ts_ms: int, serial: int) -> bytes:
        kind = {"claimed": CLAIMED, "done": DONE}[state]
        return self.message(whole_state, [Record.sign(kind, LIST_ID, task, STRANGER_KEY, ts_ms).to_bytes()])

    def relay(self, source: X0xTaskListReplica, task: bytes, agent: bytes, state: str, ts_ms: int, whole_state: bool) -> bytes:
        kind = {"claimed": CLAIMED, "done": DONE}[state]
        signed = Record.sign(kind, LIST_ID, task, source.tasks.signing_key, ts_ms)  # Ed25519 is deterministic:
        assert signed.agent == agent, "relay a record of the source's own agent"  # the very bytes it made
        return self.message(whole_state, [signed.to_bytes()])

    def field_write(self, whole_state: bool, task: bytes, field: str, wall_ns: int, counter: int, writer: int,
                    value: Any) -> bytes:
        fields = [(task, FIELDS.index(field), lww.Entry(wall_ns, counter, writer, value))]
        return self.message(whole_state, [], fields=fields)

    def tamper(self, genuine: bytes, whole_state: bool, how: str, peer: int, counter: int) -> bytes:
        kind, version, body = msgpack.unpackb(genuine, raw=False)
        fields = body[3]
        if how in ("field_clock", "field_counter") and not fields:
            how = "list_id"  # nothing to spoil there: spoil the list id instead
        if how == "list_id":
            body[0] = OTHER_LIST_ID
        elif how == "field_clock":
            fields[0][2][0] = U64_MAX
        elif how == "field_counter":
            fields[0][2][1] = U64_MAX
        else:
            members = orset.decode_body(body[1], "members")
            members.context.add((peer, counter))
            body[1] = orset.encode_body(members)
        return encode(kind, version, body)


register_crafter("tasklist", "x0x", X0xCrafter(), X0xTaskListReplica)
