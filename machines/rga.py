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
* ``convergent`` (e.g. YATA, as Yrs orders concurrent inserts): indices refer to the
  replica's own value; an insert hangs after the element the replica shows before it, a
  delete deletes the element it shows. After every step a replica holds distinct
  characters whose inserts it has seen (it may hold back operations whose causal
  predecessors are missing, as Yrs does); a local insert must land where it was made; after
  a full sync all replicas are equal and hold exactly the model's characters, in their own
  order.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import guard, machine_test
from machines.replicated import INDEX, ReplicatedMachine
from models.rga import Delete, Id, Insert, delete_at, insert_at, next_id, value

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
        self.element_of: dict[str, Id] = {}  # every character inserted so far, at any replica: its element

    @property
    def exact(self) -> bool:
        return self.implementation.level == "exact"

    def model_value(self, history: frozenset) -> list:
        return value(history)

    def replica_value(self, replica: Any) -> list:
        return list(replica.value())

    def acceptable(self, history: frozenset, model_value: Any, replica_value: Any) -> bool:
        """Exact: the model's value. Convergent: distinct characters whose inserts the replica
        has seen (it may still hold back operations whose causal predecessors have not
        arrived, as Yrs does); after a full sync, exactly the model's characters."""
        if self.exact:
            return model_value == replica_value
        inserted = {op.item for op in history if isinstance(op, Insert)}
        return len(set(replica_value)) == len(replica_value) and set(replica_value) <= inserted

    def view(self, replica: int) -> list:
        """The sequence a step's index refers to: the model's (exact) or the replica's own."""
        if self.exact:
            return value(self.history[replica])
        return self.replica_value(self.replicas[replica])

    def step_sync_all(self) -> None:
        super().step_sync_all()
        if not self.exact:
            for i, replica in enumerate(self.replicas):
                model, actual = value(self.history[i]), self.replica_value(replica)
                assert sorted(model) == sorted(actual), (
                    f"after a full sync replica {i} holds {actual!r}, the model's characters are {model!r}"
                )

    # ----- operations ------------------------------------------------------------------

    @rule(replica=INDEX, index=INDEX, send=st.booleans())
    def insert(self, replica: int, index: int, send: bool) -> None:
        """With ``send``, the insert is broadcast at once (its own message, so messages of
        one replica pile up in flight and can be delivered out of order)."""
        chosen = self.pick(replica, self.replicas)
        length = len(self.view(chosen))
        index = index % (length + 1) if self.supports("insert") else length  # else only insert_end: append
        self.do("insert", replica=chosen, index=index, item=fresh_item(len(self.element_of)), send=send)

    def step_insert(self, replica: int, index: int, item: str, send: bool = False) -> None:
        self.require_replica(replica)
        self.require(isinstance(item, str) and len(item) == 1, f"an item is one character, got {item!r}")
        self.require(item not in self.element_of, f"{item!r} was inserted before: every insert puts a fresh character")
        seen = self.view(replica)
        self.require(0 <= index <= len(seen), f"insert at {index} into replica {replica} of length {len(seen)}")
        if self.exact:
            op = insert_at(self.history[replica], replica, index, item)
        else:  # after the element the replica shows before ``index``
            parent = self.element_of[seen[index - 1]] if index else None
            op = Insert(next_id(self.history[replica], replica), parent, item)
        self.replicas[replica].insert(index, item)
        self.record_local(replica, op)
        self.element_of[item] = op.id
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
        op = delete_at(self.history[replica], index) if self.exact else Delete(self.element_of[seen[index]])
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
