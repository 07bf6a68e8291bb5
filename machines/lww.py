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
flight more often than after plain ``write`` + ``broadcast``. An implementation that refuses a
caller's mistakes (its crafter says ``refuses_caller_mistakes``) is also given them
(``caller_mistake``): a float, a bool, a list or an integer outside [-2^63, 2^64 - 1] as a local
write, and a replica id that is no u64, each refused naming it, and the edge beside each taken.

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

from harness import guard, machine_test
from harness.hostile import ENVELOPE_SPOILINGS, envelope_refusal, spoil_envelope
from harness.replay import show
from implementations.limits import LIMITS, MAX_CLOCK_AHEAD_NS, MAX_HLC_COUNTER, U64_MAX
from machines.replicated import INDEX, SKEWS, START_NS, HostilePeers, ReplicatedMachine
from models import lww as model
from models.clock import NS_PER_DAY, NS_PER_MS, OffsetClock

#: Clock skews: the shared ones, but replicas often share a skew, so their writes tie.
TYING_SKEWS = st.one_of(st.sampled_from([0, 0, NS_PER_MS]), SKEWS)
#: The values replicas write, as they appear in traces.
VALUES = ("a", "b", 128, None, {"bytes": "ab" * 32})
#: Writer ids of strangers: peers no honest replica is, whose writes are legal.
STRANGERS = (2**40, 2**64 - 1)
#: The limits a lying timestamp passes, as ``implementations.limits`` declares them: a
#: refusal must name the one it passed (``OverLimit.limit``).
CLOCK_AHEAD, COUNTER_LIMIT = LIMITS["MAX_CLOCK_AHEAD_NS"], LIMITS["MAX_HLC_COUNTER"]
#: The fields of a write on the wire a lie may spoil, and values of the wrong kind for them
#: (``body``: the whole body, of the wrong length or not a list; empty, which only a state may
#: be): the refusal must name the field.
TIMESTAMP_FIELDS = ("wall_ns", "counter")
#: What each field holds: a refusal of a value of another kind names the kind it got.
FIELD_KINDS = {"wall_ns": int, "counter": int, "writer": int, "value": (type(None), int, str, bytes), "body": list}
#: How a refusal of a value of another kind says what the field holds.
EXPECTED = {"wall_ns": "expected int", "counter": "expected int", "writer": "expected int",
            "value": "expected nil, int, str or bytes", "body": "expected array"}
WRONG_KIND = (("wall_ns", -1), ("counter", "0"), ("writer", "a stranger"), ("value", 0.5), ("body", [0, 1, 2]), ("body", 0),
              ("body", []))
#: A caller's mistakes (``caller_mistake``), told only to an implementation whose crafter says it
#: refuses them (``refuses_caller_mistakes``; a Yrs map holds a float): a local write or a new
#: replica, the value passed, and what the refusal (``TypeError`` or ``ValueError``) must name;
#: None: the value at the edge beside a mistake, taken as it is.
CALLER_MISTAKES = {
    "write-float": ("write", 0.5, ("float", "0.5")),
    "write-bool": ("write", True, ("bool", "True")),
    "write-list": ("write", ["a"], ("list", "['a']")),
    "write-below-i64": ("write", -(2**63) - 1, (str(-(2**63) - 1),)),
    "write-past-u64": ("write", 2**64, (str(2**64),)),
    "write-i64-min": ("write", -(2**63), None),
    "write-u64-max": ("write", 2**64 - 1, None),
    "replica-negative": ("replica", -1, ("replica_id", "-1")),
    "replica-bool": ("replica", True, ("replica_id", "True")),
    "replica-past-u64": ("replica", 2**64, ("replica_id", str(2**64))),
    "replica-u64-max": ("replica", 2**64 - 1, None),
}


def value_from_trace(raw: Any) -> Any:
    """A written value from its JSON form (``{"bytes": hex}`` for bytes), or ValueError."""
    if isinstance(raw, dict):
        if set(raw) != {"bytes"} or not isinstance(raw["bytes"], str):
            raise ValueError(f"a bytes value is written {{'bytes': '<hex>'}}, got {raw!r}")
        return bytes.fromhex(raw["bytes"])
    if raw is None or (isinstance(raw, (str, int)) and not isinstance(raw, bool)):
        return raw
    raise ValueError(f"a written value is a string, an integer, null or {{'bytes': '<hex>'}}, got {raw!r}")


class LWWMachine(HostilePeers, ReplicatedMachine):
    name = "lww"
    rule_classes: ClassVar[dict[str, str]] = {"write": "operations", "write_and_broadcast": "operations",
                                              "caller_mistake": "operations"}
    #: Each class's least share of the steps under ci: about half the least share measured against
    #: any implementation (harness.balance; the coverage table prints them): shares move when a
    #: merge reshuffles the derandomized search, or a test runs the machine with fewer examples.
    class_floors: ClassVar[dict[str, float]] = {
        "operations": 0.09, "delivery": 0.08, "sync": 0.12, "faults": 0.035, "time": 0.05, "adversary": 0.07}
    levels = ("exact", "convergent")

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.clocks: list[OffsetClock] = []  # model: each replica's view of the shared clock
        self.past: dict[model.Write, frozenset] = {}  # every write a write's replica had seen, transitively
        self.replaced: dict[model.Write, frozenset] = {}  # the part of that past seen with its own past
        self.last_receiver: int | None = None  # the replica that most recently received a write
        self.stranger_writes = 1  # the least counter of the next stranger write not at counter 0
        self.envelopes = 0  # bad_envelope lies told
        self.fields_spoiled = 0  # one_field_wrong lies told

    @property
    def exact(self) -> bool:
        return self.implementation.level == "exact"

    @classmethod
    def rule_names_for(cls, implementation: Any) -> tuple[str, ...]:
        """``caller_mistake`` only for an implementation whose crafter says it refuses them."""
        names = super().rule_names_for(implementation)
        if getattr(cls.crafter_of(implementation), "refuses_caller_mistakes", False):
            return names
        return tuple(name for name in names if name != "caller_mistake")

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

    # ----- the report: which timestamp and writer decide ---------------------------------

    @staticmethod
    def stamp(timestamp: model.Timestamp) -> str:
        """A timestamp as the report shows it: wall time from the machine's start, and counter."""
        return f"t{timestamp.wall_ns - START_NS:+,} ns c{timestamp.counter}"

    def describe_op(self, op: model.Write) -> str:
        return f"{show(op.value)} by replica {op.writer} at {self.stamp(op.timestamp)}"

    def describe_step(self, step) -> str:
        if step.rule in ("write", "write_and_broadcast"):
            try:
                replica, written = step.args["replica"], value_from_trace(step.args["value"])
                history = self.history[replica]
                timestamp = model.next_timestamp([w.timestamp for w in history], self.clocks[replica].now())
                current = model.winner(history)
                against = "nothing written yet" if current is None else f"it holds {self.describe_op(current)}"
                sent = "; its delta leaves at once" if step.rule == "write_and_broadcast" else ""
                return f"replica {replica} writes {show(written)} at {self.stamp(timestamp)} ({against}){sent}"
            except (IndexError, KeyError, TypeError, ValueError):
                pass
        if step.rule == "caller_mistake" and step.args.get("how") in CALLER_MISTAKES:
            what, value, named = CALLER_MISTAKES[step.args["how"]]
            outcome = "taken (the edge)" if named is None else "must be refused, naming it"
            if what == "write":
                return f"a caller writes {value!r} ({type(value).__name__}) on replica {step.args.get('replica')}: {outcome}"
            return f"a caller makes a replica with id {value!r}: {outcome}"
        return super().describe_step(step)

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

    # ----- the adversary (machines.replicated.HostilePeers) ------------------------------
    #
    # A crafter for the ``lww`` machine offers ``lies`` and, each rendering an ``lww.state``
    # (if ``whole_state``) or ``lww.delta`` message of its implementation:
    #
    # * ``write(whole_state, wall_ns, counter, writer, value)``: a message carrying that write;
    # * ``tamper(genuine, whole_state, field, value)``: the genuine message with its write's
    #   ``field`` (``"wall_ns"``, ``"counter"``, ``"writer"`` or ``"value"``) set to ``value``, or
    #   the whole body if ``field`` is ``"body"``;
    # * ``kind(whole_state)`` (optional): the kind of message it renders, which a refusal
    #   of it must name.
    # * ``places`` (optional, with ``kind``): per field, the place a refusal of that field
    #   spoiled names after the kind of message, word for word (``"body[0] (wall_ns): "``).
    # * ``version`` (optional, with ``kind``): the version of the messages it renders; then the
    #   ``bad_envelope`` lie spoils a genuine message's envelope (``harness.hostile.spoil_envelope``).

    lie_weights: ClassVar[dict[str, int]] = {"clock_ahead": 2, "counter_at_max": 2, "counter_at_limit": 2, "forged_copy": 2,
                                             "stranger_ops": 3, "one_field_wrong": 3, "bad_envelope": 2}

    def latest_wall(self, target: int) -> int:
        """The wall time a write at ``target`` would be stamped with now."""
        seen = [w.timestamp.wall_ns for w in self.history[target]]
        return max([self.clocks[target].now(), *seen])

    def passed_limits(self, target: int, wall_ns: int, counter: int) -> dict[str, int]:
        """The limits a timestamp passes at ``target`` (a clock too far ahead, a counter past
        its limit), by name, each with the number that passes it."""
        passed = {}
        if wall_ns > self.clocks[target].now() + CLOCK_AHEAD.value:
            passed[CLOCK_AHEAD.name] = wall_ns
        if counter > COUNTER_LIMIT.value:
            passed[COUNTER_LIMIT.name] = counter
        return passed

    def last_accepted_wall(self) -> int:
        """The greatest wall time every replica accepts now: MAX_CLOCK_AHEAD_NS past the slowest clock."""
        return min(clock.now() for clock in self.clocks) + MAX_CLOCK_AHEAD_NS

    def is_a_lie(self, target: int, wall_ns: int, counter: int) -> bool:
        """Whether a timestamp is beyond what ``target`` may accept."""
        return bool(self.passed_limits(target, wall_ns, counter))

    def check_refusal(self, target: int, lie: str, whole_state: bool, refusal: Exception, **args: Any) -> None:
        """A refusal names what is wrong (besides the kind of message, which ``step_hostile``
        checks): the declared limit the timestamp passed (``OverLimit.limit``) and the number that
        passed it (and, for a clock ahead, by how much), or the field whose value is wrong and
        the kind of value it got if that is not the field's kind."""
        text = str(refusal)
        kind = getattr(self.crafter, "kind", None)  # step_hostile checked that the refusal names it
        if lie == "forged_copy":
            return  # refused only when the register was never written: a truncated state
        if lie == "bad_envelope":
            names, limit = envelope_refusal(args["spoiling"], kind(whole_state), kind(not whole_state), self.crafter.version)
            missing = [name for name in names if name not in text]
            assert not missing, f"{lie} ({args['spoiling']}): the refusal does not name {missing}: {text}"
            found = getattr(refusal, "limit", None)
            assert found == limit, f"{lie} ({args['spoiling']}): the refusal names the limit {found}, not {limit}: {text}"
            return
        if lie == "one_field_wrong":
            if whole_state and not self.history[args["source"]]:
                return  # a register never written: its state was truncated, there was no field to spoil
            field, to = args["field"], args["to"]
            if self.wrong_kind(field, to):
                assert field in text, f"{lie}: the refusal does not name the field {field} it refused: {text}"
                places = getattr(self.crafter, "places", None)
                if places and kind:  # the crafter knows its wire: the field's place, word for word
                    place = f"{kind(whole_state)}: {places[field]}"
                    assert place in text, f"{lie}: the refusal does not name the place {place!r} of {field}: {text}"
                if field == "body" and isinstance(to, list):
                    assert f"got {len(to)}" in text, f"{lie}: the refusal does not say the body has {len(to)} items: {text}"
                got = type(to).__name__
                if not isinstance(to, FIELD_KINDS[field]):
                    assert got in text, f"{lie}: the refusal does not say it got {got}: {text}"
                    assert EXPECTED[field] in text, f"{lie}: the refusal does not say {EXPECTED[field]!r}: {text}"
                return
            passed = self.passed_limits(target, *self.spoiled_timestamp(field, to))
        else:
            passed = self.passed_limits(target, args["wall_ns"], args["counter"])
        limit = getattr(refusal, "limit", None)
        assert limit in passed, f"{lie}: the refusal names the limit {limit}, not one passed ({sorted(passed)}): {text}"
        assert str(passed[limit]) in text, f"{lie}: the refusal does not name the {passed[limit]} that passed {limit}: {text}"
        if limit == CLOCK_AHEAD.name:
            ahead = passed[limit] - self.clocks[target].now()
            assert str(ahead) in text or f"{ahead:,}" in text, f"{lie}: the refusal does not say it is {ahead} ns ahead: {text}"

    @staticmethod
    def wrong_kind(field: str, to: Any) -> bool:
        """Whether a ``one_field_wrong`` lie sets ``field`` to a value of the wrong kind (not a
        number past a limit)."""
        return field not in TIMESTAMP_FIELDS or not isinstance(to, int) or isinstance(to, bool) or to < 0

    @staticmethod
    def spoiled_timestamp(field: str, to: Any) -> tuple[int, int]:
        """The part of a timestamp a ``one_field_wrong`` lie sets, the other part zero."""
        return (to, 0) if field == "wall_ns" else (0, to)

    def hostile_args(self, lie: str, target: int, draw: int) -> dict[str, Any]:
        now = self.clocks[target].now()
        written = VALUES[draw % len(VALUES)]
        if lie == "clock_ahead":
            wall = (now + MAX_CLOCK_AHEAD_NS + 1, now + MAX_CLOCK_AHEAD_NS + NS_PER_DAY, 2**63, U64_MAX)[draw % 4]
            return {"wall_ns": wall, "counter": 0, "writer": STRANGERS[0], "value": written}
        if lie == "counter_at_max":
            counter = (MAX_HLC_COUNTER + 1, U64_MAX - 1, U64_MAX)[draw % 3]
            return {"wall_ns": self.latest_wall(target), "counter": counter, "writer": STRANGERS[0], "value": written}
        if lie == "forged_copy":  # the target's own state, its write's value changed
            return {"whole_state": True, "value": written}
        if lie == "bad_envelope":
            # Every spoiling in turn: the search's draws cluster, and some remainders would never come up.
            spoilings, self.envelopes = sorted(ENVELOPE_SPOILINGS), self.envelopes + 1
            how = spoilings[(draw + self.envelopes * 5) % len(spoilings)]
            messages = [i for i, m in enumerate(self.in_flight) if m.target == target and m.deltas]
            if messages and draw & 8:
                return {"message": messages[draw % len(messages)], "spoiling": how, "whole_state": False}
            return {"source": draw % len(self.replicas), "spoiling": how, "whole_state": True}
        if lie == "counter_at_limit":
            # At the limit, or one below: the receiver's next write then reaches it exactly. Below the last wall
            # time every replica accepts: a write there at the limit makes the receiver's next write roll over
            # 1 ns past it, which a replica whose clock is not ahead refuses until its clock moves (lww.py says so).
            writer, counter = STRANGERS[draw % 2], MAX_HLC_COUNTER - (draw >> 1) % 2
            wall = min(self.latest_wall(target), self.last_accepted_wall() - 1)
            taken = {(w.timestamp.wall_ns, w.writer) for history in self.history for w in history
                     if w.timestamp.counter == counter}
            while (wall, writer) in taken:  # a new write, never a copy of another with another value
                wall -= 1  # down: the greatest wall time seen may be the last every replica accepts
            return {"wall_ns": wall, "counter": counter, "writer": writer, "value": written}
        if lie == "stranger_ops":
            # Edges: at the greatest wall time the target has seen (ties its next write on the wall), and exactly
            # MAX_CLOCK_AHEAD_NS ahead of the slowest replica's clock (the last wall time every replica accepts).
            edge = self.last_accepted_wall()
            wall = (0, max(now - NS_PER_DAY, 0), now, now + MAX_CLOCK_AHEAD_NS // 2, self.latest_wall(target), edge)[draw % 6]
            writer = STRANGERS[(draw >> 5) % 2]
            # Counter 0 when no write holds that timestamp (it ties a fresh write on the counter), else a new one.
            free = all((w.timestamp.wall_ns, w.timestamp.counter, w.writer) != (wall, 0, writer)
                       for history in self.history for w in history)
            counter = 0 if free and draw & 16 else self.stranger_writes
            return {"wall_ns": wall, "counter": counter, "writer": writer, "value": written}
        # Every spoiling in turn, as bad_envelope's: the search's draws cluster, and a field's wrong kind
        # (wall_ns -1, say) went untold in whole runs.
        spoilings = (("wall_ns", U64_MAX), ("counter", U64_MAX), ("wall_ns", now + MAX_CLOCK_AHEAD_NS + 1),
                     ("counter", MAX_HLC_COUNTER + 1), *WRONG_KIND)
        self.fields_spoiled += 1
        field, lie_value = spoilings[(draw + self.fields_spoiled * 5) % len(spoilings)]
        messages = [i for i, m in enumerate(self.in_flight) if m.target == target and m.deltas]
        if messages and (draw & 8 or lie_value == []):
            return {"message": messages[draw % len(messages)], "field": field, "to": lie_value, "whole_state": False}
        lie_value = 0 if lie_value == [] else lie_value  # an empty state is a register never written: no lie
        return {"source": draw % len(self.replicas), "field": field, "to": lie_value, "whole_state": True}

    def tell(self, target: int, lie: str, whole_state: bool, **args: Any) -> tuple[bytes, str, frozenset]:
        if lie == "forged_copy":
            self.require(whole_state, "a forged copy is of the target's whole state")
            try:
                forged = value_from_trace(args["value"])
            except ValueError as error:
                self.require(False, str(error))
            # Of a register never written there is no write to copy: its state is truncated, and refused.
            return self.crafter.tamper(self.replicas[target].state(), True, "value", forged), "harmless", frozenset()
        if lie == "bad_envelope":
            self.require(args["spoiling"] in ENVELOPE_SPOILINGS, f"no spoiling {args['spoiling']!r}")
            genuine = self.genuine(whole_state, args.get("message"), args.get("source"))
            return spoil_envelope(genuine, args["spoiling"], self.crafter.kind(not whole_state)), "refused", frozenset()
        if lie == "one_field_wrong":
            genuine = self.genuine(whole_state, args.get("message"), args.get("source"))
            field, to = args["field"], args["to"]
            self.require(field in dict(WRONG_KIND), f"unknown field {field!r}")
            lying = self.wrong_kind(field, to) or self.is_a_lie(target, *self.spoiled_timestamp(field, to))
            self.require(lying and not (whole_state and to == []), f"{to} is no lie")
            # A register never written has no write to spoil: its state is refused as one anyway.
            return self.crafter.tamper(genuine, whole_state, args["field"], args["to"]), "refused", frozenset()
        try:
            written = value_from_trace(args["value"])
        except ValueError as error:
            self.require(False, str(error))
        wall, counter, writer = args["wall_ns"], args["counter"], args["writer"]
        message = self.crafter.write(whole_state, wall, counter, writer, written)
        if lie in ("clock_ahead", "counter_at_max"):
            # A lie told as refused must be one (a trace edited by hand or by the minimizer may
            # have made it an honest write, which a correct replica rightly accepts).
            self.require(self.is_a_lie(target, wall if lie == "clock_ahead" else 0, counter), f"({wall}, {counter}) is no lie")
            return message, "refused", frozenset()
        self.require(writer in STRANGERS, f"writer {writer} is not a stranger")
        if lie == "stranger_ops":
            self.require(counter == 0 or counter >= self.stranger_writes, f"stranger write {counter} was already made")
            self.stranger_writes = max(self.stranger_writes, counter + 1)
        write = model.Write(model.Timestamp(wall, counter), writer, written)
        self.require(all(model.arbitration(w) != model.arbitration(write) for history in self.history for w in history),
                     "a stranger write with the same timestamp was already made")
        self.past[write] = self.replaced[write] = frozenset()
        return message, "accepted", frozenset({write})

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

    @guard(lambda self: bool(self.replicas) and getattr(self.crafter, "refuses_caller_mistakes", False))
    @rule(how=st.sampled_from(sorted(CALLER_MISTAKES)), replica=INDEX, now=st.integers(0, 2))
    def caller_mistake(self, how: str, replica: int, now: int) -> None:
        if now:  # one draw in three: a caller's mistakes are rarer than writes
            return
        self.do("caller_mistake", how=how, replica=self.pick(replica, self.replicas))

    def step_caller_mistake(self, how: str, replica: int) -> None:
        """A caller's programming error: a local write of a value no register holds (a float, a
        bool, a list, an integer outside [-2^63, 2^64 - 1]) on ``replica``, or a new replica with
        an id that is no u64 (the machine's clock): refused with a ``TypeError`` or ``ValueError``
        naming the value (and its type, or the replica id), and nothing changes. The value at the
        edge beside each (-2^63 and 2^64 - 1, as a value or an id) is taken as it is: an edge
        write is an ordinary write from then on."""
        self.require(getattr(self.crafter, "refuses_caller_mistakes", False), "this implementation takes any value")
        self.require(how in CALLER_MISTAKES, f"{how!r} is not one of {sorted(CALLER_MISTAKES)}")
        self.require_replica(replica)
        what, value, named = CALLER_MISTAKES[how]
        if what == "write" and named is None:
            self.step_write(replica, value)
            return
        before = (self.replicas[replica].state(), self.replica_value(self.replicas[replica]))
        try:
            if what == "write":
                self.replicas[replica].write(value)
            else:
                made = self.make_replica(value, self.clocks[replica])
        except (TypeError, ValueError) as error:
            assert named is not None, f"a new replica with id {value}: refused ({type(error).__name__}: {error})"
            missing = [part for part in named if part not in str(error)]
            assert not missing, f"a caller's {how}: refused with {error!r}, which does not name {missing}"
        else:
            assert named is None, f"a caller's {how} ({value!r}): taken, not refused naming {list(named)}"
            assert self.replica_value(made) is None, f"a new replica with id {value} holds {self.replica_value(made)!r}"
        after = (self.replicas[replica].state(), self.replica_value(self.replicas[replica]))
        assert after == before, f"a caller's {how} changed replica {replica}: {before} -> {after}"

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
