"""The task-list machine's view of ``implementations.tasklist.TaskList`` (x0x-style, signed states).

Every replica is an agent with a fixed key: ``SigningKey(BLAKE3(b"agent" || replica_id))``,
so runs are reproducible and the machine can name any replica's agent. All replicas hold
the same list, ``LIST_ID``. ``forge`` plays an attacker who holds none of the agents' keys
(or holds one and tampers with what it signed): see ``machines.contracts.FORGERIES``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import blake3
import msgpack
from nacl.signing import SigningKey

from harness import Implementation, register
from harness.hostile import register_crafter
from implementations import lww, orset
from implementations import rga as rga_impl
from implementations.limits import MAX_TASKS
from implementations.tasklist import (
    CLAIMED,
    DELTA_KIND,
    DONE,
    FIELDS,
    STATE_KIND,
    U64_MAX,
    VERSION,
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


#: Two task ids (any 32 bytes are one on the wire), and a field write's body within every bound.
_T1, _T2 = bytes(32), bytes([1]) * 32
_WRITE = [1, 0, 7, "x"]
#: A checkbox record's bytes, well formed (it does not verify: the spoilings are refused before that).
_RECORD = bytes([CLAIMED]) + bytes(168)


def _order(whole_state: bool, item: Any = None, waiting: bool = False) -> bytes | None:
    """A message's order part: empty (a delta's: nil), or holding one ``item`` (with ``waiting``,
    in a state, under a parent it has not seen: a waiting element)."""
    if item is None:
        return rga_impl.RGA(0).state() if whole_state else None
    author = rga_impl.RGA(2)
    if waiting:
        author.insert(0, _T1)
        author.take_deltas()
    author.insert(len(author), item)
    delta = author.take_deltas()[0]
    if not whole_state:
        return delta
    holder = rga_impl.RGA(1)
    holder.apply_delta(delta)
    return holder.state()


def _body(whole_state: bool, *, members: Any = None, order: Any = ..., fields: Any = (), records: Any = ()) -> list:
    return [LIST_ID, members if members is not None else orset.encode_body(orset.DotStore()),
            _order(whole_state) if order is ... else order, list(fields), list(records)]


def _members(element: Any) -> list:
    store = orset.DotStore()
    store.insert(element, (FORGER_PEER, 1))
    store.context.add((FORGER_PEER, 1))
    return orset.encode_body(store)


def _not_a_task(value: Any) -> str:
    return f"{value!r:.40} is not a 32-byte task id"


#: Spoilings of a message's body (the ``not_canonical`` lie), by name: what its refusal names after
#: the kind, the limit it passes (or None), and the body (given whole_state). ``*_at_limit``: exactly
#: as many items as the limit allows, the first malformed: within the limit, so refused for the item.
SPOILINGS: dict[str, tuple[str, str | None, Any]] = {
    "body_of_four": ("body: expected 5 items, got 4", None, lambda w: _body(w)[:4]),
    "body_of_six": ("body: expected 5 items, got 6", None, lambda w: [*_body(w), None]),
    "list_id_short": ("list id: expected 32 bytes, got 31", None, lambda w: [LIST_ID[:31], *_body(w)[1:]]),
    "list_id_not_bytes": ("list id: expected bytes, got str", None, lambda w: [LIST_ID.hex(), *_body(w)[1:]]),
    "other_list": (f"message of list {OTHER_LIST_ID.hex()[:16]}…, this replica holds list {LIST_ID.hex()[:16]}…", None,
                   lambda w: [OTHER_LIST_ID, *_body(w)[1:]]),
    "members_not_a_list": ("members: expected array, got int 0", None, lambda w: _body(w, members=0)),
    "member_not_bytes": ("members: " + _not_a_task("x"), None, lambda w: _body(w, members=_members("x"))),
    "member_short": ("members: " + _not_a_task(bytes(31)), None, lambda w: _body(w, members=_members(bytes(31)))),
    "member_long": ("members: " + _not_a_task(bytes(33)), None, lambda w: _body(w, members=_members(bytes(33)))),
    "order_not_bytes": ("order: expected bytes, got int 0", None, lambda w: _body(w, order=0)),
    "order_item_not_bytes": ("order: item " + _not_a_task("x"), None, lambda w: _body(w, order=_order(w, "x"))),
    "order_item_short": ("order: item " + _not_a_task(bytes(31)), None, lambda w: _body(w, order=_order(w, bytes(31)))),
    "order_item_long": ("order: item " + _not_a_task(bytes(33)), None, lambda w: _body(w, order=_order(w, bytes(33)))),
    "order_item_waiting": ("order: item " + _not_a_task(bytes(31)), None,
                           lambda w: _body(w, order=_order(w, bytes(31), waiting=True))),
    "fields_not_a_list": ("fields: expected array, got int 0", None, lambda w: [*_body(w)[:3], 0, []]),
    "fields_over_limit": (f"field writes: {len(FIELDS) * MAX_TASKS + 1:,}", "MAX_TASKS",
                          lambda w: _body(w, fields=[0] * (len(FIELDS) * MAX_TASKS + 1))),
    "fields_at_limit": ("fields[0]: expected array, got int 0", None, lambda w: _body(w, fields=[0] * (len(FIELDS) * MAX_TASKS))),
    "field_of_two": ("fields[0]: expected 3 items, got 2", None, lambda w: _body(w, fields=[[_T1, 0]])),
    "field_task_short": ("fields[0][0] (task id): expected 32 bytes, got 31", None,
                         lambda w: _body(w, fields=[[bytes(31), 0, _WRITE]])),
    "field_number_over": (f"fields[0][1] (field): {len(FIELDS)} is outside [0, {len(FIELDS) - 1}]", None,
                          lambda w: _body(w, fields=[[_T1, len(FIELDS), _WRITE]])),
    "field_number_negative": (f"fields[0][1] (field): -1 is outside [0, {len(FIELDS) - 1}]", None,
                              lambda w: _body(w, fields=[[_T1, -1, _WRITE]])),
    "fields_out_of_order": ("fields[1]: out of order (sorted by task id and field, no repeats)", None,
                            lambda w: _body(w, fields=[[_T1, 1, _WRITE], [_T1, 0, _WRITE]])),
    "fields_tasks_out_of_order": ("fields[1]: out of order (sorted by task id and field, no repeats)", None,
                                  lambda w: _body(w, fields=[[_T2, 0, _WRITE], [_T1, 3, _WRITE]])),
    "field_repeated": ("fields[1]: out of order (sorted by task id and field, no repeats)", None,
                       lambda w: _body(w, fields=[[_T1, 2, [1, 0, 7, None]], [_T1, 2, [2, 0, 7, None]]])),
    "field_write_empty": ("fields[0][2]: expected 4 items [wall_ns, counter, writer, value], got 0", None,
                          lambda w: _body(w, fields=[[_T1, 0, []]])),
    "title_not_str": ("fields[0]: 5 is not a valid title", None, lambda w: _body(w, fields=[[_T1, 0, [1, 0, 7, 5]]])),
    "description_not_str": ("fields[0]: None is not a valid description", None,
                            lambda w: _body(w, fields=[[_T1, 1, [1, 0, 7, None]]])),
    "assignee_short": (f"fields[0]: {bytes(31)!r:.40} is not a valid assignee", None,
                       lambda w: _body(w, fields=[[_T1, 2, [1, 0, 7, bytes(31)]]])),
    "assignee_not_bytes": ("fields[0]: 'x' is not a valid assignee", None,
                           lambda w: _body(w, fields=[[_T1, 2, [1, 0, 7, "x"]]])),
    "priority_over": ("fields[0]: 256 is not a valid priority", None, lambda w: _body(w, fields=[[_T1, 3, [1, 0, 7, 256]]])),
    "priority_negative": ("fields[0]: -1 is not a valid priority", None, lambda w: _body(w, fields=[[_T1, 3, [1, 0, 7, -1]]])),
    "priority_not_int": ("fields[0]: '1' is not a valid priority", None, lambda w: _body(w, fields=[[_T1, 3, [1, 0, 7, "1"]]])),
    "field_tasks_over_limit": ("tasks with fields after the join: ", "MAX_TASKS",
                               lambda w: _body(w, fields=[[n.to_bytes(32, "big"), 0, _WRITE] for n in range(MAX_TASKS + 1)])),
    "records_not_a_list": ("records: expected array, got int 0", None, lambda w: [*_body(w)[:4], 0]),
    "records_over_limit": (f"checkbox records: {2 * MAX_TASKS + 1:,}", "MAX_TASKS",
                           lambda w: _body(w, records=[0] * (2 * MAX_TASKS + 1))),
    "records_at_limit": ("records[0]: expected bytes, got int 0", None, lambda w: _body(w, records=[0] * (2 * MAX_TASKS))),
    "record_not_bytes": ("records[0]: expected bytes, got str 'x'", None, lambda w: _body(w, records=["x"])),
    "records_out_of_order": ("records[1]: out of order (ascending, no repeats)", None,
                             lambda w: _body(w, records=[bytes([DONE]) + bytes(168), _RECORD])),
    "record_repeated": ("records[1]: out of order (ascending, no repeats)", None, lambda w: _body(w, records=[_RECORD] * 2)),
    "record_empty": ("records[0]: out of order (ascending, no repeats)", None, lambda w: _body(w, records=[b""])),
    "record_short": ("records[0]: a checkbox record is 169 bytes starting with kind 1 or 2", None,
                     lambda w: _body(w, records=[_RECORD[:-1]])),
    "record_long": ("records[0]: a checkbox record is 169 bytes starting with kind 1 or 2", None,
                    lambda w: _body(w, records=[_RECORD + b"\x00"])),
    "record_kind_zero": ("records[0]: a checkbox record is 169 bytes starting with kind 1 or 2", None,
                         lambda w: _body(w, records=[bytes(169)])),
    "record_kind_three": ("records[1]: a checkbox record is 169 bytes starting with kind 1 or 2", None,
                          lambda w: _body(w, records=[_RECORD, bytes([3]) + bytes(168)])),
}


#: SPEC's attestation domains, by the record's kind byte.
SPEC_DOMAINS = {CLAIMED: b"x0x.task.claim.v2", DONE: b"x0x.task.complete.v2"}


def spec_record(key: SigningKey, state: str, task: bytes, ts_ms: int) -> bytes:
    """A genuine checkbox record signed by ``key``, made from SPEC alone (not with the module's
    own signing): ``domain || list_id || task_id || agent_id || ts_ms (8, big-endian)`` signed,
    in the record layout ``kind || task || agent || ts_ms || public key || signature``."""
    kind = {"claimed": CLAIMED, "done": DONE}[state]
    public_key = bytes(key.verify_key)
    agent, ts = blake3.blake3(public_key).digest(), ts_ms.to_bytes(8, "big")
    signature = key.sign(SPEC_DOMAINS[kind] + LIST_ID + task + agent + ts).signature
    return bytes([kind]) + task + agent + ts + public_key + signature


class X0xCrafter:
    """The adversary's pen for ``TaskList`` messages (see ``machines.tasklist``, the adversary).

    The checkbox part of a message is a list of signed records with no causal context, so
    the lies about dots are told in the only context the format has, the membership set's.
    """

    lies = ("context_erases_state", "dots_far_ahead", "own_dots_ahead", "counter_at_max", "stranger_ops",
            "relayed_record", "clock_ahead", "one_field_wrong", "not_canonical")
    stranger_agent = agent_id(bytes(STRANGER_KEY.verify_key))
    spoilings = tuple(SPOILINGS)
    #: A caller's mistakes are refused (``machines.tasklist``'s ``caller_mistake``), in these words.
    refuses_caller_mistakes = True
    caller_mistake_texts: ClassVar[dict[str, str]] = {
        "add-title-not-text": "a task's title and description are strings",
        "add-description-not-text": "a task's title and description are strings",
        "set-unknown-field": "unknown field 'colour', expected one of ('title', 'description', 'assignee', 'priority')",
        "set-title-not-text": "set_field: 7 is not a valid title",
        "set-assignee-not-an-agent": f"set_field: {bytes(31)!r:.40} is not a valid assignee",
        "set-priority-past-u8": "set_field: 256 is not a valid priority",
        "set-priority-negative": "set_field: -1 is not a valid priority",
        "set-priority-bool": "set_field: True is not a valid priority",
        "move-negative": "move to a negative index -1",
    }

    @staticmethod
    def kind(whole_state: bool) -> str:
        """The kind of message this crafter renders, which a refusal of it names (SPEC's names,
        not the module's constants: a refusal must name the kind the peer sent)."""
        return "tasklist.state" if whole_state else "tasklist.delta"

    @staticmethod
    def spoiling(how: str) -> tuple[str, str | None]:
        """What a refusal of the message ``spoil`` renders must name after the kind, and the limit
        it passes (None if it passes none)."""
        return SPOILINGS[how][0], SPOILINGS[how][1]

    @functools.lru_cache(maxsize=128)  # noqa: B019 (one crafter per process; the bytes never change)
    def spoil(self, whole_state: bool, how: str) -> bytes:
        """A message whose body is spoiled as ``SPOILINGS[how]`` says."""
        return encode(STATE_KIND if whole_state else DELTA_KIND, VERSION, SPOILINGS[how][2](whole_state))

    @staticmethod
    def tampered(genuine: bytes, how: str) -> tuple[str, str | None]:
        """What a refusal of ``tamper(genuine, ..., how, ...)`` names after the kind, and the limit it
        passes: the part spoiled (a message without field writes has its list id spoiled instead)."""
        if how in ("field_clock", "field_counter") and not msgpack.unpackb(genuine, raw=False)[2][3]:
            how = "list_id"
        return {"list_id": ("message of list ", None), "field_clock": ("field ", "MAX_CLOCK_AHEAD_NS"),
                "field_counter": ("field ", "MAX_HLC_COUNTER"), "member_claim": ("members claims dot ", "MAX_COUNTER_GAP")}[how]

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
        return self.message(whole_state, [spec_record(STRANGER_KEY, state, task, ts_ms)])

    def relay(self, source: X0xTaskListReplica, task: bytes, agent: bytes, state: str, ts_ms: int, whole_state: bool) -> bytes:
        signed = spec_record(source.tasks.signing_key, state, task, ts_ms)  # Ed25519 is deterministic:
        assert signed[33:65] == agent, "relay a record of the source's own agent"  # the very bytes it made
        return self.message(whole_state, [signed])

    @staticmethod
    def verified(holder: X0xTaskListReplica, message: bytes, whole_state: bool) -> tuple[list[tuple[str, bytes, int]], int]:
        """The checkbox states ``message`` carries, as ``(state, agent id, ts_ms)``, and how many
        records the holder would verify and drop as not verifying (``Decoded.dropped``: decoding
        changes nothing)."""
        decoded = (holder.tasks.decode_state if whole_state else holder.tasks.decode_delta)(message)
        carried = [({CLAIMED: "claimed", DONE: "done"}[record[0]], record[33:65], int.from_bytes(record[65:73], "big"))
                   for record in msgpack.unpackb(message, raw=False)[2][4]]
        return carried, decoded.dropped

    @staticmethod
    def held(holder: X0xTaskListReplica, task: bytes) -> list[tuple[str, bytes, int]]:
        """The checkbox states of ``task`` the holder keeps (its smallest Done, then its smallest
        Claimed, those it has), as ``(state, agent id, ts_ms)``."""
        return [({CLAIMED: "claimed", DONE: "done"}[record[0]], record[33:65], int.from_bytes(record[65:73], "big"))
                for record in holder.tasks.records(task)]

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
