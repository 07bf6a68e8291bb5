"""The simulated network as data, and the rules every networked machine shares.

``SimNetwork`` holds the datagrams in flight between numbered nodes: one FIFO queue per
directed link, each datagram with a global send number. Faults are operations on that
data: deliver the head of a link (or any datagram of it: reordering), drop one, duplicate
one, delay one (to the back of its queue), cut links (partitions into any groups, or one
way only), heal. A datagram sent over a cut link, or delivered to a node that is down, is
lost.

``NetworkMachine`` turns all of that into rules of a ``TracedMachine``, so Hypothesis
shrinks the fault schedule like any other data and every run is a trace that replays
exactly: ``deliver``, ``drop``, ``duplicate``, ``delay``, ``partition``, ``cut_one_way``,
``heal``, ``crash``, ``restart`` (a new node object on the same store), ``tick`` (one
node's own timer: nodes tick on their own schedules, so a message can arrive between a
deadline and the tick that acts on it), ``advance_clock`` (by a step, or to a nanosecond
beside a deadline the machine knows is due: a TTL's edge), ``settle`` (a calm network:
every datagram in flight delivered in send order, including what the deliveries send,
up to a bound) and ``quiesce`` (heal, restart every node, then anti-entropy rounds until
nothing changes). Each node has its own clock, a fixed skew from the shared manual clock.

A subclass says how to build a node (``make_node``), what to check after every delivery
(``after_delivery``), what a quiet network must satisfy (``converged``/``check_quiet``) and
its own operations. The nodes speak the sans-I/O protocol: ``handle(data, now)`` and
``tick(now)`` return ``(peer_id, bytes)`` pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import profiles
from harness.machine import TracedMachine, guard
from models.clock import NS_PER_SECOND, ManualClock

#: Where every networked run's shared clock starts: 2023-11-14T22:13:20Z.
START_NS = 1_700_000_000 * NS_PER_SECOND
#: A raw draw a rule reduces modulo the number of nodes, links or datagrams.
INDEX = st.integers(0, 255)
#: How ``advance_clock`` moves: by one of the machine's ``advances``, or to a deadline ahead
#: (``deadlines``): the nanosecond before it, at it, or after it.
ADVANCE_KINDS = ("by", "before", "at", "after")
#: Most deliveries take the head of a link (FIFO); one in four takes another datagram.
POSITION = st.one_of(st.just(0), st.just(0), st.just(0), st.integers(0, 15))
#: The most datagrams one ``settle`` delivers (a bound on every loop).
SETTLE_LIMIT = 5_000


@attrs.define
class Datagram:
    serial: int
    source: int
    target: int
    data: bytes
    sent_at: int


class SimNetwork:
    """Per-link FIFO queues of datagrams, cut links, and counts of what happened."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.queues: dict[tuple[int, int], list[Datagram]] = {}
        self.cut: set[tuple[int, int]] = set()
        self.serial = 0
        self.counts = {"sent": 0, "delivered": 0, "lost": 0, "dropped": 0, "duplicated": 0, "bytes": 0}

    def send(self, source: int, target: int, data: bytes, now: int) -> None:
        self.serial += 1
        self.counts["sent"] += 1
        self.counts["bytes"] += len(data)
        if (source, target) in self.cut:
            self.counts["lost"] += 1
            return
        self.queues.setdefault((source, target), []).append(Datagram(self.serial, source, target, data, now))

    def links(self) -> list[tuple[int, int]]:
        """The links with datagrams in flight, in a stable order."""
        return sorted(link for link, queue in self.queues.items() if queue)

    def in_flight(self) -> int:
        return sum(len(queue) for queue in self.queues.values())

    def take(self, link: tuple[int, int], index: int) -> Datagram:
        queue = self.queues[link]
        datagram = queue.pop(index)
        if not queue:
            del self.queues[link]
        return datagram

    def oldest(self) -> tuple[tuple[int, int], int] | None:
        """The link and index of the datagram sent first (a calm network delivers in send order)."""
        heads = [(queue[0].serial, link) for link, queue in self.queues.items() if queue]
        return (min(heads)[1], 0) if heads else None

    def duplicate(self, link: tuple[int, int], index: int) -> None:
        copy = attrs.evolve(self.queues[link][index])
        self.queues[link].append(copy)
        self.counts["duplicated"] += 1

    def delay(self, link: tuple[int, int], index: int) -> None:
        queue = self.queues[link]
        queue.append(queue.pop(index))

    def partition(self, groups: list[list[int]]) -> None:
        """Cut every link between nodes of different groups (a node in no group is alone)."""
        group_of = {node: n for n, group in enumerate(groups) for node in group}
        self.cut = {(a, b) for a in range(self.size) for b in range(self.size)
                    if a != b and group_of.get(a, -1 - a) != group_of.get(b, -1 - b)}

    def cut_one_way(self, sources: list[int], targets: list[int]) -> None:
        self.cut |= {(a, b) for a in sources for b in targets if a != b}

    def heal(self) -> None:
        self.cut = set()


def ci_settings(examples: int, steps: int) -> settings:
    """Under the ``ci`` profile (and ``mutation``, which searches as ``ci`` does:
    ``profiles.CI_SEARCH``), this machine's own budget (networked steps cost more than a
    replica's); under any other profile, the profile's own."""
    if profiles.current_profile() in profiles.CI_SEARCH:
        return settings(settings(), max_examples=examples, stateful_step_count=steps)
    return settings()


def network_machine_test(machine_cls: type[TracedMachine], examples: int, steps: int,
                         examples_of: dict[str, int] | None = None) -> Callable[..., None]:
    """Like ``harness.machine_test``, with the machine's ``ci`` budget (see ``ci_settings``):
    ``examples`` runs of ``steps`` steps, or ``examples_of[name]`` runs for the implementation
    ``name``."""
    from harness.runner import machine_test

    chosen = dict(examples_of or {})
    return machine_test(machine_cls,
                        settings_for=lambda name=None: ci_settings(chosen.get(name, examples), steps))


class NetworkMachine(TracedMachine):
    """Nodes on a ``SimNetwork``; see the module docstring for the rules."""

    min_nodes: ClassVar[int] = 3
    max_nodes: ClassVar[int] = 5
    #: Clock advances the ``advance_clock`` rule draws from (subclasses put their TTLs here).
    advances: ClassVar[tuple[int, ...]] = (0, NS_PER_SECOND, 5 * NS_PER_SECOND, 30 * NS_PER_SECOND)
    #: How far the clock moves between two rounds of ``quiesce``.
    quiet_round_ns: ClassVar[int] = 30 * NS_PER_SECOND
    #: The network's rules by class (``harness.balance``).
    rule_classes: ClassVar[dict[str, str]] = {
        "deliver": "delivery", "settle": "delivery", "drop": "faults", "duplicate": "faults", "delay": "faults",
        "partition": "faults", "cut_one_way": "faults", "heal": "faults", "crash": "crash", "restart": "crash",
        "tick": "time", "advance_clock": "time", "quiesce": "sync", "start": "setup"}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.clock = ManualClock(START_NS)
        self.net: SimNetwork | None = None
        self.nodes: list[Any] = []  # None while a node is down
        self.skews: list[int] = []
        self.peer_index: dict[bytes, int] = {}
        self.answer: list[tuple[bytes, bytes]] = []  # what the node handed the last datagram sent in answer

    # ----- what a subclass provides ----------------------------------------------------

    def make_node(self, index: int) -> Any:
        """A node ``index`` on its (possibly existing) store, at its local time."""
        raise NotImplementedError

    def discard_node(self, index: int) -> None:
        """Node ``index`` went down: forget what it held in memory (its store stays)."""

    def after_delivery(self, index: int, datagram: Datagram | None, data: bytes) -> None:
        """After node ``index`` handled ``data``: check its verdicts and its values."""

    def ticked(self, index: int, outgoing: list[tuple[bytes, bytes]]) -> None:
        """After node ``index`` ticked and sent ``outgoing``."""

    def converged(self) -> bool:
        """Whether nothing is left for anti-entropy to do (ends ``quiesce`` early)."""
        return self.net is not None and not self.net.in_flight()

    def check_quiet(self) -> None:
        """What must hold once the network healed and went quiet."""

    # ----- helpers ---------------------------------------------------------------------

    def local_now(self, index: int) -> int:
        return self.clock.now() + self.skews[index]

    def up(self) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node is not None]

    def pick(self, raw: int, items: list | int) -> int:
        count = items if isinstance(items, int) else len(items)
        return raw % count

    def require_node(self, index: int, up: bool = False) -> None:
        self.require(bool(self.nodes), "the machine has not started")
        self.require(0 <= index < len(self.nodes), f"no node {index} (there are {len(self.nodes)})")
        if up:
            self.require(self.nodes[index] is not None, f"node {index} is down")

    def send_all(self, source: int, outgoing: list[tuple[bytes, bytes]]) -> None:
        now = self.clock.now()
        for peer, data in outgoing:
            self.net.send(source, self.peer_index[peer], data, now)

    def start_network(self, count: int, skews_ns: list[int]) -> None:
        self.require(not self.nodes, "the machine has already started")
        self.require(self.min_nodes <= count <= self.max_nodes, f"nodes={count} outside {self.min_nodes}..{self.max_nodes}")
        self.require(len(skews_ns) == count, f"{len(skews_ns)} skews for {count} nodes")
        self.skews = list(skews_ns)
        self.net = SimNetwork(count)
        self.nodes = [None] * count
        for i in range(count):
            self.nodes[i] = self.make_node(i)

    # ----- the network's rules ----------------------------------------------------------

    def _link(self, raw: int) -> list[int]:
        links = self.net.links()
        return list(links[self.pick(raw, links)])

    def _has_traffic(self) -> bool:
        return self.net is not None and self.net.in_flight() > 0

    @guard(lambda self: self._has_traffic())
    @rule(link=INDEX, position=POSITION)
    def deliver(self, link: int, position: int) -> None:
        source, target = self._link(link)
        self.do("deliver", source=source, target=target, index=position % len(self.net.queues[(source, target)]))

    def _datagram_arg(self, source: int, target: int, index: int) -> tuple[int, int]:
        self.require(self.net is not None, "the machine has not started")
        queue = self.net.queues.get((source, target), [])
        self.require(0 <= index < len(queue), f"no datagram {index} in flight from {source} to {target}")
        return (source, target)

    def step_deliver(self, source: int, target: int, index: int) -> None:
        datagram = self.net.take(self._datagram_arg(source, target, index), index)
        self.deliver_datagram(datagram)

    def deliver_datagram(self, datagram: Datagram) -> None:
        target = datagram.target
        if (datagram.source, target) in self.net.cut or self.nodes[target] is None:
            self.net.counts["lost"] += 1
            return
        self.net.counts["delivered"] += 1
        self.hand(target, datagram.data, datagram)

    def hand(self, target: int, data: bytes, datagram: Datagram | None = None) -> None:
        """Give ``data`` to node ``target``, send what it answers, and check it."""
        out = self.nodes[target].handle(data, self.local_now(target))
        self.answer = out  # what the node sent in answer, for after_delivery's checks
        self.send_all(target, out)
        self.after_delivery(target, datagram, data)

    @guard(lambda self: self._has_traffic())
    @rule(kind=st.sampled_from(["drop", "duplicate", "delay"]), link=INDEX, position=POSITION)
    def fault(self, kind: str, link: int, position: int) -> None:
        """One datagram in flight is lost, sent twice, or overtaken by the rest of its link."""
        source, target = self._link(link)
        self.do(kind, source=source, target=target, index=position % len(self.net.queues[(source, target)]))

    def step_drop(self, source: int, target: int, index: int) -> None:
        self.net.take(self._datagram_arg(source, target, index), index)
        self.net.counts["dropped"] += 1

    def step_duplicate(self, source: int, target: int, index: int) -> None:
        self.net.duplicate(self._datagram_arg(source, target, index), index)

    def step_delay(self, source: int, target: int, index: int) -> None:
        self.net.delay(self._datagram_arg(source, target, index), index)

    @guard(lambda self: self._has_traffic())
    @rule()
    def settle(self) -> None:
        self.do("settle")

    def step_settle(self) -> None:
        self.require(self.net is not None, "the machine has not started")
        for _ in range(SETTLE_LIMIT):
            found = self.net.oldest()
            if found is None:
                return
            self.deliver_datagram(self.net.take(*found))
        raise AssertionError(f"the network did not settle within {SETTLE_LIMIT} deliveries")

    def _whole(self) -> bool:
        return self.net is not None and not self.net.cut

    @guard(lambda self: self._whole())
    @rule(groups=st.lists(st.integers(0, 2), min_size=10, max_size=10))
    def partition(self, groups: list[int]) -> None:
        labels = groups[: len(self.nodes)]
        parts = [[i for i, g in enumerate(labels) if g == label] for label in sorted(set(labels))]
        self.do("partition", groups=parts)

    def step_partition(self, groups: list[list[int]]) -> None:
        self.require(self.net is not None, "the machine has not started")
        members = [i for group in groups for i in group]
        self.require(len(members) == len(set(members)) and all(0 <= i < len(self.nodes) for i in members),
                     f"groups {groups} are not disjoint groups of nodes")
        self.net.partition(groups)

    @guard(lambda self: self._whole())
    # ``targets`` (like ``target``) is reserved by Hypothesis's ``@rule``: the draw is ``receivers``.
    @rule(sources=st.lists(INDEX, min_size=1, max_size=3), receivers=st.lists(INDEX, min_size=1, max_size=3))
    def cut_one_way(self, sources: list[int], receivers: list[int]) -> None:
        """An asymmetric partition: what ``sources`` send the receivers is lost, not the other way."""
        a = sorted({self.pick(s, self.nodes) for s in sources})
        b = sorted({self.pick(t, self.nodes) for t in receivers} - set(a))
        if b:
            self.do("cut_one_way", sources=a, targets=b)

    def step_cut_one_way(self, sources: list[int], targets: list[int]) -> None:
        self.require(self.net is not None, "the machine has not started")
        self.require(all(0 <= i < len(self.nodes) for i in sources + targets), f"no nodes {sources} {targets}")
        self.net.cut_one_way(sources, targets)

    @guard(lambda self: self.net is not None and bool(self.net.cut))
    @rule()
    def heal(self) -> None:
        self.do("heal")

    def step_heal(self) -> None:
        self.require(self.net is not None, "the machine has not started")
        self.net.heal()

    @guard(lambda self: len(self.up()) > 1)
    @rule(node=INDEX)
    def crash(self, node: int) -> None:
        up = self.up()
        self.do("crash", node=up[self.pick(node, up)])

    def step_crash(self, node: int) -> None:
        self.require_node(node, up=True)
        self.nodes[node] = None
        self.discard_node(node)

    @guard(lambda self: len(self.up()) < len(self.nodes))
    @rule(node=INDEX)
    def restart(self, node: int) -> None:
        down = [i for i, n in enumerate(self.nodes) if n is None]
        self.do("restart", node=down[self.pick(node, down)])

    def step_restart(self, node: int) -> None:
        self.require_node(node)
        self.require(self.nodes[node] is None, f"node {node} is up")
        self.nodes[node] = self.make_node(node)

    @guard(lambda self: bool(self.up()))
    @rule(node=INDEX)
    def tick(self, node: int) -> None:
        up = self.up()
        self.do("tick", node=up[self.pick(node, up)])

    def step_tick(self, node: int) -> None:
        self.require_node(node, up=True)
        outgoing = self.nodes[node].tick(self.local_now(node))
        self.send_all(node, outgoing)
        self.ticked(node, outgoing)

    @rule(kind=st.sampled_from(ADVANCE_KINDS), ns=st.integers(0, 15), pick=INDEX)
    def advance_clock(self, kind: str, ns: int, pick: int) -> None:
        self.do("advance_clock", ns=self.advance_by(kind, ns, pick))

    def deadlines(self) -> list[int]:
        """Instants of the shared clock ahead at which something the nodes hold falls due (a
        subclass names its TTLs: a beacon going stale, an advert expiring); none by default."""
        return []

    def advance_by(self, kind: str, ns: int, pick: int) -> int:
        """One of ``advances`` (``by``, or when nothing is due), or to the nanosecond before, at or
        after a deadline ahead: where an off-by-one in a TTL shows."""
        ahead = self.deadlines() if kind != "by" else []
        if not ahead:
            return self.advances[ns % len(self.advances)]
        return ahead[pick % len(ahead)] + {"before": -1, "at": 0, "after": 1}[kind] - self.clock.now()

    def step_advance_clock(self, ns: int) -> None:
        self.require(ns >= 0, f"the clock cannot go back (ns={ns})")
        self.clock.advance(ns)

    def quiet_rounds(self) -> int:
        return 3 * len(self.nodes) + 3

    @guard(lambda self: bool(self.nodes) and not self.converged())
    @rule()
    def quiesce(self) -> None:
        self.do("quiesce")

    def step_quiesce(self) -> None:
        """Heal, restart every node that is down, and run anti-entropy rounds until nothing
        changes (or the bound): then ``check_quiet``."""
        self.require(bool(self.nodes), "the machine has not started")
        self.net.heal()
        for i, node in enumerate(self.nodes):
            if node is None:
                self.step_restart(i)
        self.step_settle()
        for _ in range(self.quiet_rounds()):
            if self.converged():
                break
            self.clock.advance(self.quiet_round_ns)
            for i in range(len(self.nodes)):
                self.step_tick(i)
            self.step_settle()
        self.check_quiet()

