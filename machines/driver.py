"""The driver that runs a sans-I/O core over a QUIC endpoint (``implementations.transport.driver``,
``CoreDriver``), against what it promises: in process, real QUIC endpoints on 127.0.0.1, on a mock
clock.

Why a machine of its own: the driver is the one place a node reads real time and the one place
its core's messages meet the network. Which tick comes when, what a core's refusal or crash does,
where a message goes and what is counted, realnet sees only through whole node processes (minutes
a mutant, real time). Here a step costs milliseconds and every tick is due at an exact time.

**Set-up.** Three nodes ``a``, ``b``, ``c``, each an endpoint and a driver over a core of this module's
(``ScriptCore``: it does what the messages and the machine tell it and writes down every call; for the
nodes drawn a ``DeadlineCore``, which also asks for the deadline the machine set) in one loop on a
mock clock (``machines.adapters.driver_quic``; each step ends when the loop is quiet: what was sent is
delivered and acknowledged). Each driver has a tick period of its own (0.1 s, 0.25 s or 1 s), a
directory holding the other two nodes' addresses, peers named by name, and, for the nodes drawn, a
``NodeMetrics`` sink. An operation is applied to each driver before its ``run`` starts, as a request
may come first.

**Rules.** ``send``: an operation applied to a node's core (``CoreDriver.apply``) returns 1-4
messages: to another node, to the node itself, or to ``z``, a name no directory holds; each
message asks its receiver to keep it, refuse it (``ValueError``), or answer it with a message to
each of 1-2 names; one may be exactly ``MAX_FRAME_BYTES``, or one byte past it.
``script_tick``: the messages the core returns at its next tick. ``deadline``: the core's next
deadline, in the past, now, soon, later than its period, or none. ``advance``: the clock moves
3 ms to 2 s, timer by timer. ``flood``: five messages of ``MAX_FRAME_BYTES - 4`` bytes at once to
a node it has a connection to (four fill ``MAX_SEND_BUFFER_BYTES`` exactly), then one to the third. ``explode``: a node
is sent a message whose handling raises an exception that is no refusal; its node stops, and a new
driver starts over the same endpoint and core. ``failing_operation``: an operation that raises.

**The model** (this module's bookkeeping; it imports nothing of the driver but names):

* every message the endpoint delivers goes to ``core.handle`` and counts ``received``; one the core
  refuses (a ``ValueError``) counts ``refused`` (and ``mbt_messages_refused_total``) and changes
  nothing more; any other exception ends the driver's ``run`` with it;
* what ``apply``, ``handle`` and ``tick`` return is sent at once: to a name with an open connection,
  on it; to a name in the directory, by ``send_to`` (dialed; delivered once the dial is proven); to
  any other name (the node itself, ``z``) nowhere, counted ``unknown_peer``; a message past
  ``MAX_FRAME_BYTES`` is counted ``too_large``, one the connection's send buffer has no room for
  ``dropped``, each lost while the driver goes on with the rest; every other counts ``sent`` and
  arrives once, after it was sent;
* the core's ``now`` is the wall clock read when the driver started, plus the loop's clock since:
  it never goes back, and a call at loop time ``t`` gets the start's ``now`` plus ``t`` less the
  start;
* ticks: after a tick at ``L`` (or the start) the next is due at ``L`` plus the period, or at the
  core's deadline if it has one and it is sooner, but never sooner than ``MIN_TICK_GAP_NS`` after ``L``; an ``apply``
  that moves it to a time already past gets its tick at once. Each tick counts ``ticks``, its
  messages are sent, and a metered node's ``mbt_peers_online`` is its number of connected peers;
* an operation that raises: ``apply`` raises it, and nothing is sent;
* a core with ``attach_metrics`` is handed the node's sink if it has one, and nothing if not.

After every step each core has been called exactly as the model says (every tick at its time, each
message handled once, after it was sent), no tick is overdue, each driver's ``stats`` and each
metered node's metrics are the model's, and no driver ended but the one that was made to.
"""

from __future__ import annotations

import collections
import json
from collections import Counter
from typing import ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, guard
from harness.machine import Observation
from harness.network import network_machine_test
from implementations.limits import MAX_FRAME_BYTES, MAX_SEND_BUFFER_BYTES

NODES = ("a", "b", "c")
#: Names a core may address: the nodes and one no directory holds.
NAMES = (*NODES, "z")
PERIODS_NS = (100_000_000, 250_000_000, 1_000_000_000)
#: The driver's documented floor between two ticks (``MIN_TICK_GAP_NS``).
MIN_TICK_GAP_NS = 1_000_000
FRAME_HEADER_BYTES = 4
#: Kinds of message, by what the receiving core does with it.
KINDS = ("keep", "refuse", "reply", "full", "oversize")
#: Message sizes (bytes on the wire, before the frame's header): ``full`` is exactly a frame.
SIZES = {"full": MAX_FRAME_BYTES, "oversize": MAX_FRAME_BYTES + 1, "flood": MAX_FRAME_BYTES - FRAME_HEADER_BYTES}
FLOOD = 5
#: Deadlines relative to the step's time, in ns (``None``: no deadline).
DEADLINES_NS = (-50_000_000, 0, 2_000_000, 30_000_000, 400_000_000, None)
ADVANCES = (0.003, 0.05, 0.1, 0.25, 1.0, 2.0)
#: Nanoseconds by which a tick may come after its due time: the loop's clock is a float in seconds,
#: so a timer for a time in whole nanoseconds may fire one or two nanoseconds late.
LATE_NS = 3
#: Nanoseconds by which the loop's clock and a core's ``now`` may round apart.
ROUNDING_NS = 2
#: A core's messages of one call: at most ``MAX_FULL`` of a frame's size (so a batch to one peer never
#: fills the send buffer but in ``flood``, where the model counts what it refuses).
MAX_FULL = 2
OUTGOING = st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(KINDS),
                              st.lists(st.sampled_from(NAMES), min_size=1, max_size=2)),
                    min_size=1, max_size=4).filter(lambda items: sum(kind == "full" for _, kind, _ in items) <= MAX_FULL)


class Exploded(RuntimeError):
    """What ``ScriptCore.handle`` raises for an ``explode`` message: no refusal, a core's bug."""


def well_formed(outgoing: list) -> bool:
    """Whether ``outgoing`` is 1-4 of the machine's messages ``[to, kind, reply_to]``, at most ``MAX_FULL`` full."""
    return 1 <= len(outgoing) <= 4 and all(
        to in NAMES and kind in KINDS and 1 <= len(reply_to) <= 2 and set(reply_to) <= set(NAMES)
        for to, kind, reply_to in outgoing) and sum(kind == "full" for _, kind, _ in outgoing) <= MAX_FULL


def message(ident: str, do: str, to: list[str] = (), size: int = 0) -> bytes:
    """A message for a ``ScriptCore``: JSON naming it and what its receiver does, padded to ``size``."""
    head = json.dumps({"id": ident, "do": do, "to": list(to), "pad": ""}, separators=(",", ":"))
    pad = max(0, size - len(head))
    return (head[:-2] + "x" * pad + head[-2:]).encode()


#: What a ``ScriptCore`` holds as its metrics until a driver attaches a sink.
UNATTACHED = "no sink attached"


class ScriptCore:
    """The machine's core: keeps, refuses, answers or explodes on each message as the message says,
    sends at a tick what the machine scripted, and logs every call as ``(kind, now, message id)``. It
    has no ``next_deadline``: its driver ticks it every period (``DeadlineCore`` has one)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, str | None]] = []
        self.on_tick: list[tuple[str, bytes]] = []
        self.deadline: int | None = None
        self.metrics = UNATTACHED

    def attach_metrics(self, sink) -> None:
        self.metrics = sink

    def tick(self, now: int) -> list:
        self.log.append(("tick", now, None))
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None
        outgoing, self.on_tick = self.on_tick, []
        return outgoing

    def handle(self, data: bytes, now: int) -> list:
        body = json.loads(data)
        self.log.append(("handle", now, body["id"]))
        if body["do"] == "refuse":
            raise ValueError(f"message {body['id']}: refused, as it asks")
        if body["do"] == "explode":
            raise Exploded(f"message {body['id']}: the core's bug, as it asks")
        if body["do"] == "reply":
            return [(to, message(f"{body['id']}.{k}", "keep")) for k, to in enumerate(body["to"])]
        return []


class DeadlineCore(ScriptCore):
    """A ``ScriptCore`` that asks for the deadline the machine set (cleared by the first tick at or past it)."""

    def next_deadline(self, now: int) -> int | None:
        return self.deadline


@attrs.define
class Node:
    """The model of one node's driver."""

    period: int
    metered: bool
    deadlines: bool  # its core has ``next_deadline``
    # Times are on its core's scale (the ``now`` its driver hands it), exact integers:
    start: int = 0  # the loop's clock (ns) when its driver started
    origin: int = 0  # its core's ``now`` then
    last_tick: int = 0  # its last tick (or its start)
    deadline: int | None = None
    poked: int | None = None  # the last ``apply`` since its last tick
    on_tick: list = attrs.Factory(list)  # [(name, id, kind, to)] its next tick sends
    stats: Counter = attrs.Factory(Counter)
    refused_total: int = 0  # across restarts: the metrics sink is the node's
    peers_gauge: int = 0
    seen: int = 0  # entries of its core's log already checked

    def due(self) -> int:
        wake = self.last_tick + self.period
        if self.deadline is not None:
            wake = max(min(wake, self.deadline), self.last_tick + MIN_TICK_GAP_NS)
        return wake if self.poked is None else max(wake, self.poked)


class DriverMachine(TracedMachine):
    name = "driver"
    real_time = False
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", "send": "delivery", "script_tick": "operations",
                                              "deadline": "time", "advance": "time", "flood": "faults",
                                              "explode": "crash", "failing_operation": "adversary"}
    class_floors: ClassVar[dict[str, float]] = {"delivery": 0.15, "time": 0.15}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.loop = None
        self.cores: dict[str, ScriptCore] = {}
        self.drivers: dict = {}
        self.nodes: dict[str, Node] = {}
        self.linked: set[frozenset] = set()
        self.dialed: set[frozenset] = set()  # pairs a message went between this step
        self.number = 0
        self.sent_now: list[tuple[str, int, list]] = []  # this step's applies: node, now, messages
        self.in_flight: Counter = Counter()  # (receiver, id) -> copies the model awaits
        self.sent_at: dict[str, int] = {}
        self.kind_of: dict[str, tuple[str, list]] = {}
        self.exploding: str | None = None

    def teardown(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        self.loop = None

    # --- set-up -------------------------------------------------------------------------------

    @initialize(periods=st.tuples(*[st.sampled_from(PERIODS_NS)] * 3), metered=st.sampled_from(["", "a", "ab", "abc"]),
                deadlines=st.sampled_from(["abc", "ab", "bc", "a"]))
    def start(self, periods, metered, deadlines):
        self.do("start", periods=list(periods), metered=metered, deadlines=deadlines)

    def step_start(self, periods: list[int], metered: str, deadlines: str = "abc") -> None:
        self.require(self.loop is None and len(periods) == 3 and all(p in PERIODS_NS for p in periods)
                     and set(metered) <= set(NODES) and set(deadlines) <= set(NODES),
                     f"periods {periods}, metered {metered!r}, deadlines {deadlines!r}")
        self.loop = self.implementation.make_replica(0, None).open(list(NODES))
        for name, period in zip(NODES, periods, strict=True):
            self.nodes[name] = Node(period, name in metered, name in deadlines)
            self.begin(name)
        self.loop.settle("starting the drivers")

    def begin(self, name: str) -> None:
        """Start ``name``'s driver (again) over its endpoint and a core that remembers nothing of a
        driver; an operation is applied to it before its ``run`` starts (as a request can come first),
        and the ``now`` it sees is the core's scale from there on."""
        node = self.nodes[name]
        core = self.cores.get(name) or (DeadlineCore() if node.deadlines else ScriptCore())
        core.deadline, core.on_tick = None, []
        self.cores[name] = core
        seen: list[int] = []

        def first(core, now):
            seen.append(now)
            return "first", []

        self.drivers[name] = self.loop.start(name, core, node.period, node.metered, first)
        assert len(seen) == 1, f"{name}'s first operation, applied before its run, was given now={seen}"
        node.start, node.origin = self.loop.now_ns(), seen[0]
        node.last_tick, node.deadline, node.poked = node.origin, None, None
        node.on_tick, node.stats = [], Counter()

    def core_now(self, name: str, at: int) -> int:
        """Loop time ``at`` (ns) on ``name``'s core's scale (to a nanosecond: the two round apart)."""
        node = self.nodes[name]
        return node.origin + at - node.start

    def loop_time(self, name: str, now: int) -> int:
        """``name``'s core's ``now`` as loop time (ns; to a nanosecond)."""
        node = self.nodes[name]
        return now - node.origin + node.start

    # --- operations -------------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        self.number += 1
        return f"{prefix}{self.number}"

    def made(self, outgoing: list, prefix: str) -> list[tuple[str, str, str, list]]:
        """The machine's messages ``[(to, kind, reply_to)]`` as ``[(to, id, kind, reply_to)]``."""
        return [(to, self.fresh(prefix), kind, list(reply_to)) for to, kind, reply_to in outgoing]

    @staticmethod
    def encoded(ident: str, kind: str, reply_to: list) -> bytes:
        """The bytes of the machine's message ``ident`` of ``kind``."""
        do = {"full": "keep", "oversize": "keep", "flood": "keep"}.get(kind, kind)
        return message(ident, do, reply_to if kind == "reply" else [], SIZES.get(kind, 0))

    def wire(self, items: list[tuple[str, str, str, list]]) -> list[tuple[str, bytes]]:
        return [(to, self.encoded(ident, kind, reply_to)) for to, ident, kind, reply_to in items]

    def apply(self, name: str, operation, what: str):
        """``CoreDriver.apply(operation)`` in the loop: its result or its exception."""
        driver = self.drivers[name]
        return self.loop.call(lambda: driver.apply(operation), what)

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from(NODES), outgoing=OUTGOING)
    def send(self, node, outgoing):
        self.do("send", node=node, outgoing=[[to, kind, list(reply_to)] for to, kind, reply_to in outgoing])

    @guard(lambda self: self.loop is not None)
    @rule(pair=st.sampled_from([(x, y) for x in NODES for y in NODES if x != y]), kind=st.sampled_from(KINDS),
          reply_to=st.sampled_from(NODES))
    def send_one(self, pair, kind, reply_to):
        """One message from a node to another (``send``'s commonest case, drawn on its own)."""
        self.do("send", node=pair[0], outgoing=[[pair[1], kind, [reply_to]]])

    def step_send(self, node: str, outgoing: list) -> None:
        self.require(node in NODES and well_formed(outgoing),
            f"send {outgoing} from {node}")
        items = self.made(outgoing, "m")
        self.operate(node, f"{node} applies an operation sending {len(items)} messages", items, result="applied")
        self.loop.settle(f"{node}'s messages")

    def operate(self, name: str, what: str, items: list, result=None, effect=None) -> int:
        """``CoreDriver.apply`` of an operation that does ``effect(core, now)`` (if given) and returns
        ``result`` and the machine's messages ``items``; ``apply`` must answer ``result``, and the operation
        see the ``now`` the model says. The model's side (the poke, the messages sent); the ``now`` seen."""
        at, seen = self.loop.now_ns(), []

        def operation(core, now):
            seen.append(now)
            if effect is not None:
                effect(core, now)
            return result, self.wire(items)

        got = self.apply(name, operation, what)
        assert got == result, f"{name}'s apply returned {got!r}, not the operation's result {result!r}"
        expected = self.core_now(name, at)
        assert len(seen) == 1 and abs(seen[0] - expected) <= ROUNDING_NS, (
            f"{name}'s operation was given now={seen}; the model says [{expected}]")
        self.nodes[name].poked = seen[0]
        self.sent_now.append((name, seen[0], items))
        return seen[0]

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from(NODES), outgoing=OUTGOING)
    def script_tick(self, node, outgoing):
        self.do("script_tick", node=node, outgoing=[[to, kind, list(reply_to)] for to, kind, reply_to in outgoing])

    def step_script_tick(self, node: str, outgoing: list) -> None:
        self.require(node in NODES and well_formed(outgoing),
            f"script {outgoing} for {node}'s tick")
        items = self.made(outgoing, "t")

        def effect(core, now):
            core.on_tick = self.wire(items)

        self.operate(node, f"{node}'s core is told what its next tick sends", [], effect=effect)
        self.nodes[node].on_tick = items
        self.loop.settle(f"{node}'s tick scripted")

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from(NODES), offset=st.sampled_from(DEADLINES_NS))
    def deadline(self, node, offset):
        takers = [name for name in NODES if self.nodes[name].deadlines]
        self.do("deadline", node=takers[NODES.index(node) % len(takers)], offset=offset)

    def step_deadline(self, node: str, offset: int | None) -> None:
        self.require(node in NODES and offset in DEADLINES_NS and self.nodes[node].deadlines,
                     f"deadline {offset} for {node}, whose core asks for none")

        def effect(core, now):
            core.deadline = None if offset is None else now + offset

        now = self.operate(node, f"{node}'s core asks for a deadline {offset} ns away", [], effect=effect)
        self.nodes[node].deadline = None if offset is None else now + offset
        self.loop.settle(f"{node}'s deadline moved")

    @guard(lambda self: self.loop is not None)
    @rule(seconds=st.sampled_from(ADVANCES))
    def advance(self, seconds):
        self.do("advance", seconds=seconds)

    def step_advance(self, seconds: float) -> None:
        self.require(seconds in ADVANCES, f"advance {seconds}")
        self.loop.advance(seconds, f"the clock moving {seconds} s")

    @guard(lambda self: self.loop is not None and self.linked)
    @rule(pair=st.integers(0, 5), reverse=st.booleans())
    def flood(self, pair, reverse):
        ends = sorted(sorted(p) for p in self.linked)[pair % len(self.linked)]
        src, dst = reversed(ends) if reverse else ends
        self.do("flood", node=src, to=dst)

    def step_flood(self, node: str, to: str) -> None:
        self.require(frozenset((node, to)) in self.linked, f"{node} and {to} have no connection")
        third = next(name for name in NODES if name not in (node, to))
        items = [(to, self.fresh("f"), "flood", []) for _ in range(FLOOD)] + [(third, self.fresh("f"), "keep", [])]
        self.operate(node, f"{node} floods {to}", items, result="flooded")
        self.loop.settle(f"{node}'s flood of {to}")

    @guard(lambda self: self.loop is not None)
    @rule(pair=st.sampled_from([(x, y) for x in NODES for y in NODES if x != y]))
    def explode(self, pair):
        self.do("explode", node=pair[0], target=pair[1])

    def step_explode(self, node: str, target: str) -> None:
        self.require(node in NODES and target in NODES and node != target, f"{node} makes {target} explode")
        items = [(target, self.fresh("x"), "explode", [])]
        self.operate(node, f"{node} sends {target} a message its core fails on", items)
        self.exploding = target
        self.loop.settle(f"{target} failing on a message")
        self.check()
        ended = self.loop.ended.get(target)
        assert ended is not None and any(isinstance(e, Exploded) for e in leaves(ended)), (
            f"{target}'s core raised a non-refusal; its driver should have ended with it, "
            f"and it {'ended with ' + repr(ended) if ended else 'runs on'}")
        self.exploding = None
        self.begin(target)
        self.loop.settle(f"{target}'s driver starting again")

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from(NODES))
    def failing_operation(self, node):
        self.do("failing_operation", node=node)

    def step_failing_operation(self, node: str) -> None:
        self.require(node in NODES, f"no node {node}")
        problem = ValueError("no such task: t-404")

        def operation(core, now):
            raise problem

        try:
            self.apply(node, operation, f"{node} applies an operation that fails")
        except ValueError as error:
            assert error is problem, f"{node}'s apply raised {error!r}, not the operation's own error"
        else:
            raise AssertionError(f"{node}'s apply of a failing operation returned instead of raising")
        self.loop.settle(f"{node}'s failed operation")

    # --- what must hold -----------------------------------------------------------------------

    def dispatch(self, name: str, now: int, items: list) -> None:
        """The model sends what ``name``'s core returned at its ``now``."""
        node = self.nodes[name]
        unacknowledged: Counter = Counter()
        for to, ident, kind, reply_to in items:
            if to == name or to not in NODES:
                node.stats["unknown_peer"] += 1
                continue
            size = len(self.encoded(ident, kind, reply_to))
            frame = size + FRAME_HEADER_BYTES
            linked = frozenset((name, to)) in self.linked
            if size > MAX_FRAME_BYTES:
                node.stats["too_large"] += 1
                continue
            if linked and unacknowledged[to] + frame > MAX_SEND_BUFFER_BYTES:
                node.stats["dropped"] += 1
                continue
            if linked:
                unacknowledged[to] += frame
            node.stats["sent"] += 1
            self.dialed.add(frozenset((name, to)))
            self.in_flight[(to, ident)] += 1
            self.sent_at[ident] = self.loop_time(name, now)
            self.kind_of[ident] = (kind, reply_to)

    def check(self) -> None:
        if self.loop is None:
            return
        links_before = {name: sum(1 for pair in self.linked if name in pair) for name in NODES}
        ticked = self.check_ticks()
        self.check_handled()
        self.linked |= self.dialed  # every message sent has arrived: each pair it went between is connected
        self.dialed = set()
        end = self.loop.now_ns()
        for name in NODES:
            node = self.nodes[name]
            due, now = node.due(), self.core_now(name, end)
            assert due + LATE_NS + ROUNDING_NS > now, (
                f"{name}'s tick due at {self.seconds(name, due)} has not come by {self.seconds(name, now)}")
            ended = self.loop.ended.get(name)
            assert ended is None or name == self.exploding, f"{name}'s driver ended: {ended!r}"
            got = +Counter(self.drivers[name].stats)
            assert got == +node.stats, f"{name}'s driver counts {dict(got)}; the model says {dict(+node.stats)}"
        self.check_metrics(links_before, ticked)

    def seconds(self, name: str, now: int) -> str:
        """``name``'s core's ``now`` as seconds of the loop's clock, for a failure's message."""
        return f"{self.loop_time(name, now) / 1e9:.9f} s"

    def check_ticks(self) -> set[str]:
        """Every node's ticks this step, against its schedule (the applies of the step in between); what
        the applies and ticks sent, dispatched. The nodes that ticked."""
        applies: dict[str, list] = {name: [] for name in NODES}
        for name, now, items in self.sent_now:
            applies[name].append((now, 0, "apply", items))
        self.sent_now = []
        ticked = set()
        for name in NODES:
            core, node = self.cores[name], self.nodes[name]
            calls = [(now, 1, kind, None) for kind, now, _ in core.log[node.seen:] if kind == "tick"]
            for now, _, kind, items in sorted(applies[name] + calls, key=lambda call: call[:2]):
                if kind == "apply":
                    self.dispatch(name, now, items)
                    continue
                due = node.due()
                assert due <= now <= due + LATE_NS, (
                    f"{name} ticked at {self.seconds(name, now)}; the model says at {self.seconds(name, due)} "
                    f"(last tick {self.seconds(name, node.last_tick)}, period {node.period / 1e9} s, deadline "
                    f"{None if node.deadline is None else self.seconds(name, node.deadline)})")
                node.stats["ticks"] += 1
                node.last_tick, node.poked = now, None
                if node.deadline is not None and now >= node.deadline:
                    node.deadline = None
                items, node.on_tick = node.on_tick, []
                self.dispatch(name, now, items)
                ticked.add(name)
        return ticked

    def check_handled(self) -> None:
        """Every message handled this step was in flight to its receiver and sent before; each is handled
        once; nothing in flight is left. A message handled before its cause in loop-time order (they
        round apart) waits its turn."""
        handles = []
        for name in NODES:
            core, node = self.cores[name], self.nodes[name]
            handles += [(self.loop_time(name, now), ident.count("."), name, ident, now)
                        for kind, now, ident in core.log[node.seen:] if kind == "handle"]
            node.seen = len(core.log)
        waiting = collections.deque(sorted(handles))
        passes = 0
        while waiting and passes <= len(waiting):
            at, _, name, ident, now = waiting.popleft()
            if self.in_flight[(name, ident)] <= 0:
                waiting.append((at, 0, name, ident, now))
                passes += 1
                continue
            passes = 0
            self.in_flight[(name, ident)] -= 1
            sent = self.sent_at[ident]
            assert at + 2 * ROUNDING_NS >= sent, (
                f"{name}'s core handled {ident} at {at / 1e9:.9f} s, before it was sent ({sent / 1e9:.9f} s)")
            node = self.nodes[name]
            node.stats["received"] += 1
            kind, reply_to = self.kind_of[ident]
            if kind == "refuse":
                node.stats["refused"] += 1
                node.refused_total += 1
            elif kind == "reply":
                self.dispatch(name, now, [(to, f"{ident}.{k}", "keep", []) for k, to in enumerate(reply_to)])
        assert not waiting, f"handled and never sent to it: {', '.join(f'{i} by {n}' for _, _, n, i, _ in waiting)}"
        self.in_flight += Counter()  # drop zeros
        lost = sorted(f"{ident} to {to}" for (to, ident), count in self.in_flight.items() for _ in range(count))
        assert not lost, f"sent and never handled: {', '.join(lost)}"
        self.sent_at.clear()

    def check_metrics(self, links_before: dict[str, int], ticked: set[str]) -> None:
        for name in NODES:
            node, core = self.nodes[name], self.cores[name]
            sink = self.loop.metrics.get(name)
            expected = UNATTACHED if sink is None else sink
            assert core.metrics is expected, f"{name}'s core holds {core.metrics!r} as its metrics, not {expected!r}"
            if sink is None:
                continue
            values = sink.snapshot()
            assert values.get("mbt_messages_refused_total") == node.refused_total, (
                f"{name}'s mbt_messages_refused_total is {values.get('mbt_messages_refused_total')}; "
                f"the model says {node.refused_total}")
            gauge = values.get("mbt_peers_online")
            links_after = sum(1 for pair in self.linked if name in pair)
            if name in ticked:
                assert links_before[name] <= gauge <= links_after, (
                    f"{name} ticked with {links_before[name]} to {links_after} peers connected; its "
                    f"mbt_peers_online is {gauge}")
                node.peers_gauge = gauge
            else:
                assert gauge == node.peers_gauge, f"{name}'s mbt_peers_online moved to {gauge} without a tick"

    def observe(self) -> list[Observation]:
        if self.loop is None:
            return []
        return [Observation(f"{name}'s stats", dict(+self.nodes[name].stats), dict(+Counter(self.drivers[name].stats)))
                for name in NODES]


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions an exception group holds (or the exception itself)."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


test_driver_machine = network_machine_test(DriverMachine, examples=40, steps=30)
