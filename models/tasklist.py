"""The CRDT task list (x0x): a composition of an OR-Set, LWW registers and an RGA.

A replica's knowledge is its *history*: the set of parts of operations it has seen.
Merging is union; the list's value is a pure function of the history. Each part belongs
to one component, and each component is read by its own model:

* ``Member(op)``: membership, an OR-Set (``models.orset``) of task ids. Adding a task adds
  its id; removing a task removes the tags of its id the replica observes. Add wins.
* ``Field(task, name, write)``: the LWW registers (``models.lww``) of a task: ``title``,
  ``description``, ``assignee`` (an agent id or None) and ``priority`` (0 to 255). A field
  never written reads ``""``, ``""``, None and 128. Every register of a replica shares
  one timestamp rule: a new write's timestamp is ``lww.next_timestamp`` over *every* field
  write the replica has seen, of every task.
* ``Checkbox(op)``: the checkbox states of every task, an OR-Set of ``Attested(task,
  state, authentic)``; a state is ``Claimed(agent, ts_ms)`` or ``Done(agent, ts_ms)``.
  ``authentic`` says whether the state's signed attestation verifies; the model does no
  cryptography, it is told. States that are not authentic are ignored: a replica drops
  them when they arrive.
* ``Order(op)``: the order, an RGA (``models.rga``) of task ids.

Resolution of a task's checkbox: if any Done state is known, the smallest Done wins; else
the smallest Claimed; else Empty. States are ordered Empty < Claimed < Done, and within a
variant by earlier ``ts_ms``, then smaller agent id. So a merge that brings a strictly
earlier claim displaces the winner: claims are not locks.

Order: adding a task appends its id after the last visible element of the RGA; moving a
task deletes every visible element holding its id and inserts a new one so that the task
lands at position ``index`` of the list (past the end: last). The list's order is the
RGA's sequence keeping the first occurrence of each id and only the ids that are members
(concurrent moves of one task leave two elements; a removed task leaves one).

Local guards (a refused operation makes no parts): every operation on a task that is not
a member is refused "not_found"; claiming a Done task is "already_done"; completing an
Empty task is "must_claim_first", completing a Done task "already_done". Any agent may
re-claim a claimed task, and any agent may complete a claimed task.

Task ids are computed by the caller (``BLAKE3(title || creator agent id || created_at_ms
little-endian)``); the model needs no hash. The value is a tuple of ``TaskView``, in order.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from models import lww, orset, rga

FIELDS = ("title", "description", "assignee", "priority")
DEFAULTS = {"title": "", "description": "", "assignee": None, "priority": 128}


@attrs.frozen
class Empty:
    """No agent has claimed the task."""


@attrs.frozen
class Claimed:
    agent: bytes
    ts_ms: int


@attrs.frozen
class Done:
    agent: bytes
    ts_ms: int


State = Empty | Claimed | Done
RANK = {Empty: 0, Claimed: 1, Done: 2}


def state_order(state: State) -> tuple:
    """Empty < Claimed < Done; within a variant earlier ts_ms first, then smaller agent id."""
    if isinstance(state, Empty):
        return (0, 0, b"")
    return (RANK[type(state)], state.ts_ms, state.agent)


@attrs.frozen
class Attested:
    """A checkbox state of ``task``, and whether its attestation verifies."""

    task: bytes
    state: Claimed | Done
    authentic: bool


@attrs.frozen
class Member:
    op: orset.Add | orset.Remove


@attrs.frozen
class Field:
    task: bytes
    name: str
    write: lww.Write


@attrs.frozen
class Checkbox:
    op: orset.Add


@attrs.frozen
class Order:
    op: rga.Insert | rga.Delete


Part = Member | Field | Checkbox | Order


@attrs.frozen
class Refusal:
    """A local guard refused the operation: ``kind`` is "not_found", "already_done" or "must_claim_first"."""

    kind: str


@attrs.frozen
class TaskView:
    id: bytes
    title: str
    description: str
    assignee: bytes | None
    priority: int
    checkbox: State


# ----- reading the history ------------------------------------------------------------


def members(history: Iterable[Part]) -> frozenset[bytes]:
    return orset.value(p.op for p in history if isinstance(p, Member))


def order_ops(history: Iterable[Part]) -> list:
    return [p.op for p in history if isinstance(p, Order)]


def field(history: Iterable[Part], task: bytes, name: str):
    """The value of ``task``'s field ``name``: the greatest write's, or the default."""
    writes = [p.write for p in history if isinstance(p, Field) and p.task == task and p.name == name]
    return lww.value(writes) if writes else DEFAULTS[name]


def checkbox(history: Iterable[Part], task: bytes) -> State:
    """The smallest authentic Done, else the smallest authentic Claimed, else Empty."""
    states = [a.state for a in orset.value(p.op for p in history if isinstance(p, Checkbox))
              if a.task == task and a.authentic]
    for variant in (Done, Claimed):
        candidates = [s for s in states if isinstance(s, variant)]
        if candidates:
            return min(candidates, key=state_order)
    return Empty()


def order(history: Iterable[Part]) -> list[bytes]:
    """The RGA's sequence, first occurrence of each id, members only."""
    history = list(history)
    present, seen = members(history), []
    for task in rga.value(order_ops(history)):
        if task in present and task not in seen:
            seen.append(task)
    return seen


def value(history: Iterable[Part]) -> tuple[TaskView, ...]:
    history = list(history)
    return tuple(
        TaskView(task, *(field(history, task, name) for name in FIELDS), checkbox(history, task))
        for task in order(history)
    )


# ----- local operations: the parts a replica makes, or a refusal --------------------------


def _write(history: list[Part], replica: int, task: bytes, name: str, new, now_ns: int) -> Field:
    seen = [p.write.timestamp for p in history if isinstance(p, Field)]
    return Field(task, name, lww.Write(lww.next_timestamp(seen, now_ns), replica, new))


def _check(history: list[Part], task: bytes) -> Refusal | None:
    return None if task in members(history) else Refusal("not_found")


def add_task(history: Iterable[Part], replica: int, task: bytes, title: str, description: str,
             now_ns: int) -> tuple[Part, ...]:
    """Add ``task`` (id computed by the caller) with its title and description, at the end."""
    history = list(history)
    parts: list[Part] = [Member(orset.Add(task, orset.next_tag([p.op for p in history if isinstance(p, Member)], replica)))]
    for name, new in (("title", title), ("description", description)):
        parts.append(_write(history + parts, replica, task, name, new, now_ns))
    ops = order_ops(history)
    parts.append(Order(rga.insert_at(ops, replica, len(rga.value(ops)), task)))
    return tuple(parts)


def remove_task(history: Iterable[Part], replica: int, task: bytes) -> tuple[Part, ...] | Refusal:
    history = list(history)
    refusal = _check(history, task)
    if refusal:
        return refusal
    observed = orset.observed_tags([p.op for p in history if isinstance(p, Member)], task)
    return (Member(orset.Remove(task, observed)),)


def set_field(history: Iterable[Part], replica: int, task: bytes, name: str, new, now_ns: int) -> tuple[Part, ...] | Refusal:
    history = list(history)
    if name not in FIELDS:
        raise ValueError(f"unknown field {name!r}, expected one of {FIELDS}")
    return _check(history, task) or (_write(history, replica, task, name, new, now_ns),)


def _attest(history: list[Part], replica: int, task: bytes, state: Claimed | Done) -> tuple[Part, ...]:
    tag = orset.next_tag([p.op for p in history if isinstance(p, Checkbox)], replica)
    return (Checkbox(orset.Add(Attested(task, state, True), tag)),)


def claim(history: Iterable[Part], replica: int, task: bytes, agent: bytes, ts_ms: int) -> tuple[Part, ...] | Refusal:
    history = list(history)
    refusal = _check(history, task)
    if refusal:
        return refusal
    if isinstance(checkbox(history, task), Done):
        return Refusal("already_done")
    return _attest(history, replica, task, Claimed(agent, ts_ms))


def complete(history: Iterable[Part], replica: int, task: bytes, agent: bytes, ts_ms: int) -> tuple[Part, ...] | Refusal:
    history = list(history)
    refusal = _check(history, task)
    if refusal:
        return refusal
    current = checkbox(history, task)
    if isinstance(current, Done):
        return Refusal("already_done")
    if isinstance(current, Empty):
        return Refusal("must_claim_first")
    return _attest(history, replica, task, Done(agent, ts_ms))


def forged(history: Iterable[Part], task: bytes, state: Claimed | Done, forger: int) -> Checkbox:
    """A state whose attestation does not verify, arriving from ``forger`` (it is ignored)."""
    tag = orset.next_tag([p.op for p in history if isinstance(p, Checkbox)], forger)
    return Checkbox(orset.Add(Attested(task, state, False), tag))


def move(history: Iterable[Part], replica: int, task: bytes, index: int) -> tuple[Part, ...] | Refusal:
    """Delete ``task``'s visible elements; insert it so it lands at ``index`` (clamped to the end)."""
    history = list(history)
    if index < 0:
        raise ValueError(f"move to a negative index {index}")
    refusal = _check(history, task)
    if refusal:
        return refusal
    ops = order_ops(history)
    items = {op.id: op.item for op in ops if isinstance(op, rga.Insert)}
    deletes = [rga.Delete(i) for i in rga.visible_ids(ops) if items[i] == task]
    present, first = members(history), {}
    for i in rga.visible_ids(ops + deletes):
        if items[i] in present and items[i] not in first:
            first[items[i]] = i
    anchors = list(first.values())
    index = min(index, len(anchors))
    parent = anchors[index - 1] if index > 0 else None
    insert = rga.Insert(rga.next_id(ops, replica), parent, task)
    return tuple(Order(op) for op in [*deletes, insert])
