"""The CRDT task list (x0x): a composition of an OR-Set, LWW registers and an RGA.

A replica's knowledge is its *history*: the set of parts of operations it has seen;
merging is union. Each part belongs to one component, read by that component's model:

* ``Member(op)``: membership, an OR-Set (``models.orset``) of task ids. Adding a task adds
  its id; removing a task removes the tags of its id the replica observes. Add wins.
* ``Field(task, name, write)``: the LWW registers (``models.lww``) of a task: ``title``,
  ``description``, ``assignee`` (an agent id or None) and ``priority`` (0 to 255). A field
  never written reads ``""``, ``""``, None and 128. Every register of a replica shares
  one timestamp rule: a new write's timestamp is ``lww.next_timestamp`` over *every* field
  write the replica has seen, of every task.
* ``Checkbox(op)``: the checkbox states of every task, an OR-Set of ``Attested(task,
  state, authentic)``; a state is ``Claimed(agent, ts_ms)`` or ``Done(agent, ts_ms)``.
  ``authentic``: whether its signed attestation verifies (the model is told; it does no
  cryptography). States that are not authentic are ignored (replicas drop them).
* ``Order(op)``: the order, an RGA (``models.rga``) of task ids.

Checkbox resolution: the smallest Done if any, else the smallest Claimed, else Empty
(Empty < Claimed < Done; within a variant earlier ``ts_ms``, then smaller agent id). Only an
authentic state ahead in that order displaces the winner (claims are not locks; nothing removes one).

Order: adding a task appends its id after the last visible element of the RGA; moving a
task deletes every visible element holding its id and inserts a new one so that the task
lands at position ``index`` of the list (past the end: last). The list's order is the
RGA's sequence keeping the first occurrence of each id and only the ids that are members
(concurrent moves of one task leave two elements; a removed task leaves one). Deltas are
not delivered in causal order: a member whose element hangs under an element not seen yet
is not listed until that element arrives.

Local guards (a refused operation makes no parts): any operation on a non-member task is
"not_found"; claiming or completing a Done task is "already_done"; completing an Empty task
is "must_claim_first". Any agent may re-claim a claimed task, or complete it.

The caller computes task ids (``BLAKE3(title || creator agent id || created_at_ms LE)``).
The value is a tuple of ``TaskView``, in list order.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from models import lww, orset, rga

FIELDS = ("title", "description", "assignee", "priority")
DEFAULTS = {"title": "", "description": "", "assignee": None, "priority": 128}


@attrs.frozen
class Empty:
    pass


@attrs.frozen
class Claimed:
    agent: bytes
    ts_ms: int


@attrs.frozen
class Done:
    agent: bytes
    ts_ms: int


State = Empty | Claimed | Done


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
    op: orset.Add  # of an ``Attested``


@attrs.frozen
class Order:
    op: rga.Insert | rga.Delete


Part = Member | Field | Checkbox | Order


@attrs.frozen
class Refusal:
    kind: str  # "not_found", "already_done" or "must_claim_first"


@attrs.frozen
class TaskView:
    id: bytes
    title: str
    description: str
    assignee: bytes | None
    priority: int
    checkbox: State


# ----- reading the history ------------------------------------------------------------


def ops(history: Iterable[Part], component: type) -> list:
    """The operations of one component (``Member``, ``Checkbox`` or ``Order``)."""
    return [p.op for p in history if isinstance(p, component)]


def members(history: Iterable[Part]) -> frozenset[bytes]:
    return orset.value(ops(history, Member))


def field(history: Iterable[Part], task: bytes, name: str):
    """The value of ``task``'s field ``name``: the greatest write's, or the default."""
    writes = [p.write for p in history if isinstance(p, Field) and p.task == task and p.name == name]
    return lww.value(writes) if writes else DEFAULTS[name]


def checkbox(history: Iterable[Part], task: bytes) -> State:
    """The smallest authentic Done, else the smallest authentic Claimed, else Empty;
    within a variant, earlier ``ts_ms`` first, then the smaller agent id."""
    states = [a.state for a in orset.value(ops(history, Checkbox)) if a.task == task and a.authentic]
    for variant in (Done, Claimed):
        candidates = [s for s in states if isinstance(s, variant)]
        if candidates:
            return min(candidates, key=lambda s: (s.ts_ms, s.agent))
    return Empty()


def order(history: Iterable[Part]) -> list[bytes]:
    """The RGA's sequence, first occurrence of each id, members only."""
    history = list(history)
    present, seen = members(history), []
    for task in rga.value(ops(history, Order)):
        if task in present and task not in seen:
            seen.append(task)
    return seen


def value(history: Iterable[Part]) -> tuple[TaskView, ...]:
    history = list(history)
    return tuple(TaskView(task, *(field(history, task, n) for n in FIELDS), checkbox(history, task)) for task in order(history))


# ----- local operations: the parts a replica makes, or a refusal --------------------------


def _write(history: list[Part], replica: int, task: bytes, name: str, new, now_ns: int) -> Field:
    seen = [p.write.timestamp for p in history if isinstance(p, Field)]
    return Field(task, name, lww.Write(lww.next_timestamp(seen, now_ns), replica, new))


def _missing(history: list[Part], task: bytes) -> Refusal | None:
    return None if task in members(history) else Refusal("not_found")


def add_task(history: Iterable[Part], replica: int, task: bytes, title: str, description: str,
             now_ns: int) -> tuple[Part, ...]:
    """Add ``task`` (id computed by the caller) with its title and description, at the end."""
    history = list(history)
    parts: list[Part] = [Member(orset.Add(task, orset.next_tag(ops(history, Member), replica)))]
    for name, new in (("title", title), ("description", description)):
        parts.append(_write(history + parts, replica, task, name, new, now_ns))
    sequence = ops(history, Order)
    parts.append(Order(rga.insert_at(sequence, replica, len(rga.value(sequence)), task)))
    return tuple(parts)


def remove_task(history: Iterable[Part], replica: int, task: bytes) -> tuple[Part, ...] | Refusal:
    history = list(history)
    return _missing(history, task) or (Member(orset.Remove(task, orset.observed_tags(ops(history, Member), task))),)


def set_field(history: Iterable[Part], replica: int, task: bytes, name: str, new, now_ns: int) -> tuple[Part, ...] | Refusal:
    history = list(history)
    if name not in FIELDS:
        raise ValueError(f"unknown field {name!r}, expected one of {FIELDS}")
    return _missing(history, task) or (_write(history, replica, task, name, new, now_ns),)


def _attest(history: list[Part], replica: int, state: Attested) -> tuple[Part, ...]:
    return (Checkbox(orset.Add(state, orset.next_tag(ops(history, Checkbox), replica))),)


def claim(history: Iterable[Part], replica: int, task: bytes, agent: bytes, ts_ms: int) -> tuple[Part, ...] | Refusal:
    """Any agent may claim a task that is not done (also one another agent claimed)."""
    history = list(history)
    refusal = _missing(history, task)
    if not refusal and isinstance(checkbox(history, task), Done):
        refusal = Refusal("already_done")
    return refusal or _attest(history, replica, Attested(task, Claimed(agent, ts_ms), True))


def complete(history: Iterable[Part], replica: int, task: bytes, agent: bytes, ts_ms: int) -> tuple[Part, ...] | Refusal:
    """Any agent may complete a claimed task."""
    history = list(history)
    refusal = _missing(history, task)
    if not refusal:
        current = checkbox(history, task)
        if isinstance(current, Done):
            refusal = Refusal("already_done")
        elif isinstance(current, Empty):
            refusal = Refusal("must_claim_first")
    return refusal or _attest(history, replica, Attested(task, Done(agent, ts_ms), True))


def forged(history: Iterable[Part], task: bytes, state: Claimed | Done, forger: int) -> Checkbox:
    """A state whose attestation does not verify, arriving from ``forger`` (it is ignored)."""
    return _attest(list(history), forger, Attested(task, state, False))[0]


def move(history: Iterable[Part], replica: int, task: bytes, index: int) -> tuple[Part, ...] | Refusal:
    """Delete ``task``'s visible elements; insert it so it lands at ``index`` (clamped to the end)."""
    history = list(history)
    if index < 0:
        raise ValueError(f"move to a negative index {index}")
    refusal = _missing(history, task)
    if refusal:
        return refusal
    sequence = ops(history, Order)
    items = {op.id: op.item for op in sequence if isinstance(op, rga.Insert)}
    deletes = [rga.Delete(i) for i in rga.visible_ids(sequence) if items[i] == task]
    present, first = members(history), {}
    for i in rga.visible_ids(sequence + deletes):  # the first element of each member left
        if items[i] in present and items[i] not in first:
            first[items[i]] = i
    anchors = list(first.values())
    index = min(index, len(anchors))
    insert = rga.Insert(rga.next_id(sequence, replica), anchors[index - 1] if index else None, task)
    return tuple(Order(op) for op in [*deletes, insert])
