"""A CRDT task list (after x0x): OR-Set membership, LWW fields, signed checkbox states, RGA order.

``TaskList(list_id, signing_key, clock, peer_id=...)`` is one agent's replica of one list.
It is a composition of the project's replicated types:

* membership: a ``DeltaORSet`` of task ids (add-wins);
* fields: per task, ``LWWRegister`` s ``title``, ``description``, ``assignee`` (an agent id
  or None) and ``priority`` (0..255, default 128), all stamped by one
  ``HybridLogicalClock``, so a replica's every write is above every write it has seen;
* checkbox states: a ``DeltaORSet`` of signed attestation records (below); a task's state
  is the smallest Done, else the smallest Claimed (earlier ``ts_ms``, then smaller agent
  id), else Empty;
* order: an ``RGA`` of task ids; add appends, move deletes and re-inserts; the list shows
  the first occurrence of each id that is a member.

Identities. ``AgentId = BLAKE3(ed25519 public key)``;
``TaskId = BLAKE3(title utf-8 || creator agent id || created_at_ms as u64 little-endian)``.

Attestations. A claim or completion is signed by the acting agent (Ed25519, PyNaCl) over
``domain || list_id(32) || task_id(32) || agent_id(32) || ts_ms(u64 big-endian)``, with
domain ``x0x.task.claim.v2`` or ``x0x.task.complete.v2``. The record stored in the set is
``kind(1: 1 claimed, 2 done) || task_id || agent_id || ts_ms(8, BE) || public_key(32) ||
signature(64)``, 169 bytes, so the key travels with the state. A record *verifies* when
``BLAKE3(public_key) == agent_id`` and the signature is valid for this list. Records that
do not verify are dropped when a state or delta arrives (their dots too, so a tampered
copy cannot shadow the genuine record).

Wire (``implementations.wire``), kinds ``tasklist.state`` and ``tasklist.delta``, version 1,
body ``[list_id, members, order, fields, checkbox]``: ``members`` and ``checkbox`` are
OR-Set bodies (``implementations.orset.encode_body``); ``order`` is the bytes of an
``rga.state`` (or, in a delta, an ``rga.delta`` or nil); ``fields`` is ``[[task_id,
field_number, [wall_ns, counter, writer, value]], ...]`` sorted by task and field. A
message of another list is refused. Decoding (``decode_state``/``decode_delta``) checks
the whole message and verifies attestations, raising only ``DecodeError``; ``apply``
cannot fail.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import blake3
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

from implementations import lww, orset
from implementations import rga as rga_impl
from implementations.wire import DecodeError, decode, encode, expect_bytes, expect_int, expect_list
from models.clock import Clock, to_millis

STATE_KIND, DELTA_KIND, VERSION = "tasklist.state", "tasklist.delta", 1
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
    checkbox: orset.DotStore
    dropped: int  # checkbox records whose attestation did not verify


def encode_message(kind: str, list_id: bytes, members: orset.DotStore, order: bytes | None,
                   fields: list[tuple[bytes, int, lww.Entry]], checkbox: orset.DotStore) -> bytes:
    """A ``tasklist.state`` or ``tasklist.delta`` message from its parts (fields sorted here)."""
    body_fields = [[task, number, lww.entry_to_body(entry)] for task, number, entry in sorted(fields, key=lambda f: f[:2])]
    return encode(kind, VERSION, [list_id, orset.encode_body(members), order, body_fields, orset.encode_body(checkbox)])


def _without_dots(store: orset.DotStore, dots: set[tuple[int, int]]) -> orset.DotStore:
    """``store`` with ``dots`` gone from its entries and its context, as if never sent."""
    clean = store.copy()
    for dot in dots:
        if dot in clean.owner:
            clean.discard(dot)
    context = clean.context
    for replica, seq in dots:
        known = context.vector.get(replica, 0)
        if seq <= known:
            context.vector[replica] = seq - 1
            if seq - 1 == 0:
                del context.vector[replica]
            context.cloud.setdefault(replica, set()).update(range(seq + 1, known + 1))
        else:
            context.cloud.get(replica, set()).discard(seq)
        if replica in context.cloud and not context.cloud[replica]:
            del context.cloud[replica]
    return clean


def decode_message(data: bytes, kind: str, list_id: bytes, verified: set[bytes] | None = None) -> Decoded:
    """The checked content of a message of ``kind`` for list ``list_id``; raises only ``DecodeError``.

    ``verified`` is a cache of records known to verify (read, and added to).
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
    for n, raw in enumerate(expect_list(body[3], f"{kind}: fields")):
        where = f"{kind}: fields[{n}]"
        task, number, entry_body = expect_list(raw, where, length=3)
        key = (expect_bytes(task, f"{where}[0] (task id)", 32), expect_int(number, f"{where}[1] (field)", 0, len(FIELDS) - 1))
        if previous is not None and key <= previous:
            raise DecodeError(f"{where}: out of order (sorted by task id and field, no repeats)")
        previous = key
        entry = lww.entry_from_body(entry_body, f"{where}[2]", allow_empty=False)
        _check_field_value(FIELDS[key[1]], entry.value, where)
        fields.append((key[0], key[1], entry))
    checkbox = orset.decode_body(body[4], f"{kind}: checkbox")
    bad: set[tuple[int, int]] = set()
    for element, dots in checkbox.entries.items():
        if not isinstance(element, bytes):
            raise DecodeError(f"{kind}: checkbox: {element!r:.40} is not a record")
        try:
            record = Record.from_bytes(element)
        except ValueError as error:
            raise DecodeError(f"{kind}: checkbox: {error}") from None
        if verified is not None and element in verified:
            continue
        if record.verifies(list_id):
            if verified is not None:
                verified.add(element)
        else:
            bad |= dots
    if bad:
        checkbox = _without_dots(checkbox, bad)
    return Decoded(members, order, fields, checkbox, len(bad))


def _check_field_value(name: str, value: Any, where: str) -> None:
    ok = {
        "title": isinstance(value, str),
        "description": isinstance(value, str),
        "assignee": value is None or (isinstance(value, bytes) and len(value) == 32),
        "priority": type(value) is int and 0 <= value <= 255,
    }[name]
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
        self._checkbox = orset.DeltaORSet(self.peer_id)
        self._verified: set[bytes] = set()
        self._best: dict[bytes, Record] = {}  # task -> its winning record, kept up to date

    # ----- reading ----------------------------------------------------------------------

    def field(self, task: bytes, name: str) -> Any:
        register = self._fields.get((task, FIELDS.index(name)))
        return DEFAULTS[name] if register is None or register.entry is None else register.value()

    def _states(self) -> dict[bytes, Record]:
        return self._best

    def _note(self, record: Record) -> None:
        """A record joined the set: it wins its task if it ranks below the current winner."""
        current = self._best.get(record.task)
        if current is None or record.rank() < current.rank():
            self._best[record.task] = record

    def _rebuild(self) -> None:
        self._best = {}
        for element in self._checkbox.value():
            self._note(Record.from_bytes(element))

    def checkbox(self, task: bytes) -> tuple:
        """``("empty",)``, ``("claimed", agent_id, ts_ms)`` or ``("done", agent_id, ts_ms)``."""
        record = self._states().get(task)
        if record is None:
            return ("empty",)
        return ("claimed" if record.kind == CLAIMED else "done", record.agent, record.ts_ms)

    def records(self, task: bytes) -> list[tuple[bytes, frozenset[tuple[int, int]]]]:
        """Every checkbox record of ``task`` held here, with its dots (for audits and tests)."""
        return [(element, self._checkbox.dots(element)) for element in self._checkbox.elements()
                if element[1:33] == task]

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
        record = Record.sign(kind, self.list_id, task, self.signing_key, to_millis(self.clock.now())).to_bytes()
        self._verified.add(record)
        self._checkbox.add(record)
        self._note(Record.from_bytes(record))

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
                              self._all_fields(), self._checkbox.snapshot())

    def take_deltas(self) -> list[bytes]:
        members = self._members.take_delta()
        order = self._order.take_deltas()
        checkbox = self._checkbox.take_delta()
        fields = [(task, number, entry) for (task, number), entry in self._pending_fields.items()]
        self._pending_fields = {}
        if members is None and not order and checkbox is None and not fields:
            return []
        return [encode_message(DELTA_KIND, self.list_id, members or orset.DotStore(), order[0] if order else None,
                               fields, checkbox or orset.DotStore())]

    def decode_state(self, data: bytes) -> Decoded:
        return decode_message(data, STATE_KIND, self.list_id, self._verified)

    def decode_delta(self, data: bytes) -> Decoded:
        return decode_message(data, DELTA_KIND, self.list_id, self._verified)

    def apply(self, message: Decoded) -> None:
        """Join a decoded state or delta; cannot fail."""
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
        incoming = message.checkbox
        if incoming.owner or incoming.context.vector or incoming.context.cloud:
            known = self._checkbox
            before = len(known)
            new = [element for element in incoming.entries if element not in known]
            known.join(incoming)
            if len(known) == before + len(new) and all(element in known for element in new):
                for element in new:
                    self._note(Record.from_bytes(element))
            else:  # a record was dropped (or one was not taken): recompute every winner
                self._rebuild()

    def merge(self, state: bytes) -> None:
        """Join a full state; ``DecodeError`` (and no change) if it is malformed."""
        self.apply(self.decode_state(state))

    def apply_delta(self, delta: bytes) -> None:
        """Join a delta; ``DecodeError`` (and no change) if it is malformed."""
        self.apply(self.decode_delta(delta))

    def __repr__(self) -> str:
        return f"TaskList(agent={self.agent_id.hex()[:8]}, tasks={len(self._members)})"
