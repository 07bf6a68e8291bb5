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

from collections.abc import Hashable, Sequence, Set
from typing import Any, Protocol, runtime_checkable


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


def _is_set(value: Any) -> bool:
    return isinstance(value, Set)


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
