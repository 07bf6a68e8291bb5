"""What every replicated-data-type machine shares: replicas, skewed clocks, a faulty network.

A subclass checks one type (OR-Set, register, sequence, task list). It adds the steps of
the type's operations and says how the model computes a value from a history; this base
gives it:

* ``start``: 2 to 5 replicas, each with its own clock skewed from the shared manual clock;
* ``advance_clock``: the shared clock moves by a generated amount (0, a nanosecond, a
  millisecond, a day, or anything in between);
* ``sync_full``: a replica merges another's full state;
* ``broadcast``: a replica's pending deltas leave as one message to every other replica;
* ``deliver``, ``drop``, ``duplicate``: any in-flight message, in any order;
* ``redeliver``: a message that was already delivered arrives again;
* ``sync_all``: every replica's state reaches every other; afterwards all must agree.

Whatever the level, whenever no message is in flight, replicas that lost no message (none
to them was dropped), have seen the same operations and would apply the same changes under
causal delivery (``applied``) must agree (``check_settled``):
deltas alone, all delivered, must converge, so a replica that never integrates a delta
that arrived before its causal predecessor is caught where a full-state ``sync_all`` would
hide it.

An implementation that declares the operations it supports (``Implementation.operations``,
names from ``machines.contracts.OPERATIONS``) is driven only by those: the rules of the
others never run, and its replicas need not have their methods. Every replica is seen
through ``harness.process.Contained`` (a ``BaseException`` from an adapter is reported, never
escapes) and its contract; a replica with a ``close()`` method is closed when the run ends.

The model side of a replica is the set of operations it has seen (its history). An
operation made at replica ``i`` is recorded with ``record_local(i, op)``; a message carries
the operations made at its source since the previous broadcast, and a full state carries
the whole history of its source. After every step each replica's value must equal
``model_value(history)`` (for implementations of level ``exact``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from string import ascii_uppercase
from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from harness import TracedMachine, guard
from harness.contract import Checked
from harness.hostile import LIES, crafter_for, deliver_hostile
from harness.machine import Observation
from harness.process import Contained
from harness.trace import Step
from machines.contracts import CONTRACTS, OPERATIONS
from models.clock import NS_PER_DAY, NS_PER_MS, NS_PER_SECOND, ManualClock, OffsetClock

#: Where every run's shared clock starts: 2023-11-14T22:13:20Z, an ordinary instant.
START_NS = 1_700_000_000 * NS_PER_SECOND

SKEWS = st.one_of(
    st.sampled_from([0, 0, 1, -1, NS_PER_MS, -NS_PER_MS]),
    st.integers(-5 * NS_PER_SECOND, 5 * NS_PER_SECOND),
)
ADVANCES = st.one_of(
    st.sampled_from([0, 1, NS_PER_MS, NS_PER_SECOND, NS_PER_DAY]),
    st.integers(0, 10 * NS_PER_SECOND),
)
#: A raw draw that a rule reduces modulo the number of replicas or messages.
INDEX = st.integers(0, 63)


@attrs.frozen
class Message:
    """Deltas in flight from ``source`` to ``target``, with the operations they carry."""

    source: int
    target: int
    deltas: tuple[bytes, ...]
    ops: frozenset


@functools.cache
def _rule_enabled(machine: str, declared: frozenset[str] | None, rule_name: str) -> bool:
    """``ReplicatedMachine.rule_enabled``, worked out once per machine, declaration and rule (a
    precondition asked before every step)."""
    drawn_by = [name for name, op in OPERATIONS.get(machine, {}).items() if rule_name in op.rules]
    return not drawn_by or declared is None or any(name in declared for name in drawn_by)


class ReplicatedMachine(TracedMachine):
    min_replicas: ClassVar[int] = 2
    max_replicas: ClassVar[int] = 5
    #: The replication rules by class (``harness.balance``).
    rule_classes: ClassVar[dict[str, str]] = {
        "start": "setup", "advance_clock": "time", "sync_full": "sync", "sync_all": "sync", "broadcast": "delivery",
        "deliver": "delivery", "redeliver": "delivery", "drop": "faults", "duplicate": "faults", "hostile": "adversary"}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.clock = ManualClock(START_NS)
        self.replicas: list[Any] = []
        self.history: list[set] = []  # model: the operations each replica has seen
        self.unsent: list[set] = []  # model: operations made at each replica since its last broadcast
        # Causal delivery (``applied``), by change: an operation as made by one replica, ``(maker, op)``.
        self.causal: list[set[tuple[Any, Any]]] = []  # per replica: the changes it applies
        self.held: list[set[tuple[Any, Any]]] = []  # per replica: changes a delta brought, held back
        # A replica's changes are numbered 1, 2, ... in the order it makes them, and a replica
        # applies each maker's changes in that order (each change's past holds its maker's
        # earlier ones), so what a replica applies of a maker is a count of its first changes
        # (a change's number is one more than its maker's own count in its past):
        self.counts: list[list[int]] = []  # per replica: per maker, how many of its changes it applies
        self.pasts: dict[tuple[Any, Any], tuple[int, ...]] = {}  # per change: its maker's counts then
        self.in_flight: list[Message] = []
        self.delivered: list[Message] = []
        #: Per replica: (its history set, its size then, the frozen history, the model's value).
        self._model_cache: dict[int, tuple[set, int, frozenset, Any]] = {}
        self.lost: set[int] = set()  # replicas to which a message was dropped
        # This run's rules are only those of the operations the implementation supports.
        self.stats.rules = tuple(r for r in self.stats.rules if self.rule_enabled(r))

    # ----- the operations an implementation supports --------------------------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for rule_name in {r for op in OPERATIONS.get(cls.__dict__.get("name", ""), {}).values() for r in op.rules}:
            if rule_name in cls.__dict__:
                setattr(cls, rule_name, precondition(lambda self, r=rule_name: self.rule_enabled(r))(cls.__dict__[rule_name]))

    def supports(self, operation: str) -> bool:
        """Whether the implementation supports ``operation`` (all do, unless they declare)."""
        declared = self.implementation.operations
        return declared is None or operation in declared

    def rule_enabled(self, rule_name: str) -> bool:
        """A rule of operations runs if one of them is supported; other rules always run."""
        return _rule_enabled(self.name, self.implementation.operations, rule_name)

    @classmethod
    def unsupported_methods(cls, implementation: Any) -> frozenset[str]:
        """Protocol methods no supported operation calls: the replica need not have them."""
        declared = implementation.operations
        known = OPERATIONS.get(cls.name, {})
        if declared is None:
            return frozenset()
        unknown = sorted(set(declared) - set(known))
        if unknown:
            raise ValueError(
                f"implementation {implementation.name!r} declares operations {unknown} that machine {cls.name} does "
                f"not know; it knows {sorted(known) or 'none (it does not take a declaration)'}"
            )
        needed = {known[name].method for name in declared}
        return frozenset(op.method for op in known.values()) - needed

    # ----- what a subclass provides -------------------------------------------------

    def model_value(self, history: frozenset) -> Any:
        """The model's value of a replica that has seen ``history``."""
        raise NotImplementedError

    def replica_value(self, replica: Any) -> Any:
        """The implementation's value, in the model's terms (e.g. ``list(...)``)."""
        return replica.value()

    def acceptable(self, history: frozenset, model_value: Any, replica_value: Any) -> bool:
        """Whether a replica's value is right for the history it has seen.

        Implementations of level ``exact`` must equal the model. A machine that also checks
        relaxed levels (``convergent``, ``add-wins``) overrides this for them.
        """
        return model_value == replica_value

    # ----- helpers for subclasses ---------------------------------------------------

    def record_local(self, index: int, op: Any) -> None:
        """Operation ``op`` was made at replica ``index``: it has seen it, and will send it."""
        change = (index, op)
        self.pasts.setdefault(change, tuple(self.counts[index]))
        self._apply(index, change)
        self.history[index].add(op)
        self.unsent[index].add(op)

    def require_replica(self, index: int) -> None:
        self.require(bool(self.replicas), "the machine has not started")
        self.require(0 <= index < len(self.replicas), f"no replica {index} (there are {len(self.replicas)})")

    def pick(self, raw: int, items: list | int) -> int:
        """Reduce a raw draw to an index into ``items`` (or into ``range(items)``)."""
        count = items if isinstance(items, int) else len(items)
        return raw % count

    # ----- set-up and time ----------------------------------------------------------

    def make_replica(self, replica_id: int, clock: Any) -> Any:
        """A new replica of the implementation, contained, seen through its contract if the type has one."""
        return self.contracted(self.implementation, replica_id, clock)

    @classmethod
    def contracted(cls, implementation: Any, replica_id: int, clock: Any) -> Any:
        who = f"implementation {implementation.name!r} of {cls.name}"
        replica = Contained.make(implementation.make_replica, who, replica_id, clock)
        contract = CONTRACTS.get(cls.name)
        if contract is None:
            return replica
        protocol, results = contract
        return Checked(replica, protocol, who, results, cls.unsupported_methods(implementation))

    @classmethod
    def preflight(cls, implementation: Any) -> None:
        """Refuse, before any example runs, an adapter that lacks methods of its protocol or
        declares operations this machine does not know; an unavailable implementation
        (``harness.process.Unavailable``) is skipped here."""
        replica = cls.contracted(implementation, 0, ManualClock(START_NS))
        close = getattr(replica, "close", None)
        if callable(close):
            close()

    def teardown(self) -> None:
        """Close every replica that has a ``close()`` (a child process's replicas are dropped)."""
        for replica in self.replicas:
            close = getattr(replica, "close", None)
            if callable(close):
                close()
        super().teardown()

    @initialize(count=st.integers(2, 5), skews=st.lists(SKEWS, min_size=5, max_size=5))
    def start(self, count: int, skews: list[int]) -> None:
        count = max(self.min_replicas, min(self.max_replicas, count))
        self.do("start", replicas=count, skews_ns=skews[:count])

    def step_start(self, replicas: int, skews_ns: list[int]) -> None:
        self.require(not self.replicas, "the machine has already started")
        self.require(self.min_replicas <= replicas <= self.max_replicas, f"replicas={replicas} is outside "
                     f"{self.min_replicas}..{self.max_replicas}")
        self.require(len(skews_ns) == replicas, f"{len(skews_ns)} skews for {replicas} replicas")
        self.replicas = [self.make_replica(i, OffsetClock(self.clock, skew)) for i, skew in enumerate(skews_ns)]
        self.history = [set() for _ in range(replicas)]
        self.unsent = [set() for _ in range(replicas)]
        self.causal = [set() for _ in range(replicas)]
        self.held = [set() for _ in range(replicas)]
        self.counts = [[0] * replicas for _ in range(replicas)]

    @rule(ns=ADVANCES)
    def advance_clock(self, ns: int) -> None:
        self.do("advance_clock", ns=ns)

    def step_advance_clock(self, ns: int) -> None:
        self.require(ns >= 0, f"the clock cannot go back (ns={ns})")
        self.clock.advance(ns)

    # ----- replication --------------------------------------------------------------

    # The raw draw is ``to``: ``target`` is a reserved argument of Hypothesis's ``@rule``.
    @rule(source=INDEX, to=INDEX)
    def sync_full(self, source: int, to: int) -> None:
        self.do("sync_full", source=self.pick(source, self.replicas), target=self.pick(to, self.replicas))

    def step_sync_full(self, source: int, target: int) -> None:
        self.require_replica(source)
        self.require_replica(target)
        self.replicas[target].merge(self.replicas[source].state())
        self.history[target] |= self.history[source]
        self.causal[target] |= self.causal[source]  # not the changes the source holds back
        self.counts[target] = list(map(max, self.counts[target], self.counts[source]))
        self.release(target)

    @rule(source=INDEX)
    def broadcast(self, source: int) -> None:
        self.do("broadcast", source=self.pick(source, self.replicas))

    #: Implementations that promise to send no delta when they made no operation since their last
    #: (``take_deltas``: nothing pending, nothing sent). An empty delta is waste on every link, not a
    #: wrong value, so other adapters (the guide's example sends one) are not held to it.
    quiet_when_idle: ClassVar[frozenset[str]] = frozenset()

    def step_broadcast(self, source: int) -> None:
        self.require_replica(source)
        deltas = tuple(self.replicas[source].take_deltas())
        ops = frozenset(self.unsent[source])
        self.unsent[source] = set()
        if deltas and not ops and self.implementation.name in self.quiet_when_idle:
            raise AssertionError(f"replica {source} made no operation since its last delta, yet sends {deltas!r:.80}")
        if not deltas and not ops:
            return
        for target in range(len(self.replicas)):
            if target != source:
                self.in_flight.append(Message(source, target, deltas, ops))

    def _deliver(self, message: Message) -> None:
        for delta in message.deltas:
            self.replicas[message.target].apply_delta(delta)
        self.arrive(message.target, message.ops, message.source)

    def arrive(self, target: int, ops: Iterable[Any], source: Any = None) -> None:
        """``ops`` reach replica ``target`` in a delta of replica ``source``'s: each is applied
        once the replica applies its causal past (``applied``); a lying peer's, at once."""
        for op in ops:
            change = (source, op)
            if change not in self.pasts:
                self.causal[target].add(change)  # a lying peer's: no past, no number
            elif change not in self.causal[target]:
                self.held[target].add(change)
            self.history[target].add(op)
        self.release(target)

    def release(self, index: int) -> None:
        """Replica ``index`` applies every change it holds back whose causal past it now applies."""
        held, counts = self.held[index], self.counts[index]
        while ready := [change for change in held if all(map(int.__le__, self.pasts[change], counts))]:
            for change in ready:
                held.discard(change)
                self._apply(index, change)

    def _apply(self, index: int, change: tuple[Any, Any]) -> None:
        self.causal[index].add(change)
        maker = change[0]
        number = self.pasts[change][maker] + 1  # its maker had applied that many of its own before
        self.counts[index][maker] = max(self.counts[index][maker], number)

    def applied(self, index: int) -> frozenset:
        """The changes replica ``index`` applies if its library delivers changes causally, as
        Automerge does (``machines/adapters/automerge.py``: a change waits until every change it
        depends on has arrived), in the model. A change is an operation as one replica made it,
        ``(maker, op)``: a delete is one operation in the model whoever makes it, but one
        replica's delete of an element and another's are two changes with two causal pasts (and,
        in a set, two effects: each removes the adds its maker had applied). A replica applies
        its own changes; a full state's, as far as its source applied them (Automerge's saved
        document leaves out the changes it holds back); a delta's change once it applies the
        change's causal past, every change its maker applied when it made it (``pasts``: kept
        as how many of each maker's first changes that was, ``counts``), and that may release
        others (``release``). A lying peer's operations have no past: applied
        at once. Such a library's value is a function of the changes it applied."""
        return frozenset(self.causal[index])

    @guard(lambda self: bool(self.in_flight))
    @rule(message=INDEX)
    def deliver(self, message: int) -> None:
        self.do("deliver", message=self.pick(message, self.in_flight))

    def step_deliver(self, message: int) -> None:
        self.require(0 <= message < len(self.in_flight), f"no message {message} in flight")
        sent = self.in_flight.pop(message)
        self._deliver(sent)
        self.delivered.append(sent)

    @guard(lambda self: bool(self.in_flight))
    @rule(message=INDEX)
    def drop(self, message: int) -> None:
        self.do("drop", message=self.pick(message, self.in_flight))

    def step_drop(self, message: int) -> None:
        self.require(0 <= message < len(self.in_flight), f"no message {message} in flight")
        self.lost.add(self.in_flight.pop(message).target)

    @guard(lambda self: bool(self.in_flight))
    @rule(message=INDEX)
    def duplicate(self, message: int) -> None:
        self.do("duplicate", message=self.pick(message, self.in_flight))

    def step_duplicate(self, message: int) -> None:
        self.require(0 <= message < len(self.in_flight), f"no message {message} in flight")
        self.in_flight.append(self.in_flight[message])

    @guard(lambda self: bool(self.delivered))
    @rule(message=INDEX)
    def redeliver(self, message: int) -> None:
        self.do("redeliver", message=self.pick(message, self.delivered))

    def step_redeliver(self, message: int) -> None:
        self.require(0 <= message < len(self.delivered), f"no delivered message {message}")
        self._deliver(self.delivered[message])

    @rule()
    def sync_all(self) -> None:
        self.do("sync_all")

    def step_sync_all(self) -> None:
        self.require(bool(self.replicas), "the machine has not started")
        for source in range(1, len(self.replicas)):
            self.step_sync_full(source, 0)
        for target in range(1, len(self.replicas)):
            self.step_sync_full(0, target)
        values = [self.replica_value(r) for r in self.replicas]
        assert all(v == values[0] for v in values), f"replicas disagree after a full sync: {values}"

    # ----- invariants and the failure report -----------------------------------------

    def seen_and_model(self, index: int) -> tuple[frozenset, Any]:
        """Replica ``index``'s history, frozen, and the model's value of it.

        Remembered until the history changes: a history only ever grows (operations are
        added, never removed), so the same set at the same size is the same history. Without
        this, every step re-evaluated the model for every replica, though most steps change
        one history or none, and replaying a long trace grew with the square of its steps.
        """
        history = self.history[index]
        cached = self._model_cache.get(index)
        if cached is None or cached[0] is not history or cached[1] != len(history):
            seen = frozenset(history)
            cached = self._model_cache[index] = (history, len(history), seen, self.model_value(seen))
        return cached[2], cached[3]

    # ----- the report: replication in the domain's words --------------------------------

    # Report code keeps its words inside f-strings: Hypothesis mines the literal constants of every
    # loaded module (not those of f-strings), and a new one reshuffles every derandomized search.

    #: Peers that are no replica of the machine (its strangers, its attackers): reports name them from the
    #: end of the alphabet (``X``, ``Y``, ``Z`` for three), as replicas are named from its start.
    outsiders: ClassVar[tuple[int, ...]] = ()

    def peer_name(self, replica: int) -> str:
        """A replica as the ids it makes name it: replica 0 is ``A``, replica 1 ``B``...; an outsider
        a letter from the end of the alphabet; any other peer its number in brackets."""
        if replica in self.outsiders:
            return ascii_uppercase[len(ascii_uppercase) - len(self.outsiders) + self.outsiders.index(replica)]
        return ascii_uppercase[replica] if 0 <= replica < len(self.replicas) else f"[{replica:,}]"

    @staticmethod
    def counter_text(counter: int) -> str:
        """A counter as people read it: as it is when small; far up the 64-bit range ``2^64-1``, ``2^63``."""
        if counter < 2**20:
            return f"{counter}"
        if 2**64 - counter < 2**20:
            return f"2^64-{2**64 - counter}"
        return f"2^{63}" if counter == 2**63 else f"{counter:,}"

    def id_name(self, replica: int, counter: int) -> str:
        """An id made by ``replica`` with ``counter`` (an add's tag, an element's id): ``A3`` is replica
        0's id with counter 3; a counter far up the 64-bit range reads ``A(2^64-1)``."""
        shown = self.counter_text(counter)
        return f"{self.peer_name(replica)}{shown if counter < 2**20 else f'({shown})'}"

    def sender_name(self, source: int) -> str:
        """Whose message it is: a replica's, or (a negative source) a lying peer's."""
        return f"{f'replica {source}' if source >= 0 else 'a lying peer'}"

    def describe_op(self, op: Any) -> str:
        """One operation of the model, as a person reads it (a subclass says it in its words)."""
        return str(op)

    def describe_ops(self, ops: Iterable[Any]) -> str:
        return "; ".join(sorted(self.describe_op(op) for op in ops)) or "nothing new"

    def describe_step(self, step: Step) -> str:
        """Who sends what to whom: the operations a delta or a state carries, by the model."""
        a = step.args
        try:
            if step.rule == "start":
                return f"start {a['replicas']} replicas, clocks skewed by " + ", ".join(f"{s:+,} ns" for s in a["skews_ns"])
            if step.rule == "advance_clock":
                return f"the shared clock moves {a['ns']:,} ns"
            if step.rule in ("deliver", "drop", "duplicate"):
                m = self.in_flight[a["message"]]
                verb = {"deliver": "arrives at", "drop": "is lost on its way to", "duplicate": "is sent again to"}[step.rule]
                return f"{self.sender_name(m.source)}'s delta ({self.describe_ops(m.ops)}) {verb} replica {m.target}"
            if step.rule == "redeliver":
                m = self.delivered[a["message"]]
                return f"{self.sender_name(m.source)}'s delta ({self.describe_ops(m.ops)}) arrives again at replica {m.target}"
            if step.rule == "broadcast":
                pending = self.describe_ops(self.unsent[a["source"]])
                return f"replica {a['source']} sends its pending delta ({pending}) to every other"
            if step.rule == "send_delta":
                return (f"replica {a['source']} sends its pending delta ({self.describe_ops(self.unsent[a['source']])}); "
                        f"it arrives at once at replica {a['target']}, the other copies stay in flight")
            if step.rule == "sync_full":
                new = self.history[a["source"]] - self.history[a["target"]]
                return (f"replica {a['source']}'s whole state merges into replica {a['target']} "
                        f"(new to it: {self.describe_ops(new)})")
            if step.rule == "sync_all":
                return "every replica merges every other's whole state"
        except (IndexError, KeyError, TypeError, ValueError, AttributeError):
            pass
        return super().describe_step(step)

    def observe(self) -> list[Observation]:
        observations = []
        for i, replica in enumerate(self.replicas):
            seen, model = self.seen_and_model(i)
            actual = self.replica_value(replica)
            observations.append(Observation(f"replica {i}", model, actual, self.acceptable(seen, model, actual)))
        return observations

    def check(self) -> None:
        if type(self).observe is not ReplicatedMachine.observe:
            self.check_observations()  # a machine with report rows of its own is checked on them
            return
        # The same verdicts as ``observe``, without building its report rows on every step.
        values = []
        for i, replica in enumerate(self.replicas):
            seen, model = self.seen_and_model(i)
            actual = self.replica_value(replica)
            assert self.acceptable(seen, model, actual), f"replica {i} has {actual!r}, the model says {model!r}"
            values.append(actual)
        self.check_settled(values)

    def check_observations(self) -> None:
        observations = self.observe()
        for observation in observations:
            assert observation.agrees, (
                f"{observation.label} has {observation.implementation!r}, "
                f"the model says {observation.model!r}"
            )
        self.check_settled([observation.implementation for observation in observations])

    def check_settled(self, values: list) -> None:
        """When every message sent has arrived or been dropped: replicas that lost none, have
        seen the same operations and would apply the same changes under causal delivery
        (``applied``) hold the same value, at every level.

        Such a replica has received every delta ever sent, directly (a full state may leave
        out updates its source holds back, as Yrs's does; a delta does not). A library that
        applies every delta on arrival holds what its history says. One that delivers changes
        causally holds what it applied, which the history alone does not tell: replica 4 deletes
        an element after a full state from replica 1 brought it an insert replica 1 never sent;
        replica 0 deletes the same element itself. Replicas 0, 2 and 3 have seen the same
        operations, but replicas 2 and 3 hold replica 4's delete back for ever, waiting for that
        insert (``regressions/traces/rga-automerge-delete-waits-for-an-unsent-insert.json``). So
        replicas of one history that disagree are compared again, grouped by the changes they
        apply: apart from such a wait (or one operation made by two replicas), the same groups."""
        if self.in_flight:
            return
        groups: dict[frozenset, list[int]] = {}
        for index in range(len(self.history)):
            if index not in self.lost:
                groups.setdefault(self.seen_and_model(index)[0], []).append(index)
        for group in groups.values():
            if any(values[i] != values[group[0]] for i in group):  # else no need to tell them apart
                applying: dict[frozenset, list[int]] = {}
                for index in group:
                    applying.setdefault(self.applied(index), []).append(index)
                for indices in applying.values():
                    assert all(values[i] == values[indices[0]] for i in indices), (
                        "every delta delivered, none dropped to replicas "
                        f"{indices}, which have seen the same operations and would apply the same changes under "
                        f"causal delivery, yet they disagree: " + ", ".join(f"replica {i} has {values[i]!r}" for i in indices)
                    )



class SendsDeltas:
    """``send_delta`` for a ``ReplicatedMachine`` (mix it in first): a replica broadcasts its
    pending deltas and one copy is delivered at once, the others stay in flight. Alone,
    ``broadcast`` then ``deliver`` is rare (``deliver`` is refused whenever nothing is in
    flight), so without it the delta path is starved: the task-list machine delivered 133
    deltas in 10,600 steps, against 1,620 full-state syncs."""

    rule_classes: ClassVar[dict[str, str]] = {"send_delta": "delivery"}

    @rule(source=INDEX, to=INDEX)
    def send_delta(self, source: int, to: int) -> None:
        """Broadcast and deliver to one replica at once (the other copies stay in flight):
        deltas that arrived are what ``redeliver`` replays."""
        source_index = self.pick(source, self.replicas)
        others = [i for i in range(len(self.replicas)) if i != source_index]
        self.do("send_delta", source=source_index, target=others[self.pick(to, others)])

    def step_send_delta(self, source: int, target: int) -> None:
        self.require_replica(source)
        self.require_replica(target)
        self.require(source != target, f"a replica does not send to itself (source = target = {source})")
        before = len(self.in_flight)
        self.step_broadcast(source)
        for index in range(before, len(self.in_flight)):
            if self.in_flight[index].target == target:
                self.step_deliver(index)
                break


class HostilePeers:
    """A peer that lies well, for a ``ReplicatedMachine`` subclass (mix it in first).

    ``hostile`` draws one of the machine's ``lies`` (``harness.hostile.LIES``), resolves it
    against the model (which replica, which counters, which genuine message to spoil) into a
    step ``hostile(target, lie, whole_state, ...)``; the step has the implementation's
    crafter (``harness.hostile.crafter_for``) render it, delivers it to replica ``target``
    as a delta or a full state, and checks what the lie calls for with
    ``harness.hostile.deliver_hostile``: a refusal is a ``DecodeError`` that leaves
    ``state()`` unchanged; an accepted message's operations join the target's history.
    The ordinary checks then hold after this and every later step (values equal the
    model's, the replica's own later operations work).

    A subclass provides ``lie_weights`` (how often each lie is told), ``hostile_args`` (the
    raw draw resolved into the step's arguments) and ``tell`` (the crafted bytes, the
    outcome to expect, the model operations if it is accepted), and may check what a refusal
    says (``check_refusal``). Implementations without a
    crafter are checked without the adversary: the step is not among their rules.
    """

    #: How often each lie is drawn, relative to the others.
    lie_weights: ClassVar[dict[str, int]] = {}

    @property
    def crafter(self) -> Any:
        return crafter_for(self.name, self.implementation.name, self.raw(0) if self.replicas else None)

    def raw(self, index: int) -> Any:
        """Replica ``index`` as its adapter made it, without the contract's wrappers."""
        replica = self.replicas[index]
        while hasattr(type(replica), "unwrapped"):
            replica = replica.unwrapped
        return replica

    @classmethod
    def crafter_of(cls, implementation: Any) -> Any | None:
        """The crafter of ``implementation``: registered by its name, or for the type of its
        replicas (a test's buggy subclass); None if it has none."""
        found = crafter_for(cls.name, implementation.name)
        if found is not None:
            return found
        try:
            replica = implementation.make_replica(0, ManualClock(START_NS))
        except Exception:  # an implementation that cannot start here is the preflight's to report
            return None
        found = crafter_for(cls.name, implementation.name, replica)
        close = getattr(replica, "close", None)
        if callable(close):
            close()
        return found

    @classmethod
    def rule_names_for(cls, implementation: Any) -> tuple[str, ...]:
        names = super().rule_names_for(implementation)
        return names if cls.crafter_of(implementation) is not None else tuple(name for name in names if name != "hostile")

    def lie_table(self) -> list[str]:
        supported = getattr(self.crafter, "lies", tuple(self.lie_weights))
        return [lie for lie, weight in self.lie_weights.items() if lie in supported for _ in range(weight)]

    @guard(lambda self: bool(self.replicas) and self.crafter is not None)
    @rule(lie=st.integers(0, 255), to=INDEX, draw=st.integers(0, 2**16), whole=st.booleans())
    def hostile(self, lie: int, to: int, draw: int, whole: bool) -> None:
        table = self.lie_table()
        name = table[lie % len(table)]
        target = self.pick(to, self.replicas)
        args = {"whole_state": whole, **self.hostile_args(name, target, draw)}  # a lie may insist on one of them
        self.do("hostile", target=target, lie=name, **args)

    def step_hostile(self, target: int, lie: str, whole_state: bool, **args: Any) -> None:
        self.require_replica(target)
        self.require(lie in LIES, f"unknown lie {lie!r}")
        if self.crafter is None:
            return  # a trace replayed against an implementation the adversary cannot speak to: the rest still checks
        message, outcome, ops = self.tell(target, lie, whole_state, **args)
        replica = self.replicas[target]
        refusal = deliver_hostile(replica, message, whole_state, outcome, lie)
        if refusal is None:
            self.arrive(target, ops)
        else:
            kind = getattr(self.crafter, "kind", None)  # the kind of message it renders, if the crafter says
            if kind is not None:
                assert kind(whole_state) in str(refusal), (
                    f"{lie}: the refusal does not name the {kind(whole_state)} it refused: {refusal}")
            self.check_refusal(target, lie, whole_state, refusal, **args)
        replica.state()  # the lie did not poison the replica's own encoding

    def check_refusal(self, target: int, lie: str, whole_state: bool, refusal: Exception, **args: Any) -> None:
        """Check that ``refusal`` (of a lie told to replica ``target``) names what is wrong, as
        the house rule asks of every refusal: a machine that knows which limit or field its lie
        spoils overrides this (``LWWMachine``); by default a refusal need only be one (and name
        the kind of message it refused, if the crafter says: ``step_hostile`` checks that)."""

    def genuine(self, whole_state: bool, message: int | None = None, source: int | None = None) -> bytes:
        """The genuine message a lie spoils: the first delta of ``message`` in flight, or
        replica ``source``'s whole state (as the step's ``whole_state`` says)."""
        if message is not None:
            self.require(not whole_state, "a message in flight is a delta")
            self.require(0 <= message < len(self.in_flight), f"no message {message} in flight")
            return self.in_flight[message].deltas[0]
        self.require(whole_state, "a replica's state is a whole state")
        self.require(source is not None, "a lie names a message in flight or a source replica")
        self.require_replica(source)
        return self.replicas[source].state()

    def describe_step(self, step: Step) -> str:
        if step.rule == "hostile":
            a = step.args
            what = "a whole state" if a.get("whole_state") else "a delta"
            return f"a lying peer sends replica {a.get('target')} {what}: {str(a.get('lie', '')).replace('_', ' ')}"
        return super().describe_step(step)

    def hostile_args(self, lie: str, target: int, draw: int) -> dict[str, Any]:
        """The step's arguments for ``lie`` told to ``target`` (``draw``: a raw choice)."""
        raise NotImplementedError

    def tell(self, target: int, lie: str, whole_state: bool, **args: Any) -> tuple[bytes, str, frozenset]:
        """The crafted message, the outcome ``harness.hostile`` expects, and the operations
        the model learns if the message is accepted."""
        raise NotImplementedError

    def known_counter(self, target: int, replica: int) -> int:
        """The greatest counter of ``replica``'s operations replica ``target`` has seen in
        the model (its own: how many it made). A subclass says how to read one."""
        raise NotImplementedError
