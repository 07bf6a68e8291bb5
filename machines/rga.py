"""The RGA machine: ``models.rga`` against every registered ``rga`` implementation.

Replicas insert and delete characters by visible index and replicate through the faulty
network of ``ReplicatedMachine``: deltas delivered late, twice, out of order or never (so a
replica often sees an insert before its parent, or a delete before the insert it deletes),
full-state syncs in any direction. An edit may be broadcast at once (``send``), so one
replica's messages pile up in flight, and ``deliver_all`` delivers every message in flight at
once, newest first if it likes. Every insert puts a character not used before in the
run (``a``, ``b``, ``c``, ...), so a failure report reads as the order of insertion and
each character names one element.

The model side: an insert at replica ``i`` is ``insert_at(history_i, i, index, item)``
(its parent is the visible element before ``index``, its id counts past every id replica
``i`` has seen); a delete is ``delete_at(history_i, index)``. The index of a step is a raw
draw reduced modulo the replica's current length (plus one for inserts).

Levels:

* ``exact``: after every step each replica's value equals ``models.rga.value`` of the
  history it has seen; indices refer to that value.
* ``convergent`` (e.g. YATA, as Yrs orders concurrent inserts): a replica holds exactly the
  characters the history says, in its own order; indices refer to the replica's own value
  and are turned into the model's by the characters they name. A local insert must land
  where it was made, and a full sync must make all replicas equal.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import guard, machine_test
from machines.replicated import INDEX, ReplicatedMachine
from models.rga import delete_at, insert_at, value

#: The characters inserts use, in order: each run's first insert puts ``a``, then ``b``, ...
ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits


def fresh_item(count: int) -> str:
    """The character of a run's ``count``-th insert (from 0): letters, digits, then Greek and on."""
    return ALPHABET[count] if count < len(ALPHABET) else chr(0x391 + count - len(ALPHABET))


class RGAMachine(ReplicatedMachine):
    name = "rga"
    levels = ("exact", "convergent")

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.inserted: set[str] = set()  # every character inserted so far, at any replica

    @property
    def exact(self) -> bool:
        return self.implementation.level == "exact"

    def model_value(self, history: frozenset) -> list:
        return value(history)

    def replica_value(self, replica: Any) -> list:
        return list(replica.value())

    def acceptable(self, history: frozenset, model_value: Any, replica_value: Any) -> bool:
        if self.exact:
            return model_value == replica_value
        return sorted(model_value) == sorted(replica_value)

    def view(self, replica: int) -> list:
        """The sequence a step's index refers to: the model's (exact) or the replica's own."""
        if self.exact:
            return value(self.history[replica])
        return self.replica_value(self.replicas[replica])

    def model_index(self, replica: int, index: int, seen: list, after: bool) -> int:
        """``index`` into ``seen`` (the view), as an index into the model's value.

        With ``after``, the position just after the element before ``index`` (for inserts).
        """
        if self.exact:
            return index
        model = value(self.history[replica])
        if after:
            return 0 if index == 0 else model.index(seen[index - 1]) + 1
        return model.index(seen[index])

    # ----- operations ------------------------------------------------------------------

    @rule(replica=INDEX, index=INDEX, send=st.booleans())
    def insert(self, replica: int, index: int, send: bool) -> None:
        """With ``send``, the insert is broadcast at once (its own message, so messages of
        one replica pile up in flight and can be delivered out of order)."""
        chosen = self.pick(replica, self.replicas)
        length = len(self.view(chosen))
        self.do("insert", replica=chosen, index=index % (length + 1), item=fresh_item(len(self.inserted)), send=send)

    def step_insert(self, replica: int, index: int, item: str, send: bool = False) -> None:
        self.require_replica(replica)
        self.require(isinstance(item, str) and len(item) == 1, f"an item is one character, got {item!r}")
        self.require(item not in self.inserted, f"{item!r} was inserted before: every insert puts a fresh character")
        seen = self.view(replica)
        self.require(0 <= index <= len(seen), f"insert at {index} into replica {replica} of length {len(seen)}")
        op = insert_at(self.history[replica], replica, self.model_index(replica, index, seen, after=True), item)
        self.replicas[replica].insert(index, item)
        self.record_local(replica, op)
        self.inserted.add(item)
        now = self.replica_value(self.replicas[replica])
        assert index < len(now) and now[index] == item, (
            f"replica {replica} inserted {item!r} at {index} but holds {now!r}: the insert did not land where it was made"
        )
        if send:
            self.step_broadcast(replica)

    def has_items(self) -> bool:
        return any(self.view(i) for i in range(len(self.replicas)))

    @guard(has_items)
    @rule(replica=INDEX, index=INDEX, send=st.booleans())
    def delete(self, replica: int, index: int, send: bool) -> None:
        holding = [i for i in range(len(self.replicas)) if self.view(i)]
        chosen = holding[self.pick(replica, holding)]
        self.do("delete", replica=chosen, index=self.pick(index, self.view(chosen)), send=send)

    def step_delete(self, replica: int, index: int, send: bool = False) -> None:
        self.require_replica(replica)
        seen = self.view(replica)
        self.require(0 <= index < len(seen), f"delete at {index} from replica {replica} of length {len(seen)}")
        op = delete_at(self.history[replica], self.model_index(replica, index, seen, after=False))
        self.replicas[replica].delete(index)
        self.record_local(replica, op)
        if send:
            self.step_broadcast(replica)

    # ----- delivery out of order ---------------------------------------------------------

    @guard(lambda self: bool(self.in_flight))
    @rule(newest_first=st.booleans())
    def deliver_all(self, newest_first: bool) -> None:
        """Every message in flight arrives, possibly newest first: a child before its parent,
        a delete before its insert."""
        self.do("deliver_all", newest_first=newest_first)

    def step_deliver_all(self, newest_first: bool) -> None:
        arriving = self.in_flight[::-1] if newest_first else self.in_flight
        self.in_flight = []
        for message in arriving:
            self._deliver(message)
            self.delivered.append(message)


test_rga_machine = machine_test(RGAMachine)
