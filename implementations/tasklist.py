"""A CRDT task list (after x0x): OR-Set membership, LWW fields, signed checkbox states, RGA order.

``TaskList(list_id, signing_key, clock, peer_id=...)`` is one agent's replica of one list.
It is a composition of the project's replicated types:

* membership: a ``DeltaORSet`` of task ids (add-wins);
* fields: per task, ``LWWRegister`` s ``title``, ``description``, ``assignee`` (an agent id
  or None) and ``priority`` (0..255, default 128), all stamped by one
  ``HybridLogicalClock``, so a replica's every write is above every write it has seen;
* checkbox states: signed attestation records (below), joined by keeping, per task, the
  smallest Done and the smallest Claimed; a task's state is that Done, else that Claimed
  (earlier ``ts_ms``, then smaller agent id), else Empty;
* order: an ``RGA`` of task ids; add appends, move deletes and re-inserts; the list shows
  the first occurrence of each id that is a member.

Identities. ``AgentId = BLAKE3(ed25519 public key)``;
``TaskId = BLAKE3(title utf-8 || creator agent id || created_at_ms as u64 little-endian)``.

Attestations. A claim or completion is signed by the acting agent (Ed25519, PyNaCl) over
``domain || list_id(32) || task_id(32) || agent_id(32) || ts_ms(u64 big-endian)``, with
domain ``x0x.task.claim.v2`` or ``x0x.task.complete.v2``. A record is ``kind(1: 1 claimed,
2 done) || task_id || agent_id || ts_ms(8, BE) || public_key(32) || signature(64)``, 169
bytes, so the key travels with the state. A record *verifies* when
``BLAKE3(public_key) == agent_id`` and the signature is valid for this list. Records that
do not verify are dropped when a state or delta arrives.

Why checkbox states are not an OR-Set here (issue 7, defect 2). SPEC stores them "as an
OR-Set of states", but no operation of SPEC removes one: claim and complete only add a
state, and resolution only ever picks the smallest Done, else the smallest Claimed. The set
is therefore grow-only, and those two records per task are all of it that can ever be
shown. An OR-Set's causal context is what it uses to remove: in the OR-Set this replaced, a
65-byte delta whose context covered an agent's dots turned its signed Done into Empty with
no key at all, and a context claiming an agent's dots far ahead silently dropped its later
genuine claims. Authenticating removals (contexts that cover only their signer's dots, or
removals signed by the remover) would secure an operation SPEC does not have. Instead the
join keeps the smaller of each pair: it is commutative, associative and idempotent; nothing
on the wire can remove a state, so a state is displaced only by a verified state the
resolution order puts ahead of it; and a replica keeps at most two records per task, which
bounds what a peer can make it store per task (``MAX_TASKS`` bounds the tasks).

Peers that lie. Before anything changes (``admit``), a message is refused whole with
``wire.OverLimit`` if its membership set passes the OR-Set's limits (``orset.admit``: dots of
this replica it never made, counters beyond the gap, ...), a field write's timestamp passes
the clock's bounds (``lww.admit``), or it would make the replica keep fields or checkbox
records of more than ``MAX_TASKS`` tasks. Only records that would change a winner are
verified (one Ed25519 check each); the others could change nothing.

Wire (``implementations.wire``), kinds ``tasklist.state`` and ``tasklist.delta``, version 2,
body ``[list_id, members, order, fields, records]``: ``members`` is an OR-Set body
(``implementations.orset.encode_body``); ``order`` is the bytes of an ``rga.state`` (or, in
a delta, an ``rga.delta`` or nil); ``fields`` is ``[[task_id, field_number, [wall_ns,
counter, writer, value]], ...]`` sorted by task and field; ``records`` is the 169-byte
records, ascending, no repeats (a state's are its winners; a delta's, the ones its agent
made since the last delta). A message of another list is refused. Decoding
(``decode_state``/``decode_delta``) checks the whole message, admits it and verifies
attestations, raising only ``DecodeError``; ``apply`` cannot fail.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import blake3
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

from implementations import lww, orset
from implementations import rga as rga_impl
from implementations.limits import MAX_TASKS
from implementations.wire import DecodeError, OverLimit, decode, encode, expect_bytes, expect_int, expect_list
from models.clock import Clock, to_millis

STATE_KIND, DELTA_KIND, VERSION = "tasklist.state", "tasklist.delta", 2
CLAIM_DOMAIN = b"x0x.task.claim.v2"
COMPLETE_DOMAIN = b"x0x.task.complete.v2"
CLAIMED, DONE = 1, 2
DOMAINS = {CLAIMED: CLAIM_DOMAIN, DONE: COMPLETE_DOMAIN}
FIELDS = ("title", "description", "assignee", "priority")
DEFAULTS = {"title": "", "description": "", "assignee": None, "priority": 128}
RECORD_BYTES = 1 + 32 + 32 + 8 + 32 + 64
U64_MAX = 2**64 - 1


class TaskRefused(Exception):
    """A local guard refused an operation; ``kind`` is "not_found", "already_done" or "must_claim_first"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def agent_id(public_key: bytes) -> bytes:
    """``BLAKE3(public key)``."""
    return blake3.blake3(bytes(public_key)).digest()


def task_id(title: str, creator: bytes, created_at_ms: int) -> bytes:
    """``BLAKE3(title || creator agent id || created_at_ms as u64 little-endian)``."""
    return blake3.blake3(title.encode() + creator + created_at_ms.to_bytes(8, "little")).digest()


def attestation_message(kind: int, list_id: bytes, task: bytes, agent: bytes, ts_ms: int) -> bytes:
    """The exact bytes an agent signs to claim (kind 1) or complete (kind 2) a task."""
    return DOMAINS[kind] + list_id + task + agent + ts_ms.to_bytes(8, "big")


class Record(NamedTuple):
    """A checkbox state with its attestation, as stored (see the module docstring)."""

    kind: int
    task: bytes
    agent: bytes
    ts_ms: int
    public_key: bytes
    signature: bytes

    def to_bytes(self) -> bytes:
        return (bytes([self.kind]) + self.task + self.agent + self.ts_ms.to_bytes(8, "big")
                + self.public_key + self.signature)

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        """The record ``data`` holds; ``ValueError`` if it is not 169 bytes of a known kind."""
        if len(data) != RECORD_BYTES or data[0] not in DOMAINS:
            raise ValueError(f"a checkbox record is {RECORD_BYTES} bytes starting with kind 1 or 2")
        return cls(data[0], data[1:33], data[33:65], int.from_bytes(data[65:73], "big"), data[73:105], data[105:])

    @classmethod
    def sign(cls, kind: int, list_id: bytes, task: bytes, key: SigningKey, ts_ms: int) -> Record:
        public_key = bytes(key.verify_key)
        agent = agent_id(public_key)
        signature = key.sign(attestation_message(kind, list_id, task, agent, ts_ms)).signature
        return cls(kind, task, agent, ts_ms, public_key, signature)

    def verifies(self, list_id: bytes) -> bool:
        if agent_id(self.public_key) != self.agent:
            return False
        try:
            VerifyKey(self.public_key).verify(attestation_message(self.kind, list_id, self.task, self.agent, self.ts_ms),
                                              self.signature)
        except (CryptoError, ValueError):
            return False
        return True

    def rank(self) -> tuple[int, int, bytes]:
        """Smallest wins: any Done before any Claimed; then earlier ``ts_ms``; then smaller agent id."""
        return (-self.kind, self.ts_ms, self.agent)


class Decoded(NamedTuple):
    """A checked message, ready to apply: states and deltas differ only in ``order``."""

    members: orset.DotStore
    order: rga_impl.State | rga_impl.Delta | None
    fields: list[tuple[bytes, int, lww.Entry]]
    records: list[Record]  # verified records that may change a winner
    dropped: int  # records that would have changed a winner but whose attestation did not verify


def encode_message(kind: str, list_id: bytes, members: orset.DotStore, order: bytes | None,
                   fields: list[tuple[bytes, int, lww.Entry]], records: list[bytes]) -> bytes:
    """A ``tasklist.state`` or ``tasklist.delta`` message from its parts (fields and records sorted here)."""
    body_fields = [[task, number, lww.entry_to_body(entry)] for task, number, entry in sorted(fields, key=lambda f: f[:2])]
    return encode(kind, VERSION, [list_id, orset.encode_body(members), order, body_fields, sorted(set(records))])


def _at_most(count: int, bound: int, limit: str, what: str) -> None:
    if count > bound:
        raise OverLimit(limit, f"{what}: {count:,}")


def decode_message(data: bytes, kind: str, list_id: bytes, worth_verifying=None) -> Decoded:
    """The checked content of a message of ``kind`` for list ``list_id``; raises only ``DecodeError``.

    ``worth_verifying(record)`` says whether a well-formed record could change anything at
    the receiver; the others are left out unverified (default: every record is verified).
    """
    body = expect_list(decode(data, kind, VERSION), f"{kind}: body", length=5)
    sender_list = expect_bytes(body[0], f"{kind}: list id", 32)
    if sender_list != list_id:
        raise DecodeError(f"{kind}: message of list {sender_list.hex()[:16]}…, this replica holds list {list_id.hex()[:16]}…")
    members = orset.decode_body(body[1], f"{kind}: members")
    for element in members.entries:
        if not isinstance(element, bytes) or len(element) != 32:
            raise DecodeError(f"{kind}: members: {element!r:.40} is not a 32-byte task id")
    order: rga_impl.State | rga_impl.Delta | None = None
    if kind == STATE_KIND:
        order = rga_impl.decode_state(expect_bytes(body[2], f"{kind}: order"))
        items = [item for _, _, item in order.elements] + [item for _, _, item in order.waiting]
    elif body[2] is not None:
        order = rga_impl.decode_delta(expect_bytes(body[2], f"{kind}: order"))
        items = [item for _, _, item in order.inserts]
    else:
        items = []
    for item in items:
        if not isinstance(item, bytes) or len(item) != 32:
            raise DecodeError(f"{kind}: order: item {item!r:.40} is not a 32-byte task id")
    fields = []
    previous: tuple[bytes, int] | None = None
    raw_fields = expect_list(body[3], f"{kind}: fields")
    _at_most(len(raw_fields), len(FIELDS) * MAX_TASKS, "MAX_TASKS", f"{kind}: field writes")
    for n, raw in enumerate(raw_fields):
        try:  # the place is named only when something is wrong (a state holds up to 4 x MAX_TASKS fields)
            task, number, entry = _field_from_body(raw, previous)
        except DecodeError as error:
            raise DecodeError(f"{kind}: fields[{n}]{error}") from None
        previous = (task, number)
        fields.append((task, number, entry))
    raw_records = expect_list(body[4], f"{kind}: records")
    _at_most(len(raw_records), 2 * MAX_TASKS, "MAX_TASKS", f"{kind}: checkbox records")
    records, dropped, last = [], 0, b""
    for n, raw in enumerate(raw_records):
        element = expect_bytes(raw, f"{kind}: records[{n}]")
        if element <= last:
            raise DecodeError(f"{kind}: records[{n}]: out of order (ascending, no repeats)")
        last = element
        try:
            record = Record.from_bytes(element)
        except ValueError as error:
            raise DecodeError(f"{kind}: records[{n}]: {error}") from None
        if worth_verifying is not None and not worth_verifying(record):
            continue
        if record.verifies(list_id):
            records.append(record)
        else:
            dropped += 1
    return Decoded(members, order, fields, records, dropped)


def _field_from_body(raw: Any, previous: tuple[bytes, int] | None) -> tuple[bytes, int, lww.Entry]:
    """One ``[task id, field, entry]`` of a message that follows the field ``previous``, each
    error's place relative to it."""
    task, number, entry_body = expect_list(raw, "", length=3)
    task = expect_bytes(task, "[0] (task id)", 32)
    number = expect_int(number, "[1] (field)", 0, len(FIELDS) - 1)
    if previous is not None and (task, number) <= previous:
        raise DecodeError(": out of order (sorted by task id and field, no repeats)")
    entry = lww.entry_from_body(entry_body, "[2]", allow_empty=False)
    _check_field_value(FIELDS[number], entry.value, "")
    return task, number, entry


def _check_field_value(name: str, value: Any, where: str) -> None:
    if name in ("title", "description"):
        ok = isinstance(value, str)
    elif name == "assignee":
        ok = value is None or (isinstance(value, bytes) and len(value) == 32)
    else:  # priority
        ok = type(value) is int and 0 <= value <= 255
    if not ok:
        raise DecodeError(f"{where}: {value!r:.40} is not a valid {name}")


class TaskList:
    """One agent's replica of a task list. See the module docstring."""

    def __init__(self, list_id: bytes, signing_key: SigningKey, clock: Clock, peer_id: int | None = None) -> None:
        if not isinstance(list_id, bytes) or len(list_id) != 32:
            raise ValueError(f"a list id is 32 bytes, got {list_id!r:.40}")
        self.list_id = list_id
        self.signing_key = signing_key
        self.public_key = bytes(signing_key.verify_key)
        self.agent_id = agent_id(self.public_key)
        self.peer_id = int.from_bytes(self.agent_id[:8], "big") if peer_id is None else peer_id
        self.clock = clock
        self.hlc = lww.HybridLogicalClock(clock)
        self._members = orset.DeltaORSet(self.peer_id)
        self._order = rga_impl.RGA(self.peer_id)
        self._fields: dict[tuple[bytes, int], lww.LWWRegister] = {}
        self._pending_fields: dict[tuple[bytes, int], lww.Entry] = {}
        self._checkbox: dict[tuple[bytes, int], Record] = {}  # (task, kind) -> the smallest record of that kind
        self._pending_records: dict[tuple[bytes, int], Record] = {}  # this agent's, since the last delta

    # ----- reading ----------------------------------------------------------------------

    def field(self, task: bytes, name: str) -> Any:
        register = self._fields.get((task, FIELDS.index(name)))
        return DEFAULTS[name] if register is None or register.entry is None else register.value()

    @staticmethod
    def _join_record(records: dict[tuple[bytes, int], Record], record: Record) -> bool:
        """Keep ``record`` if it ranks before the record of its task and kind held (the join
        of checkbox states); whether it did."""
        key = (record.task, record.kind)
        current = records.get(key)
        if current is not None and current.rank() <= record.rank():
            return False
        records[key] = record
        return True

    def _worth_verifying(self, record: Record) -> bool:
        current = self._checkbox.get((record.task, record.kind))
        return current is None or record.rank() < current.rank()

    def checkbox(self, task: bytes) -> tuple:
        """``("empty",)``, ``("claimed", agent_id, ts_ms)`` or ``("done", agent_id, ts_ms)``."""
        record = self._checkbox.get((task, DONE)) or self._checkbox.get((task, CLAIMED))
        if record is None:
            return ("empty",)
        return ("claimed" if record.kind == CLAIMED else "done", record.agent, record.ts_ms)

    def records(self, task: bytes) -> list[bytes]:
        """The checkbox records of ``task`` held here, Done first (for audits and tests)."""
        return [record.to_bytes() for kind in (DONE, CLAIMED) if (record := self._checkbox.get((task, kind)))]

    def order(self) -> list[bytes]:
        present, seen, out = self._members, set(), []
        for task in self._order.value():
            if task not in seen and task in present:
                seen.add(task)
                out.append(task)
        return out

    def value(self) -> tuple[tuple, ...]:
        """``(task_id, title, description, assignee, priority, checkbox)`` for each task, in order."""
        return tuple((task, *(self.field(task, name) for name in FIELDS), self.checkbox(task)) for task in self.order())

    # ----- local operations ---------------------------------------------------------------

    def _require(self, task: bytes) -> None:
        if task not in self._members:
            raise TaskRefused("not_found", f"no task {task.hex()[:16]}… in this list")

    def _write(self, task: bytes, name: str, value: Any) -> None:
        key = (task, FIELDS.index(name))
        register = self._fields.get(key)
        if register is None:
            register = self._fields[key] = lww.LWWRegister(self.peer_id, self.clock, self.hlc)
        register.write(value)
        self._pending_fields[key] = register.entry

    def add_task(self, title: str, description: str) -> bytes:
        """Add a task created now by this agent; returns its id."""
        if not isinstance(title, str) or not isinstance(description, str):
            raise TypeError("a task's title and description are strings")
        task = task_id(title, self.agent_id, to_millis(self.clock.now()))
        self._members.add(task)
        self._write(task, "title", title)
        self._write(task, "description", description)
        self._order.insert(len(self._order), task)
        return task

    def remove_task(self, task: bytes) -> None:
        self._require(task)
        self._members.remove(task)

    def set_field(self, task: bytes, name: str, value: Any) -> None:
        if name not in FIELDS:
            raise ValueError(f"unknown field {name!r}, expected one of {FIELDS}")
        try:
            _check_field_value(name, value, "set_field")
        except DecodeError as error:
            raise ValueError(str(error)) from None
        self._require(task)
        self._write(task, name, value)

    def _attest(self, kind: int, task: bytes) -> None:
        record = Record.sign(kind, self.list_id, task, self.signing_key, to_millis(self.clock.now()))
        self._join_record(self._checkbox, record)
        self._join_record(self._pending_records, record)

    def claim(self, task: bytes) -> None:
        """Claim ``task`` for this agent (also when another agent holds it: claims are not locks)."""
        self._require(task)
        if self.checkbox(task)[0] == "done":
            raise TaskRefused("already_done", f"task {task.hex()[:16]}… is already done")
        self._attest(CLAIMED, task)

    def complete(self, task: bytes) -> None:
        self._require(task)
        state = self.checkbox(task)[0]
        if state == "done":
            raise TaskRefused("already_done", f"task {task.hex()[:16]}… is already done")
        if state == "empty":
            raise TaskRefused("must_claim_first", f"task {task.hex()[:16]}… must be claimed before it is completed")
        self._attest(DONE, task)

    def move(self, task: bytes, index: int) -> None:
        """Put ``task`` at ``index`` of the list (past the end: last)."""
        if index < 0:
            raise ValueError(f"move to a negative index {index}")
        self._require(task)
        order = self._order
        for element in order.ids():
            if order.item_of(element) == task:
                order.delete_id(element)
        anchors, seen, present = [], set(), self._members
        for element in order.ids():
            item = order.item_of(element)
            if item not in seen and item in present:
                seen.add(item)
                anchors.append(element)
        index = min(index, len(anchors))
        order.insert_after(anchors[index - 1] if index else None, task)

    # ----- replication --------------------------------------------------------------------

    def _all_fields(self) -> list[tuple[bytes, int, lww.Entry]]:
        return [(task, number, reg.entry) for (task, number), reg in self._fields.items() if reg.entry is not None]

    def state(self) -> bytes:
        return encode_message(STATE_KIND, self.list_id, self._members.snapshot(), self._order.state(),
                              self._all_fields(), [record.to_bytes() for record in self._checkbox.values()])

    def take_deltas(self) -> list[bytes]:
        members = self._members.take_delta()
        order = self._order.take_deltas()
        records = [record.to_bytes() for record in self._pending_records.values()]
        fields = [(task, number, entry) for (task, number), entry in self._pending_fields.items()]
        self._pending_fields, self._pending_records = {}, {}
        if members is None and not order and not records and not fields:
            return []
        return [encode_message(DELTA_KIND, self.list_id, members or orset.DotStore(), order[0] if order else None,
                               fields, records)]

    def decode_state(self, data: bytes) -> Decoded:
        """A checked, admitted full state (``DecodeError`` / ``OverLimit`` if not)."""
        message = decode_message(data, STATE_KIND, self.list_id, self._worth_verifying)
        self.admit(message, STATE_KIND)
        return message

    def decode_delta(self, data: bytes) -> Decoded:
        """A checked, admitted delta (``DecodeError`` / ``OverLimit`` if not)."""
        message = decode_message(data, DELTA_KIND, self.list_id, self._worth_verifying)
        self.admit(message, DELTA_KIND)
        return message

    def admit(self, message: Decoded, what: str) -> None:
        """Refuse (``OverLimit``) a decoded message this replica must not apply; see the
        module docstring. Changes nothing."""
        self._members.admit(message.members, f"{what}: members")
        now = self.clock.now()
        for task, number, entry in message.fields:
            lww.admit(entry, now, f"{what}: field {FIELDS[number]} of task {task.hex()[:16]}…")
        field_tasks = {task for task, _ in self._fields}
        _at_most(len(field_tasks | {task for task, _, _ in message.fields}), MAX_TASKS, "MAX_TASKS",
                 f"{what}: tasks with fields after the join")
        checkbox_tasks = {task for task, _ in self._checkbox}
        _at_most(len(checkbox_tasks | {record.task for record in message.records}), MAX_TASKS, "MAX_TASKS",
                 f"{what}: tasks with checkbox states after the join")

    def apply(self, message: Decoded) -> None:
        """Join a decoded, admitted state or delta; cannot fail."""
        self._members.join(message.members)
        if isinstance(message.order, rga_impl.State):
            self._order.apply_state(message.order)
        elif message.order is not None:
            self._order.apply_decoded_delta(message.order)
        for task, number, entry in message.fields:
            register = self._fields.get((task, number))
            if register is None:
                register = self._fields[(task, number)] = lww.LWWRegister(self.peer_id, self.clock, self.hlc)
            register.join(entry)
        for record in message.records:
            self._join_record(self._checkbox, record)

    def merge(self, state: bytes) -> None:
        """Join a full state; ``DecodeError`` (and no change) if it is malformed."""
        self.apply(self.decode_state(state))

    def apply_delta(self, delta: bytes) -> None:
        """Join a delta; ``DecodeError`` (and no change) if it is malformed."""
        self.apply(self.decode_delta(delta))

    def __repr__(self) -> str:
        return f"TaskList(agent={self.agent_id.hex()[:8]}, tasks={len(self._members)})"
