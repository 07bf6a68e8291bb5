"""A deliberately tiny machine used to test the framework itself.

The model is a grow-only counter per replica; ``Counter`` is the implementation; the
``buggy`` variant loses an increment when merging a replica with itself's equal count;
``two-bugs`` has that bug and another, distinct one (replica 2 refuses to count past 3).
"""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import Implementation, TracedMachine, guard, register
from harness.machine import Observation


class Counter:
    def __init__(self, replica_id: int, clock, buggy: bool = False) -> None:
        self.id, self.counts, self.buggy = replica_id, {}, buggy

    def increment(self) -> None:
        self.counts[self.id] = self.counts.get(self.id, 0) + 1

    def merge(self, other: dict) -> None:
        for k, v in other.items():
            if self.buggy and v == 3:
                continue
            self.counts[k] = max(self.counts.get(k, 0), v)

    def value(self) -> int:
        return sum(self.counts.values())


class Wobbly(Counter):
    """Non-deterministic on purpose: every other process-wide instance drops merges."""

    made = 0

    def __init__(self, replica_id: int, clock) -> None:
        super().__init__(replica_id, clock)
        Wobbly.made += 1
        self.buggy = Wobbly.made % 4 < 2

    def merge(self, other: dict) -> None:
        if not self.buggy:
            super().merge(other)


class Drifting(Counter):
    """Fails alike in every run, in other numbers: each process-wide instance counts as many
    more than it holds as instances were made before it, itself included."""

    made = 0

    def __init__(self, replica_id: int, clock) -> None:
        super().__init__(replica_id, clock)
        Drifting.made += 1
        self.drift = Drifting.made

    def value(self) -> int:
        return super().value() + self.drift


class TwoBugs(Counter):
    """Two distinct failures: the merge bug, and replica 2 refusing to count past 3."""

    def increment(self) -> None:
        if self.id == 2 and self.counts.get(self.id, 0) >= 3:
            raise OverflowError(f"replica {self.id} cannot count past 3")
        super().increment()


GOOD = register(Implementation("toy-counter", "good", lambda i, c: Counter(i, c)))
BUGGY = register(Implementation("toy-counter", "buggy", lambda i, c: Counter(i, c, buggy=True)))
WOBBLY = register(Implementation("toy-counter", "wobbly", Wobbly))
DRIFTING = register(Implementation("toy-counter", "drifting", Drifting))
TWO_BUGS = register(Implementation("toy-counter", "two-bugs", lambda i, c: TwoBugs(i, c, buggy=True)))


class CounterMachine(TracedMachine):
    name = "toy-counter"
    #: Its rules by class, as every machine declares them (tests/test_balance.py checks every
    #: registered machine, this one too once a test module has imported it).
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", "increment": "operations", "sync": "sync", "never": "operations"}

    def __init__(self, implementation, stats=None):
        super().__init__(implementation, stats)
        self.replicas: list[Counter] = []
        self.seen: list[set[tuple[int, int]]] = []  # model: the increments each replica has seen

    @initialize(n=st.integers(2, 3))
    def start(self, n):
        self.do("start", replicas=n)

    def step_start(self, replicas: int) -> None:
        self.require(not self.replicas, "already started")
        self.require(1 <= replicas <= 5, f"replicas={replicas} outside 1..5")
        self.replicas = [self.implementation.make_replica(i, None) for i in range(replicas)]
        self.seen = [set() for _ in range(replicas)]

    @rule(r=st.integers(0, 4))
    def increment(self, r):
        self.do("increment", replica=r % len(self.replicas))

    def step_increment(self, replica: int) -> None:
        self.require(0 <= replica < len(self.replicas), f"no replica {replica}")
        self.replicas[replica].increment()
        self.seen[replica].add((replica, sum(1 for o, _ in self.seen[replica] if o == replica) + 1))

    @guard(lambda self: len(self.replicas) > 1)
    @rule(a=st.integers(0, 4), b=st.integers(0, 4))
    def sync(self, a, b):
        self.do("sync", source=a % len(self.replicas), target=b % len(self.replicas))

    def step_sync(self, source: int, target: int) -> None:
        n = len(self.replicas)
        self.require(0 <= source < n and 0 <= target < n, f"no replica {source} or {target}")
        self.replicas[target].merge(dict(self.replicas[source].counts))
        self.seen[target] |= self.seen[source]

    def observe(self):
        pairs = zip(self.seen, self.replicas, strict=True)
        return [Observation(f"replica {i}", len(s), r.value()) for i, (s, r) in enumerate(pairs)]

    def check(self) -> None:
        for obs in self.observe():
            assert obs.agrees, f"{obs.label} counts {obs.implementation}, the model says {obs.model}"


class CounterMachineWithDeadRule(CounterMachine):
    """The same machine with a rule whose precondition never holds."""

    @guard(lambda self: False)
    @rule()
    def never(self):
        self.do("never")

    def step_never(self) -> None:
        pass
