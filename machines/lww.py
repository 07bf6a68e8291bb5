"""The LWW register machine: ``models.lww`` against every registered ``lww`` implementation.

Replicas write values from a small pool (so equal values happen too) and replicate
through the faulty network of ``ReplicatedMachine``. The model stamps each write with
``models.lww.next_timestamp`` over the timestamps the writing replica has seen and that
replica's clock reading, so a replica whose clock is behind still writes above what it has
seen, and two replicas whose clocks agree (skew 0, no clock advance between their writes)
or that saw the same greatest write issue equal timestamps: ties broken by writer id
happen in ordinary runs.

Values in a trace are JSON: strings, integers, null, and ``{"bytes": "<hex>"}`` for bytes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import machine_test
from machines.replicated import INDEX, SKEWS, ReplicatedMachine
from models.clock import NS_PER_MS, OffsetClock
from models.lww import Write, next_timestamp, value

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

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.clocks: list[OffsetClock] = []  # model: each replica's view of the shared clock

    @initialize(count=st.integers(2, 5), skews=st.lists(TYING_SKEWS, min_size=5, max_size=5))
    def start(self, count: int, skews: list[int]) -> None:
        count = max(self.min_replicas, min(self.max_replicas, count))
        self.do("start", replicas=count, skews_ns=skews[:count])

    def step_start(self, replicas: int, skews_ns: list[int]) -> None:
        super().step_start(replicas, skews_ns)
        self.clocks = [OffsetClock(self.clock, skew) for skew in skews_ns]

    def model_value(self, history: frozenset) -> Any:
        return value(history)

    @rule(replica=INDEX, written=st.sampled_from(VALUES))
    def write(self, replica: int, written: Any) -> None:
        self.do("write", replica=self.pick(replica, self.replicas), value=written)

    def step_write(self, replica: int, value: Any) -> None:
        self.require_replica(replica)
        try:
            written = value_from_trace(value)
        except ValueError as error:
            self.require(False, str(error))
        seen = [w.timestamp for w in self.history[replica]]
        timestamp = next_timestamp(seen, self.clocks[replica].now())
        assert all(timestamp > t for t in seen), f"model: {timestamp} is not above every timestamp seen"
        self.replicas[replica].write(written)
        self.record_local(replica, Write(timestamp, replica, written))

    @rule(replica=INDEX, written=st.sampled_from(VALUES))
    def write_and_broadcast(self, replica: int, written: Any) -> None:
        self.do("write_and_broadcast", replica=self.pick(replica, self.replicas), value=written)

    def step_write_and_broadcast(self, replica: int, value: Any) -> None:
        """A write whose delta leaves at once, as a replica that gossips on every write does."""
        self.step_write(replica, value)
        self.step_broadcast(replica)


test_lww_machine = machine_test(LWWMachine)
