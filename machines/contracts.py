"""The whole contract between a machine and an implementation.

A machine never touches an implementation directly: it makes replicas through the
``make_replica(replica_id, clock)`` function of a registered ``harness.Implementation`` and
talks to them only through the protocol of their type below. ``replica_id`` is a small
non-negative integer, unique within a run; ``clock`` is the replica's own ``Clock`` (the
machine skews replicas' clocks on purpose).

Replication, for every type:

* ``state()`` is the replica's full state as it goes on the wire; ``merge(state)`` joins a
  state received from another replica.
* ``take_deltas()`` returns the deltas of the operations made *at this replica* since the
  last call (not ones it received), and empties that buffer; ``apply_delta(delta)`` joins
  one. A delta may arrive late, twice, out of order, or never.
* Bytes that are not a valid state or delta raise ``implementations.wire.DecodeError`` (or
  the implementation's own documented error) and change nothing.

Operations a type refuses (completing an unclaimed task, moving an unknown id) raise
``Refused`` with the kind the model uses, so a machine compares kinds, not messages.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence, Set
from typing import Any, Protocol, runtime_checkable

import attrs


class Refused(Exception):
    """An operation refused by an implementation's local guard.

    ``kind`` is one of the model's refusal kinds (``"not_found"``, ``"already_done"``,
    ``"must_claim_first"``, ...); ``detail`` is the implementation's own message.
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@runtime_checkable
class Replica(Protocol):
    """What every replica offers for replication."""

    def state(self) -> bytes: ...
    def merge(self, state: bytes) -> None: ...
    def take_deltas(self) -> list[bytes]: ...
    def apply_delta(self, delta: bytes) -> None: ...


@runtime_checkable
class SetReplica(Replica, Protocol):
    """One replica of a replicated set (OR-Set): add-wins."""

    def add(self, element: Hashable) -> None: ...
    def remove(self, element: Hashable) -> None: ...
    def value(self) -> frozenset: ...


@runtime_checkable
class RegisterReplica(Replica, Protocol):
    """One replica of a last-writer-wins register; ``value()`` is None before any write."""

    def write(self, value: Hashable) -> None: ...
    def value(self) -> Hashable | None: ...


@runtime_checkable
class SequenceReplica(Replica, Protocol):
    """One replica of a replicated sequence (RGA): items are one-character strings."""

    def insert(self, index: int, item: str) -> None: ...
    def delete(self, index: int) -> None: ...
    def value(self) -> Sequence[str]: ...


@runtime_checkable
class IdentifiedSequence(Protocol):
    """Optional for a ``SequenceReplica`` of level ``exact``: what lets the machine check more.

    ``ids()`` are the ids of the visible elements in order, as the model names them:
    ``(counter, replica)`` with ``replica`` the ``replica_id`` the machine made it with (equal
    characters are then told apart). ``craft_delta(inserts, deletes)`` returns bytes that
    ``apply_delta`` of any replica accepts, carrying exactly these operations: inserts
    ``(id, parent, item)`` (parent None: the head) and deletes (ids), with ids of the
    adversary's choosing; the ``rga`` machine's ``hostile`` rule runs only if it is there.
    """

    def ids(self) -> Sequence[tuple[int, int]]: ...
    def craft_delta(self, inserts: list, deletes: list) -> bytes: ...


@runtime_checkable
class IndexedSequence(Protocol):
    """Optional for a ``SequenceReplica`` of level ``exact``: ids mapped to places and back, as an
    editor's cursor or a task list's order (which edits by id) uses them. ``id_at(index)`` is the
    id of the visible element at ``index``; ``index_of(id)`` its visible index, None once deleted
    or if not known; ``knows(id)`` whether the element is in the document (visible or deleted: an
    insert still waiting for its parent is not); ``item_of(id)`` its item, deleted or not;
    iterating gives ``value()``; ``insert_after(id, item)`` inserts right after a known element,
    visible or deleted (None: at the head), and returns the new element's id; ``delete_id(id)``
    deletes a known element (sent with the next deltas, deleted already or not) and returns
    whether it was visible; ``delete(index)`` returns the id it deleted. An index past the
    end raises ``IndexError``, an id not known (or not a pair) ``KeyError``, each naming it. The
    ``rga`` machine inserts by id and checks the rest after every step that changed what the
    replica has seen."""

    def insert_after(self, parent: tuple[int, int] | None, item: str) -> tuple[int, int]: ...
    def delete_id(self, element: tuple[int, int]) -> bool: ...
    def id_at(self, index: int) -> tuple[int, int]: ...
    def index_of(self, element: tuple[int, int]) -> int | None: ...
    def knows(self, element: tuple[int, int]) -> bool: ...
    def item_of(self, element: tuple[int, int]) -> Hashable: ...
    def __iter__(self) -> Iterator[str]: ...


def _is_set(value: Any) -> bool:
    return type(value) is frozenset or isinstance(value, Set)  # the common case first: checked after every step


def _is_sequence_of_items(value: Any) -> bool:
    return isinstance(value, (Sequence, str)) and all(isinstance(item, str) for item in value)


def _is_hashable(value: Any) -> bool:
    return isinstance(value, Hashable)


#: For each machine: the protocol its replicas keep, and what their ``value()`` must return.
CONTRACTS: dict[str, tuple[type, dict]] = {
    "orset": (SetReplica, {"value": (_is_set, "a set (frozenset)")}),
    "lww": (RegisterReplica, {"value": (_is_hashable, "a hashable value or None")}),
    "rga": (SequenceReplica, {"value": (_is_sequence_of_items, "a sequence of one-character strings")}),
}


@attrs.frozen
class Operation:
    """An operation an implementation may declare it supports (``Implementation.operations``).

    ``method`` is the protocol method it calls; ``rules`` are the machine's rules (and steps)
    that draw it. A rule runs when any operation that draws it is supported.
    """

    method: str
    rules: tuple[str, ...]
    description: str


#: For each machine: the operations an implementation may declare, by name. An
#: implementation that declares a subset is driven only by those (an append-only sequence
#: declares ``{"insert_end"}``) and need not offer the methods of the others; declaring a
#: name not listed here is an error.
OPERATIONS: dict[str, dict[str, Operation]] = {
    "orset": {
        "add": Operation("add", ("add",), "add an element"),
        "remove": Operation("remove", ("remove",), "remove an element"),
    },
    "lww": {
        "write": Operation("write", ("write", "write_and_broadcast"), "write a value"),
    },
    "rga": {
        "insert": Operation("insert", ("insert",), "insert an item at any index"),
        "insert_end": Operation("insert", ("insert",), "insert an item at the end only (an append-only sequence)"),
        "delete": Operation("delete", ("delete",), "delete the item at an index"),
    },
}


@runtime_checkable
class TaskListReplica(Replica, Protocol):
    """One agent's replica of a CRDT task list (x0x), as the task-list machine sees it.

    ``agent_id`` is the replica's agent id (``BLAKE3(public key)``, 32 bytes); the machine
    computes task ids itself (``BLAKE3(title || creator agent id || created_at_ms LE)``)
    and compares them with what ``add_task`` returns. ``value()`` is a tuple of
    ``models.tasklist.TaskView`` (the adapter translates), in list order. Refusals raise
    ``Refused`` with the model's kind: ``"not_found"``, ``"already_done"``,
    ``"must_claim_first"``.

    ``forge`` is the attacker: it returns bytes that, delivered to any replica (a
    ``tasklist.delta`` for ``apply_delta``, or with ``whole_state`` a ``tasklist.state`` for
    ``merge``), carry one checkbox state of ``task_id`` (``"claimed"`` or ``"done"``, naming
    the agent of replica ``agent``, at ``ts_ms``) whose attestation does *not* verify, made
    as ``how`` says (one of ``FORGERIES``). It changes no replica. A correct replica drops
    that state; the model is told the state is not authentic.
    """

    agent_id: bytes

    def add_task(self, title: str, description: str) -> bytes: ...
    def remove_task(self, task_id: bytes) -> None: ...
    def claim(self, task_id: bytes) -> None: ...
    def complete(self, task_id: bytes) -> None: ...
    def set_field(self, task_id: bytes, field: str, value: Any) -> None: ...
    def move(self, task_id: bytes, index: int) -> None: ...
    def value(self) -> tuple: ...
    def forge(self, task_id: bytes, state: str, agent: int, ts_ms: int, how: str, whole_state: bool) -> bytes: ...


#: How ``TaskListReplica.forge`` may spoil an attestation.
FORGERIES = (
    "flipped_signature",  # signed by the named agent, then one signature byte flipped
    "wrong_key",  # signed by an outsider, carrying the outsider's key: agent id != BLAKE3(key)
    "impostor",  # signed by an outsider, carrying the named agent's real public key
    "other_list",  # signed by the named agent, but for another list id
    "swapped_domain",  # the named agent's claim signature presented as a completion (or back)
    "shifted_ts",  # signed by the named agent at ts_ms + 1, presented at ts_ms
    # a copy of the named agent's own latest state of the task, under the same tag, with a
    # flipped signature byte (as flipped_signature if it has none): must not shadow the real one
    "tampered_copy",
)


def _is_32_bytes(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == 32


CONTRACTS["tasklist"] = (TaskListReplica, {
    "value": (lambda value: isinstance(value, tuple), "a tuple of models.tasklist.TaskView"),
    "add_task": (_is_32_bytes, "a 32-byte task id"),
    "forge": (lambda value: isinstance(value, bytes), "bytes"),
})
