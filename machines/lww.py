"""The LWW register machine: ``models.lww`` against every registered ``lww`` implementation.

Replicas write values from a small pool (so equal values happen too) and replicate
through the faulty network of ``ReplicatedMachine``. The model stamps each write with
``models.lww.next_timestamp`` over the timestamps the writing replica has seen and that
replica's clock reading, so a replica whose clock is behind still writes above what it has
seen, and two replicas whose clocks agree (skew 0, no clock advance between their writes)
or that saw the same greatest write issue equal timestamps: ties broken by writer id
happen in ordinary runs. A write is often made by the replica that most recently received
something (``after_receiving``), since a write right after news is where a clock that forgets
what it saw goes wrong; ``write_and_broadcast`` gossips a write at once, so deltas are in
flight more often than after plain ``write`` + ``broadcast``.

Values in a trace are JSON: strings, integers, null, and ``{"bytes": "<hex>"}`` for bytes.

Levels:

* ``exact``: after every step each replica's value is ``models.lww.value`` of the history
  it has seen.
* ``convergent`` (e.g. a Yrs map key, where the higher client id wins concurrent writes and
  no clock is read): a write replaces the writes its replica had seen, but concurrent writes
  may be arbitrated another way, and a replica may hold back a write whose causal past has
  not all arrived (Yrs does), so a write replaces for sure only the writes its replica had
  seen *with their whole causal past*. A replica's value is always one written in its
  history (or None); a local write is the replica's value at once; after a full sync all
  replicas hold the same value, that of a write no other write replaced.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import machine_test
from machines.replicated import INDEX, SKEWS, ReplicatedMachine
from models import lww as model
from models.clock import NS_PER_MS, OffsetClock

#: Clock skews: the shared ones, but replicas often share a skew, so their writes tie.
TYING_SKEWS = st.one_of(st.sampled_from([0, 0, NS_PER_MS]), SKEWS)
#: The values replicas write, as they appear in traces.
VALUES = ("a", "b", 128, None, {"bytes": "ab" * 32})


def value_from_trace(raw: Any) -> Any:
    """A written value from its JSON form (``{"bytes": hex}`` for bytes), or ValueError."""
    if isinstance(raw, dict):
        if set(raw) != {"bytes"} or not isinstance(raw["bytes"], str):
            raise ValueError(f"a bytes value is written {{'bytes': '<hex>'}}, got {raw!r}")
        return bytes.fromhex(raw["bytes"])
    if raw is None or (isinstance(raw, (str, int)) and not isinstance(raw, bool)):
        return raw
    raise ValueError(f"a written value is a string, an integer, null or {{'bytes': '<hex>'}}, got {raw!r}")


class LWWMachine(ReplicatedMachine):
    name = "lww"
    rule_classes: ClassVar[dict[str, str]] = {"write": "operations", "write_and_broadcast": "operations"}
    levels = ("exact", "convergent")

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.clocks: list[OffsetClock] = []  # model: each replica's view of the shared clock
        self.past: dict[model.Write, frozenset] = {}  # every write a write's replica had seen, transitively
        self.replaced: dict[model.Write, frozenset] = {}  # the part of that past seen with its own past
        self.last_receiver: int | None = None  # the replica that most recently received a write

    @property
    def exact(self) -> bool:
        return self.implementation.level == "exact"

    @initialize(count=st.integers(2, 5), skews=st.lists(TYING_SKEWS, min_size=5, max_size=5))
    def start(self, count: int, skews: list[int]) -> None:
        count = max(self.min_replicas, min(self.max_replicas, count))
        self.do("start", replicas=count, skews_ns=skews[:count])

    def step_start(self, replicas: int, skews_ns: list[int]) -> None:
        super().step_start(replicas, skews_ns)
        self.clocks = [OffsetClock(self.clock, skew) for skew in skews_ns]

    def model_value(self, history: frozenset) -> Any:
        return model.value(history)

    def acceptable(self, history: frozenset, model_value: Any, replica_value: Any) -> bool:
        if self.exact:
            return model_value == replica_value
        return replica_value is None or replica_value in {w.value for w in history}

    def not_replaced(self, history: frozenset) -> set:
        """The values of the writes of ``history`` that no other write of it replaced."""
        replaced = set().union(*(self.replaced[w] for w in history))
        return {w.value for w in history - replaced}

    def writer(self, raw: int, after_receiving: bool) -> int:
        """The replica a write step uses: often the one that just received something, since
        a write right after news is where a clock that forgets what it saw goes wrong."""
        if after_receiving and self.last_receiver is not None:
            return self.last_receiver
        return self.pick(raw, self.replicas)

    def _deliver(self, message) -> None:
        super()._deliver(message)
        self.last_receiver = message.target

    def step_sync_full(self, source: int, target: int) -> None:
        super().step_sync_full(source, target)
        self.last_receiver = target

    @rule(replica=INDEX, written=st.sampled_from(VALUES), after_receiving=st.booleans())
    def write(self, replica: int, written: Any, after_receiving: bool) -> None:
        self.do("write", replica=self.writer(replica, after_receiving), value=written)

    def step_write(self, replica: int, value: Any) -> None:
        self.require_replica(replica)
        try:
            written = value_from_trace(value)
        except ValueError as error:
            self.require(False, str(error))
        history = self.history[replica]
        seen = [w.timestamp for w in history]
        timestamp = model.next_timestamp(seen, self.clocks[replica].now())
        assert all(timestamp > t for t in seen), f"model: {timestamp} is not above every timestamp seen"
        write = model.Write(timestamp, replica, written)
        self.past[write] = frozenset(history).union(*(self.past[w] for w in history))
        self.replaced[write] = frozenset(w for w in history if self.past[w] <= history)
        self.replicas[replica].write(written)
        self.record_local(replica, write)
        actual = self.replica_value(self.replicas[replica])
        assert actual == written, f"replica {replica} wrote {written!r} but has {actual!r}"

    @rule(replica=INDEX, written=st.sampled_from(VALUES), after_receiving=st.booleans())
    def write_and_broadcast(self, replica: int, written: Any, after_receiving: bool) -> None:
        self.do("write_and_broadcast", replica=self.writer(replica, after_receiving), value=written)

    def step_write_and_broadcast(self, replica: int, value: Any) -> None:
        """A write whose delta leaves at once, as a replica that gossips on every write does."""
        self.step_write(replica, value)
        self.step_broadcast(replica)

    def step_sync_all(self) -> None:
        super().step_sync_all()  # every replica holds the same value
        if not self.exact:
            everything = frozenset().union(*self.history)
            actual, allowed = self.replica_value(self.replicas[0]), self.not_replaced(everything)
            assert actual in allowed or not everything, (
                f"after a full sync every replica has {actual!r}, which a later write has replaced; "
                f"the writes no other replaced hold {allowed!r}"
            )


test_lww_machine = machine_test(LWWMachine)
