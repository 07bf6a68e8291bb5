"""The RGA machine: ``models.rga`` against every registered ``rga`` implementation.

Replicas insert and delete characters by visible index and replicate through the faulty
network of ``ReplicatedMachine``: deltas delivered late, twice, out of order or never (so a
replica often sees an insert before its parent, or a delete before the insert it deletes),
full-state syncs in any direction. An edit may be broadcast at once (``send``), so one
replica's messages pile up in flight, and ``deliver_all`` delivers every message in flight at
once, newest first if it likes.

The model side: an insert at replica ``i`` is ``insert_at(history_i, i, index, item)``
(its parent is the visible element before ``index``, its id counts past every id replica
``i`` has seen); a delete is ``delete_at(history_i, index)``. The index of a step is a raw
draw reduced modulo the replica's current length (plus one for inserts).

Levels:

* ``exact``: inserts put ``a`` or ``b``, so equal characters are the norm, as in text: the
  model tells elements apart by id, and an implementation that tells them apart by value is
  caught. After every step each replica's value equals ``models.rga.value`` of the history
  it has seen (indices refer to that value), and a replica that shows its ids (an ``ids()``
  method, see ``machines/contracts.py``) must show the model's; one that maps ids to places
  (``IndexedSequence``) must name the model's element at each index, and each element's index
  and item (``check_index``), and is also edited by id (``insert_after`` an element, visible or
  deleted, as the task list's order and an editor's cursor kept by id insert; ``delete_id`` an element
  it knows, answering whether it was visible; ``delete`` answering the id it deleted). Counters are unsigned 64-bit
  (``implementations.limits.RGA_MAX_COUNTER``): a replica that has seen the greatest one must refuse
  an insert (``Refused("counter_exhausted")``) and change nothing.
* ``convergent`` (e.g. YATA, as Yrs orders concurrent inserts): indices refer to the
  replica's own value; an insert hangs after the element the replica shows before it, a
  delete deletes the element it shows. Such an implementation shows elements only through
  their characters, so here every insert puts a character not used before in the run (``a``,
  ``b``, ``c``, ...). After every step a replica holds distinct characters whose inserts it
  has seen (it may hold back operations whose causal predecessors are missing, as Yrs does),
  and an element it has stopped showing after its delete was applied never shows again (applied
  with its causal past, ``ReplicatedMachine.applied``: a delete that overtook its insert may be
  held back, and a full state may leave it out, as Automerge's, Loro's and Yrs's do); a
  local insert must land where it was made; after a full sync all replicas are equal and hold
  exactly the model's characters, in their own order.

The adversary (``hostile``, for implementations whose replicas can speak their own wire:
``craft_delta`` in ``machines/contracts.py``): a peer that lies well sends one replica a
well-formed delta with ids of its own choosing, from replica ids no honest replica has:
floods of siblings with decreasing ids, counters at the top of the 64-bit range, children of
parents that never come or come later (and chains of them, sent again in windows inside what
waits, across its end or just past it), children of deleted parents, chains with every child
before its parent, and deletes of ids nobody has inserted yet (some inserted later). The model takes them as any
other operations; the invariants above are checked after every step, and the replica must
still encode its state afterwards. It also sends malformed deltas and full states (``spoil``, for
implementations whose replicas offer ``spoil``): one field of the wire's columns spoiled, or a
document out of its tree's order, each refused with a ``DecodeError`` naming the column or run
and what is wrong, the replica unchanged. For such an implementation each replica's full state,
read back after every step by the implementation's own decoder (``state_contents``), must hold
exactly what the model says the replica has seen (the walk's elements with their parents and
items, the deleted ones, the inserts still waiting for their parent, the deletes of ids not
integrated yet), and an empty replica that merges it must encode the same bytes, merging it
twice changing nothing (``check_state``; into a copy: a merge resets what a replica keeps between
edits, such as the RGA's cursor into its tree).
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import guard, machine_test
from harness.machine import Observation
from implementations.limits import RGA_MAX_COUNTER, U64_MAX
from implementations.wire import DecodeError
from machines.contracts import Refused
from machines.replicated import INDEX, START_NS, Message, ReplicatedMachine
from models.clock import ManualClock
from models.rga import Delete, Id, Insert, delete_at, deleted, insert_at, next_id, value, walk

#: The characters of the ``exact`` level: two, so that most characters are equal.
LETTERS = "ab"
#: The characters of the ``convergent`` level, in order: each run's first insert puts ``a``, then ``b``, ...
ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits
#: Replica ids of the adversary: none of them is a machine replica (those are 0 to 4).
ATTACKERS = (5, 2**63, U64_MAX)
HOSTILE = ("sibling_flood", "counter_ceiling", "orphans", "late_parent", "deleted_parent", "reversed_chain",
           "far_deletes", "orphan_chain")
#: Per implementation name, asked of one replica once: whether its replicas offer ``craft_delta``,
#: the spoilings they offer (``spoil``), if any, and whether they map ids to places (``IndexedSequence``).
_OFFERS: dict[str, tuple[bool, tuple[str, ...], bool]] = {}


def fresh_item(count: int) -> str:
    """The character of a run's ``count``-th insert (from 0): letters, digits, then Greek and on."""
    return ALPHABET[count] if count < len(ALPHABET) else chr(0x391 + count - len(ALPHABET))


def hostile_ops(inserts: list[list], deletes: list[list]) -> list[Insert | Delete]:
    """The model's operations of a hostile step's ``inserts`` and ``deletes`` (see ``RGAMachine.craft``), in order."""
    ops: list[Insert | Delete] = [Insert((c, r), (pc, pr) if pc else None, item) for c, r, pc, pr, item in inserts]
    return ops + [Delete((counter, replica)) for counter, replica in deletes]


class RGAMachine(ReplicatedMachine):
    name = "rga"
    rule_classes: ClassVar[dict[str, str]] = {
        "insert": "operations", "insert_after": "operations", "delete": "operations", "delete_id": "operations",
        "deliver_all": "delivery",
        "hostile": "adversary",
        "spoil": "adversary"}
    #: Each class's least share of the steps under ci: about half the least share measured against
    #: any implementation (harness.balance; the coverage table prints them): shares move when a
    #: merge reshuffles the derandomized search, or a test runs the machine with fewer examples.
    class_floors: ClassVar[dict[str, float]] = {
        "operations": 0.045, "delivery": 0.07, "sync": 0.17, "faults": 0.012, "time": 0.05, "adversary": 0.03}
    levels = ("exact", "convergent")

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.element_of: dict[str, Id] = {}  # convergent: every character inserted so far, at any replica: its element
        self.char_of: dict[Id, str] = {}  # convergent: the other way round
        self.gone: list[set[str]] = []  # convergent, per replica: deleted characters it has stopped showing
        self.hostile_inserts: dict[Id, Insert] = {}  # every insert the adversary has sent
        self.promised: list[Id] = []  # parents of orphans the adversary sent, not sent themselves yet
        self.chains: list[list] = []  # orphan chains: [promised parent, first counter, length, attacker]
        self.states_checked: dict[int, tuple[bytes, int]] = {}  # replica -> (state, history length) check_state passed
        self.indexes_checked: dict[int, int] = {}  # replica -> history length check_index passed
        self._walk_cache: dict[int, tuple[set, int, frozenset, list[Insert], set[Id]]] = {}
        if implementation.name not in _OFFERS:
            replica = implementation.make_replica(0, ManualClock(START_NS))
            crafts = implementation.level == "exact" and callable(getattr(replica, "craft_delta", None))
            spoilings = tuple(replica.spoilings) if callable(getattr(replica, "spoil", None)) else ()
            indexes = implementation.level == "exact" and all(callable(getattr(replica, name, None)) for name in (
                "id_at", "index_of", "knows", "item_of", "__iter__", "insert_after", "delete_id"))
            _OFFERS[implementation.name] = (crafts, spoilings, indexes)
        self.crafts, self.spoilings, self.indexes = _OFFERS[implementation.name]
        self.spoils = 0  # spoil steps drawn
        # Rules that do not apply to this implementation: the adversary cannot speak to it, it offers no
        # spoilings, it does not insert by id.
        absent = {"hostile": not self.crafts, "spoil": not self.spoilings, "insert_after": not self.indexes,
                  "delete_id": not self.indexes}
        self.stats.rules = tuple(name for name in self.stats.rules if not absent.get(name))

    @property
    def exact(self) -> bool:
        return self.implementation.level == "exact"

    def model_value(self, history: frozenset) -> list:
        return value(history)

    def walked(self, index: int) -> tuple[frozenset, list[Insert], set[Id]]:
        """Replica ``index``'s history, frozen, the model's walk of it and the ids it deleted.

        Remembered until the history grows, as ``seen_and_model`` remembers the value: the
        invariants, the state check and the adversary read the walk of every replica at every
        step, and most steps change one history or none."""
        history = self.history[index]
        cached = self._walk_cache.get(index)
        if cached is None or cached[0] is not history or cached[1] != len(history):
            seen = frozenset(history)
            cached = self._walk_cache[index] = (history, len(history), seen, walk(seen), deleted(seen))
        return cached[2], cached[3], cached[4]

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
            return list(self.seen_and_model(replica)[1])
        return self.replica_value(self.replicas[replica])

    def step_start(self, replicas: int, skews_ns: list[int]) -> None:
        super().step_start(replicas, skews_ns)
        self.gone = [set() for _ in range(replicas)]

    def step_sync_all(self) -> None:
        super().step_sync_all()
        if not self.exact:
            for i, replica in enumerate(self.replicas):
                model, actual = self.seen_and_model(i)[1], self.replica_value(replica)
                assert sorted(model) == sorted(actual), (
                    f"after a full sync replica {i} holds {actual!r}, the model's characters are {model!r}"
                )

    # ----- invariants -----------------------------------------------------------------

    def observe(self) -> list[Observation]:
        observations = []
        for i, replica in enumerate(self.replicas):
            seen, walked, gone = self.walked(i)
            actual = self.replica_value(replica)
            label = f"replica {i}"
            if self.exact:
                shown = [element for element in walked if element.id not in gone]
                model = [element.item for element in shown]
                agrees = model == actual
                ids = getattr(replica, "ids", None)
                if agrees and callable(ids):
                    actual_ids, model_ids = [tuple(element) for element in ids()], [element.id for element in shown]
                    if actual_ids != model_ids:
                        agrees = False
                        label += f" (its ids {self.elements_named(actual_ids)}, the model's {self.elements_named(model_ids)})"
            else:
                model = self.seen_and_model(i)[1]
                agrees = self.acceptable(seen, model, actual)
                back = set(actual) & self.gone[i] if i < len(self.gone) else set()
                if back:
                    agrees = False
                    label += f" (shows {sorted(back)} again, deleted and gone before)"
            observations.append(Observation(label, model, actual, agrees))
        return observations

    def check(self) -> None:
        observations = self.observe()
        for observation in observations:
            assert observation.agrees, (
                f"{observation.label} has {observation.implementation!r}, the model says {observation.model!r}"
            )
        if not self.exact:
            for i, observation in enumerate(observations):
                applied = deleted(op for _, op in self.causal[i])
                chars = {self.char_of[target] for target in applied if target in self.char_of}
                self.gone[i] |= chars - set(observation.implementation)
        self.check_settled([observation.implementation for observation in observations])  # every level (gap 3)
        if self.crafts:
            for i, replica in enumerate(self.replicas):
                self.check_state(i, replica)
        if self.indexes:
            for i, replica in enumerate(self.replicas):
                self.check_index(i, replica)

    def check_state(self, i: int, replica: Any) -> None:
        """A replica that speaks its own wire (``craft_delta``): its full state, read back by its
        own decoder (``state_contents``), holds what the model says it has seen: the walk's
        elements (id, parent, item) in order, which are deleted, the inserts whose parent has
        not come, and the deletes of ids not integrated yet; an empty replica that merges it encodes
        the same bytes (equal contents encode to equal bytes: runs and ranges maximal), and merging
        it again changes nothing (it is a message every peer takes)."""
        state = replica.state()
        key = (state, len(self.history[i]))  # (a replica's history only grows: the same length is the same history)
        if self.states_checked.get(i) == key:
            return
        seen, walked, gone = self.walked(i)
        reachable = {element.id for element in walked}
        elements, visible, waiting, early = replica.state_contents(state)
        model = [(element.id, element.parent, element.item) for element in walked]
        assert elements == model, f"replica {i}'s full state holds the elements {elements}, the model's walk {model}"
        shown = [element.id not in gone for element in walked]
        assert visible == shown, f"replica {i}'s full state shows {visible} of its elements, the model {shown}"
        orphans = sorted(((op.id, op.parent, op.item) for op in seen if isinstance(op, Insert) and op.id not in reachable),
                         key=lambda insert: insert[0][::-1])
        assert waiting == orphans, f"replica {i}'s full state has {waiting} waiting, the model {orphans}"
        pending = {op.target for op in seen if isinstance(op, Delete)} - reachable
        assert early == pending, f"replica {i}'s full state has {sorted(early)} deleted early, the model {sorted(pending)}"
        # Merged into a copy, not into the replica: a merge may drop what the replica keeps between
        # edits (the RGA's cursor and hint into its tree), and merging into the replica after every
        # step kept the paths that use them from ever running in a run of this machine.
        fresh = self.implementation.make_replica(len(self.replicas), ManualClock(START_NS))
        fresh.merge(state)
        assert fresh.state() == state, f"replica {i}'s full state, merged into an empty replica, encodes to other bytes"
        fresh.merge(state)
        assert fresh.state() == state, f"replica {i}'s full state, merged twice into an empty replica, changed it"
        self.states_checked[i] = key

    def check_index(self, i: int, replica: Any) -> None:
        """A replica that maps ids to places (``IndexedSequence``, as an editor's cursor or a task
        list's order uses it): each visible index names the model's element there, read back to
        front and front to back (a replica may keep where it last looked); each element the replica
        knows has the model's item and is at its index, or at none once deleted; the inserts still
        waiting for their parent, and an id nobody made, are not known; iterating gives its value. A
        caller's mistake (an index past the end, an id it does not know, a triple for an id) is
        refused with the error its protocol names, saying what was wrong."""
        key = len(self.history[i])
        if self.indexes_checked.get(i) == key:
            return
        _, walked, gone = self.walked(i)
        shown = [element.id for element in walked if element.id not in gone]
        # Back to front first: a lookup at index 0 walks down from the root and resets the cursor,
        # which would hide a cursor left wrong by the last edit (one past the head after an insert there).
        backward = [tuple(replica.id_at(k)) for k in reversed(range(len(shown)))][::-1]
        forward = [tuple(replica.id_at(k)) for k in range(len(shown))]
        assert forward == backward == shown, (
            f"replica {i} names {self.elements_named(forward)} at its indices front to back, "
            f"{self.elements_named(backward)} back to front, the model {self.elements_named(shown)}")
        where = {element: k for k, element in enumerate(shown)}
        for element in walked:
            place, known, item = replica.index_of(element.id), replica.knows(element.id), replica.item_of(element.id)
            assert (place, known, item) == (where.get(element.id), True, element.item), (
                f"replica {i} puts {self.element_name(element.id)} at {place} (known: {known}) holding {item!r}, "
                f"the model at {where.get(element.id)} holding {element.item!r}")
        reachable = {element.id for element in walked}
        strangers = [op.id for op in self.history[i] if isinstance(op, Insert) and op.id not in reachable]
        nobodys = (1 + max((counter for counter, _ in self.all_ids()), default=0), 0)
        for element in [*strangers, nobodys]:
            assert not replica.knows(element) and replica.index_of(element) is None, (
                f"replica {i} knows {self.element_name(element)}, which hangs nowhere in its document")
        for mistake, words, call in ((IndexError, f"{len(shown)}", lambda: replica.id_at(len(shown))),
                                     (KeyError, f"{nobodys}", lambda: replica.item_of(nobodys)),
                                     (KeyError, f"{(*nobodys, 0)}", lambda: replica.item_of((*nobodys, 0)))):
            try:
                answer = call()
            except mistake as error:
                assert words in str(error), f"replica {i} refuses a caller's mistake without naming {words}: {error!r}"
            else:
                raise AssertionError(f"replica {i} answers {answer!r} to a caller's mistake ({words}), "
                                     f"where it must raise {mistake.__name__}")
        items = list(replica.__iter__())  # (a replica reaches the machine through its contract, which has no __iter__)
        assert items == self.replica_value(replica), f"replica {i} iterates to {items!r}"
        self.indexes_checked[i] = key

    # ----- operations ------------------------------------------------------------------

    @rule(replica=INDEX, index=INDEX, send=st.booleans(), letter=st.integers(0, len(LETTERS) - 1))
    def insert(self, replica: int, index: int, send: bool, letter: int) -> None:
        """With ``send``, the insert is broadcast at once (its own message, so messages of
        one replica pile up in flight and can be delivered out of order)."""
        chosen = self.pick(replica, self.replicas)
        length = len(self.view(chosen))
        item = LETTERS[letter] if self.exact else fresh_item(len(self.element_of))
        index = index % (length + 1) if self.supports("insert") else length  # else only insert_end: append
        self.do("insert", replica=chosen, index=index, item=item, send=send)

    def step_insert(self, replica: int, index: int, item: str, send: bool = False) -> None:
        self.require_replica(replica)
        self.require(isinstance(item, str) and len(item) == 1, f"an item is one character, got {item!r}")
        self.require(self.exact or item not in self.element_of,
                     f"{item!r} was inserted before: at the convergent level every insert puts a fresh character")
        seen = self.view(replica)
        self.require(0 <= index <= len(seen), f"insert at {index} into replica {replica} of length {len(seen)}")
        op = self.insert_op(replica, index, item)
        if op.id[0] > RGA_MAX_COUNTER:
            self.expect_exhausted(replica, index, item)
            return
        self.replicas[replica].insert(index, item)
        self.record_local(replica, op)
        if not self.exact:
            self.element_of[item] = op.id
            self.char_of[op.id] = item
        now = self.replica_value(self.replicas[replica])
        assert index < len(now) and now[index] == item, (
            f"replica {replica} inserted {item!r} at {index} but holds {now!r}: the insert did not land where it was made"
        )
        if send:
            self.step_broadcast(replica)

    @rule(replica=INDEX, anchor=INDEX, send=st.booleans(), edit=st.integers(0, len(LETTERS)))
    @guard(lambda self: self.indexes and bool(self.replicas))
    def keyed_edit(self, replica: int, anchor: int, send: bool, edit: int) -> None:
        """An edit by id, as the task list's order and an editor's cursor kept by id make them: insert
        ``LETTERS[edit]`` right after an element the replica knows, visible or deleted, or at the head;
        or (``edit`` past the letters) delete an element it knows, visible or deleted already (a second
        delete changes nothing but is sent again). (One rule for both: a rule more would change what
        the derandomized search draws for every implementation, those that edit by index only too.)"""
        chosen = self.pick(replica, self.replicas)
        known = [element.id for element in self.walked(chosen)[1]]
        if edit == len(LETTERS):
            if known:
                self.do("delete_id", replica=chosen, element=list(known[self.pick(anchor, known)]), send=send)
            return
        parents = [None, *known]
        parent = parents[self.pick(anchor, parents)]
        if next_id(self.history[chosen], chosen)[0] <= RGA_MAX_COUNTER:  # (past it, ``insert`` checks the refusal)
            self.do("insert_after", replica=chosen, parent=None if parent is None else list(parent),
                    item=LETTERS[edit], send=send)

    def step_insert_after(self, replica: int, parent: list | None, item: str, send: bool = False) -> None:
        self.require_replica(replica)
        self.require(self.indexes, f"implementation {self.implementation.name!r} does not insert by id")
        self.require(isinstance(item, str) and len(item) == 1, f"an item is one character, got {item!r}")
        anchor = None if parent is None else tuple(parent)
        known = {element.id for element in self.walked(replica)[1]}
        self.require(anchor is None or anchor in known, f"replica {replica} does not know {anchor} to insert after")
        op = Insert(next_id(self.history[replica], replica), anchor, item)
        self.require(op.id[0] <= RGA_MAX_COUNTER, f"replica {replica} has seen the greatest counter")
        made = tuple(self.replicas[replica].insert_after(anchor, item))
        assert made == op.id, f"replica {replica} gave its insert after {self.place(anchor)} the id {made}, not {op.id}"
        self.record_local(replica, op)
        if send:
            self.step_broadcast(replica)

    def insert_op(self, replica: int, index: int, item: str) -> Insert:
        """The model's insert of ``item`` at ``index`` of what replica ``replica`` shows."""
        if self.exact:
            return insert_at(self.history[replica], replica, index, item)
        parent = self.element_of[self.view(replica)[index - 1]] if index else None  # the element shown before ``index``
        return Insert(next_id(self.history[replica], replica), parent, item)

    def expect_exhausted(self, replica: int, index: int, item: str) -> None:
        """The replica has seen counter ``U64_MAX``: an insert must be refused, naming that counter, changing nothing."""
        before = self.replicas[replica].state()
        try:
            self.replicas[replica].insert(index, item)
        except Refused as refusal:
            assert refusal.kind == "counter_exhausted", f"replica {replica} refused the insert as {refusal.kind!r}"
            assert f"{RGA_MAX_COUNTER}" in refusal.detail, (
                f"replica {replica}'s refusal does not name the counter it has seen, {RGA_MAX_COUNTER}: {refusal.detail!r}")
        except Exception as error:
            raise AssertionError(f"replica {replica} has seen counter {U64_MAX}: an insert must be refused "
                                 f"(Refused('counter_exhausted')), it raised {type(error).__name__}: {error}") from error
        else:
            raise AssertionError(f"replica {replica} has seen counter {U64_MAX} and still made an insert: its id "
                                 "cannot travel (counters are unsigned 64-bit)")
        assert self.replicas[replica].state() == before, f"replica {replica} refused an insert but changed"

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
        op = self.delete_op(replica, index)
        got = self.replicas[replica].delete(index)
        if self.indexes:  # an IndexedSequence names the element it deleted
            assert got is not None and tuple(got) == op.target, (
                f"replica {replica} deleted {self.element_name(op.target)} at {index} but answered the id {got}")
        self.record_local(replica, op)
        if send:
            self.step_broadcast(replica)

    def step_delete_id(self, replica: int, element: list, send: bool = False) -> None:
        self.require_replica(replica)
        self.require(self.indexes, f"implementation {self.implementation.name!r} does not delete by id")
        target = tuple(element)
        _, inserts, deleted = self.walked(replica)
        self.require(target in {insert.id for insert in inserts}, f"replica {replica} does not know {target} to delete")
        was_visible = target not in deleted
        got = self.replicas[replica].delete_id(target)
        assert got is was_visible, (
            f"replica {replica} answered {got!r} to the delete of {self.element_name(target)}, which was "
            f"{'visible' if was_visible else 'deleted already'}")
        self.record_local(replica, Delete(target))
        if send:
            self.step_broadcast(replica)

    def delete_op(self, replica: int, index: int) -> Delete:
        """The model's delete of the element at ``index`` of what replica ``replica`` shows."""
        return delete_at(self.history[replica], index) if self.exact else Delete(self.element_of[self.view(replica)[index]])

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

    # ----- the report: elements by their ids (``A7``: replica 0's counter 7) -----------------

    outsiders = ATTACKERS

    def element_name(self, element: Id) -> str:
        """An element by its id ``(counter, replica)``: ``A7`` is replica 0's with counter 7."""
        return self.id_name(element[1], element[0])

    def place(self, parent: Id | None) -> str:
        """Where an insert goes: ``after A6``, or ``at the start``."""
        return f"{f'after {self.element_name(parent)}' if parent is not None else 'at the start'}"

    def elements_named(self, elements: list[Id]) -> str:
        return f"{', '.join(map(self.element_name, elements))}"

    def item_of(self, element: Id) -> str:
        """The character element ``element`` holds, as the report quotes it (if anyone has inserted it)."""
        for op in (*self.hostile_inserts.values(), *(op for history in self.history for op in history)):
            if isinstance(op, Insert) and op.id == element:
                return f"{op.item!r}"
        return f"{'not inserted yet'}"

    def describe_hostile(self, target: int, inserts: list[list], deletes: list[list]) -> str:
        return "; ".join(map(self.describe_op, hostile_ops(inserts, deletes)))

    def what(self, op: Insert | Delete) -> str:
        """An operation's payload: ``'c' as A3 after A2`` (an insert), ``A7 ('c')`` (a delete)."""
        if isinstance(op, Insert):
            return f"{op.item!r} as {self.element_name(op.id)} {self.place(op.parent)}"
        return f"{self.element_name(op.target)} ({self.item_of(op.target)})"

    def describe_op(self, op: Any) -> str:
        return f"{'insert' if isinstance(op, Insert) else 'delete'} {self.what(op)}"

    def describe_ops(self, ops: Any) -> str:
        """Inserts in the order of their ids (a parent before its children), then deletes."""
        ordered = sorted(ops, key=lambda op: (1, op.target) if isinstance(op, Delete) else (0, op.id))
        return "; ".join(map(self.describe_op, ordered)) or super().describe_ops(ordered)

    def describe_step(self, step) -> str:
        a = step.args
        try:
            sent = f"{'; it is sent at once' if a.get('send') else ''}"
            if step.rule == "insert":
                op = self.insert_op(a["replica"], a["index"], a["item"])
                if op.id[0] > RGA_MAX_COUNTER:
                    return (f"replica {a['replica']} tries to insert {a['item']!r} {self.place(op.parent)}: "
                            f"it has seen the greatest counter, {self.counter_text(RGA_MAX_COUNTER)}, so it must refuse")
                return f"replica {a['replica']} inserts {self.what(op)}{sent}"
            if step.rule == "insert_after":
                parent = None if a["parent"] is None else tuple(a["parent"])
                op = Insert(next_id(self.history[a["replica"]], a["replica"]), parent, a["item"])
                return f"replica {a['replica']} inserts by id {self.what(op)}{sent}"
            if step.rule == "delete":
                return f"replica {a['replica']} deletes {self.what(self.delete_op(a['replica'], a['index']))}{sent}"
            if step.rule == "delete_id":
                return f"replica {a['replica']} deletes by id {self.what(Delete(tuple(a['element'])))}{sent}"
            if step.rule == "deliver_all":
                arriving = self.in_flight[::-1] if a["newest_first"] else self.in_flight
                each = [f"{self.sender_name(m.source)}'s delta ({self.describe_ops(m.ops)}) at replica {m.target}"
                        for m in arriving]
                return f"every message in flight arrives{', newest first' if a['newest_first'] else ''}: {'; then '.join(each)}"
            if step.rule == "hostile":
                return f"a lying peer sends replica {a['target']} a delta: {self.describe_hostile(**a)}"
            if step.rule == "spoil":
                what = "full state" if a["how"].startswith("state-") else "delta"
                spoiled = a["how"].removeprefix("state-").replace("-", " ")
                return f"a lying peer sends replica {a['target']} a {what} spoiled ({spoiled}): it must be refused"
        except (IndexError, KeyError, TypeError, ValueError, AttributeError):
            pass
        return super().describe_step(step)

    # ----- the adversary -----------------------------------------------------------------

    @guard(lambda self: self.crafts and bool(self.replicas))
    @rule(kind=st.sampled_from(HOSTILE), to=INDEX, size=st.integers(1, 6), raw=INDEX, attacker=st.sampled_from(ATTACKERS),
          near=st.integers(0, 2))
    def hostile(self, kind: str, to: int, size: int, raw: int, attacker: int, near: int) -> None:
        target = self.pick(to, self.replicas)
        inserts, deletes = self.craft(kind, target, size, raw, attacker, near)
        if inserts or deletes:
            self.do("hostile", target=target, inserts=inserts, deletes=deletes)

    def craft(self, kind: str, target: int, size: int, raw: int, attacker: int, near: int) -> tuple[list, list]:
        """The operations of a hostile delta: inserts ``[counter, replica, parent counter (0:
        the head), parent replica, item]`` and deletes ``[counter, replica]``."""
        _, elements, gone = self.walked(target)
        top = 1 + max([counter for counter, _ in self.all_ids()], default=0)

        def some(candidates: list[Insert]) -> tuple[int, int]:
            return candidates[raw % len(candidates)].id if candidates else (0, 0)

        def fresh(counter: int) -> bool:
            return (counter, attacker) not in self.hostile_inserts

        letter = LETTERS[raw % len(LETTERS)]

        def operations() -> tuple[list, list]:
            if kind == "sibling_flood":  # siblings under one parent, each id smaller than the one before
                parent = some(elements)
                base = max(top, parent[0] + 1)
                counters = [c for c in range(base + size - 1, base - 1, -1) if fresh(c)]
                return [[c, attacker, *parent, LETTERS[c % 2]] for c in counters], []
            if kind == "counter_ceiling":  # a chain ending at the greatest counter the wire carries
                parent = some([element for element in elements if element.id[0] < U64_MAX - near])
                counters = [c for c in range(U64_MAX - near, U64_MAX + 1) if fresh(c)]
                if len(counters) != near + 1:
                    return [], []
                chain = [[counters[0], attacker, *parent, letter]]
                chain += [[c, attacker, c - 1, attacker, letter] for c in counters[1:]]
                return chain, []
            if kind == "orphans":  # children of an id the adversary sends later, if ever
                promised = (top, attacker)
                self.promised.append(promised)
                return [[top + 1 + k, attacker, *promised, letter] for k in range(size)], []
            if kind == "orphan_chain":  # a chain waiting for a parent not sent yet; then windows of it again
                return orphan_chain()
            if kind == "late_parent":  # a promised parent arrives, after its children or its delete
                waiting = [p for p in self.promised if p not in self.hostile_inserts and p[0] > 0]
                if not waiting:
                    return [], []
                promised = waiting[raw % len(waiting)]
                parent = some([element for element in elements if element.id[0] < promised[0]])
                return [[*promised, *parent, letter]], []
            if kind == "deleted_parent":  # children of an element deleted already
                parent = some([element for element in elements if element.id in gone])
                return [[top + k, attacker, *parent, letter] for k in range(size)], []
            if kind == "reversed_chain":  # a chain, every child before its parent in the message
                parent = some(elements)
                base = max(top, parent[0] + 1)
                chain = [[base, attacker, *parent, letter]] + [[base + k, attacker, base + k - 1, attacker, letter]
                                                              for k in range(1, size)]
                return chain[::-1], []
            # far_deletes: deletes of known elements and of ids nobody has inserted yet (a later
            # late_parent may insert them: they must arrive deleted)
            known = [list(element.id) for element in elements[raw % 3 :: 3]][:size]
            unknown = [(top + 1 + k, attacker) for k in range(size)]
            self.promised.extend(unknown)
            return [], known + [list(element) for element in unknown]

        def orphan_chain() -> tuple[list, list]:
            """A new chain (``near`` 0, or none waits), or a window of a waiting one sent again:
            inside it, from its first id, to its last, across its end or just past it (growing it by
            fresh ids)."""
            waiting = [chain for chain in self.chains if chain[0] not in self.hostile_inserts]
            if near == 0 or not waiting:
                promised = (top, attacker)
                self.promised.append(promised)
                self.chains.append([promised, top + 1, size, attacker])
                low, high, chain = top + 1, top + 1 + size, self.chains[-1]
            else:
                chain = waiting[raw % len(waiting)]
                promised, first, length, _ = chain
                low = first + raw % (length + 1)
                high = low + size
                taken = self.all_ids() | set(self.promised) | set(self.hostile_inserts)
                grown = first + length
                while grown < high and (grown, chain[3]) not in taken and grown <= U64_MAX:
                    grown += 1
                high = min(high, grown)
                chain[2] = max(length, high - first)
            promised, first, _, who = chain
            return [[c, who, *(promised if c == first else (c - 1, who)), LETTERS[c % 2]] for c in range(low, high)], []

        inserts, deletes = operations()
        if any(op[0] > U64_MAX for op in inserts + deletes):  # the counters are used up: nothing to send
            return [], []
        return inserts, deletes

    def all_ids(self) -> set[Id]:
        ids: set[Id] = set()
        for history in self.history:
            for op in history:
                if isinstance(op, Insert):
                    ids.add(op.id)
                else:
                    ids.add(op.target)
        return ids

    def step_hostile(self, target: int, inserts: list[list], deletes: list[list]) -> None:
        self.require_replica(target)
        self.require(self.crafts, f"implementation {self.implementation.name!r} cannot craft deltas")
        for counter, replica, parent_counter, parent_replica, _ in inserts:
            self.require(replica >= len(self.replicas) and 1 <= counter <= U64_MAX and 0 <= parent_counter < counter,
                         f"a hostile insert ({counter}, {replica}) after ({parent_counter}, {parent_replica}) is not "
                         "well-formed from an outsider")
        ops = hostile_ops(inserts, deletes)
        for op in ops:
            if isinstance(op, Insert):
                self.require(self.hostile_inserts.get(op.id, op) == op, f"the adversary sent {op.id} before, differently")
        crafted = self.replicas[target].craft_delta([(op.id, op.parent, op.item) for op in ops if isinstance(op, Insert)],
                                                    [op.target for op in ops if isinstance(op, Delete)])
        message = Message(-1, target, (crafted,), frozenset(ops))
        self._deliver(message)
        self.delivered.append(message)
        for op in ops:
            if isinstance(op, Insert):
                self.hostile_inserts[op.id] = op
        self.replicas[target].state()  # a hostile delta must never leave a replica unable to encode itself

    @guard(lambda self: bool(self.spoilings) and bool(self.replicas))
    @rule(to=INDEX, how=st.sampled_from(range(64)), now=st.integers(0, 3))
    def spoil(self, to: int, how: int, now: int) -> None:
        if now:  # one draw in four: the adversary's well-formed lies stay the more frequent
            return
        # Each spoil step of a run moves on by 7, and by 11 a step before it, so that a run's few
        # steps spread over all the spoilings although the search draws small numbers most often.
        self.spoils += 1
        turn = how + 7 * self.spoils + 11 * len(self.steps)
        self.do("spoil", target=self.pick(to, self.replicas), how=self.spoilings[turn % len(self.spoilings)])

    def step_spoil(self, target: int, how: str) -> None:
        """A lying peer's delta or full state with one field of its columns spoiled (the
        replica's ``spoil``: a column of another kind or length, an item of another type or out
        of its range, a run that is empty, runs past the last counter or is not below its
        parent, alive lengths that do not cover the document, a document out of its tree's
        order): refused with a ``DecodeError`` naming what is wrong, and nothing changes."""
        self.require_replica(target)
        self.require(how in self.spoilings, f"{how!r} is not one of the implementation's spoilings")
        replica = self.replicas[target]
        kind, data, named = replica.spoil(how)
        before = (replica.state(), self.replica_value(replica))
        try:
            replica.apply_delta(data) if kind == "delta" else replica.merge(data)
        except DecodeError as error:
            missing = [word for word in named if word not in str(error)]
            assert not missing, (f"replica {target} refused a {kind} spoiled by {how} with {error!r}, "
                                 f"which does not name {missing}")
        else:
            raise AssertionError(f"replica {target} took a {kind} spoiled by {how}")
        after = (replica.state(), self.replica_value(replica))
        assert after == before, f"replica {target} refused a {kind} spoiled by {how} but changed"


test_rga_machine = machine_test(RGAMachine)
