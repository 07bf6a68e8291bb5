"""The UDP fault proxy the networked machines put between node processes
(``implementations.transport.proxy``) and the control protocol that drives it
(``implementations.transport.control``), against the fates the proxy promises: in process, real
UDP and TCP sockets on 127.0.0.1, on a mock clock.

Why a machine of its own: every partition, loss and reordering realnet tests its nodes under is
this proxy's doing, so a proxy that lets one datagram across a partition, or holds one for ever,
makes those scenarios say less than they claim; and realnet, where the proxy runs as a process,
costs minutes a mutant. Here a step costs milliseconds.

**Set-up.** Three nodes ``a``, ``b``, ``c``, each a plain UDP socket of the machine's on
127.0.0.1; a proxy (``machines.adapters.proxy_udp``) of a drawn seed and hold limit
(``max_held``: 3, or room for everything a run holds) with its control endpoint; one link a-b.

**Rules.** ``link``: a link between two nodes (at most ``MAX_LINKS``; a pair may have two).
``send``: one end of a link sends 1-3 datagrams through it (``exchange``: both ends, in turn).
``faults``: one direction's chances of drop, duplicate and reorder (0, a half or 1) and its
delay range. ``partition``, ``block``,
``heal``, ``clear``. ``advance``: the proxy's clock moves 10 ms to 1 s. ``retarget``: a node
restarts on another port and the proxy is told. ``stray``: a datagram reaches a link's port from
an address no node has. ``mistake``: a caller's mistake through the control endpoint (``MISTAKES``:
a request line past ``MAX_CONTROL_LINE_BYTES`` (and one exactly at it, taken), an empty line, an
``op`` that is no string, not JSON, no ``op``, an unknown one, args
that are no object, faults out of range or of the wrong type, links and retargets to hosts off
loopback or to ports that are none). ``restart``: the control endpoint's ``shutdown``, then a proxy of the same seed afresh. Every
change of the proxy goes through the control endpoint (a ``ControlClient``, as realnet drives the
proxy process) or, drawn, by calling the proxy's method in its loop.

**The model** (this module's bookkeeping; it imports nothing of the proxy):

* each direction ``src -> dst`` draws from its own ``random.Random(f"{seed}:{src}->{dst}")``;
  every datagram the proxy takes from ``src`` for ``dst`` draws four numbers ``u1..u4`` of it,
  whatever its fate. A blocked direction lets nothing through (``partitioned``); otherwise the
  datagram is dropped if ``u1 < drop``, and goes out twice if ``u2 < duplicate``
  (``duplicated``). Each copy is held back for reordering if ``u3 < reorder`` and no datagram of
  the direction is held back already; otherwise held for ``lo + (hi - lo) * u4`` seconds if that
  is positive; otherwise sent at once. A datagram held back for reordering goes out as soon as
  the next datagram of its direction has passed (``reordered``), or ``REORDER_HOLD_SECONDS``
  after it came;
* at most ``max_held`` datagrams are held at once (delayed or held back); past it a datagram to
  hold is dropped (``dropped_held_full``);
* held datagrams go out in order of the time they are due, then of their arrival, from the
  link's port to the address the receiver had when they came; a direction blocked by then takes
  them (``partitioned``); every datagram handed to the system is ``forwarded``;
* a datagram from an address that is neither end of its link goes nowhere (``unknown_source``);
* a change through the control endpoint answers what the method returns; a mistake is answered
  with an error naming what is wrong, changes nothing, and the endpoint serves the next request
  on the same connection, sent in the same write (a line past the limit is answered and its
  connection closed); made through ``ControlClient``, it raises a ``ControlError`` with the same
  text, and by the command line (``control.main``) exit 1 printing it; the control endpoint listens
  on 127.0.0.1 alone, and after ``shutdown`` a request fails
  naming its operation.

After every step each node's socket holds exactly what the model says arrived (in order, each
from the link's port), and the proxy's ``stats`` operation (links, blocks, datagrams held,
counts) is the model's.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import select
import socket
from collections import Counter
from typing import ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, guard
from harness.machine import Observation
from harness.network import network_machine_test
from implementations.limits import MAX_CONTROL_LINE_BYTES
from implementations.transport import control
from implementations.transport.control import ControlClient, ControlError
from implementations.transport.process import bound_sockets, socket_inodes

NODES = ("a", "b", "c")
MAX_LINKS = 4
#: Seconds a datagram held back for reordering waits for the next one of its direction (the
#: proxy's ``REORDER_HOLD_SECONDS``, as its documentation states).
REORDER_HOLD_SECONDS = 0.05
SEEDS = (0, 7, 2**40)
HOLD_LIMITS = (3, 10_000)
CHANCES = (0.0, 0.5, 1.0)
DELAYS = ((0.0, 0.0), (0.02, 0.02), (0.0, 0.2), (0.1, 0.5))
ADVANCES = (0.01, 0.05, 0.2, 1.0)
SPLITS = ((("a",), ("b", "c")), (("a", "b"), ("c",)), (("a", "c"), ("b",)), (("a",), ("b",), ("c",)))
VIA = ("control", "call")
#: The operations a proxy's control endpoint offers, as an unknown one's refusal lists them.
KNOWN = "['block', 'clear', 'faults', 'heal', 'link', 'partition', 'retarget', 'shutdown', 'stats']"
ADDRESS = "expected [host, port] with a port from 1 to 65535, got"
DELAY = "faults: ValueError: delay is a range 0 <= lo <= hi <= 60 seconds, got"
#: A caller's mistakes through the control endpoint, each with the error it must be answered: the
#: whole text where every word of it is the project's (``=`` first), else words it must hold (where
#: Python words the detail: a parser's or a call's own message).
MISTAKES = {
    "line-past-the-limit": f"=request exceeds MAX_CONTROL_LINE_BYTES ({MAX_CONTROL_LINE_BYTES})",
    "empty-line": "not a request",
    "not-json": "not a request",
    "not-an-object": "not a request",
    "no-op": "not a request",
    "unknown-op": f"=unknown operation 'explode'; known: {KNOWN}",
    "op-not-a-string": f"=unknown operation ['heal']; known: {KNOWN}",
    "args-not-an-object": "=heal: args must be an object, got list",
    "unknown-argument": "heal: TypeError: FaultProxy.heal() got an unexpected keyword argument 'gently'",
    "chance-above-one": "=faults: ValueError: drop is a probability in [0, 1], got 1.5",
    "chance-not-a-number": "=faults: ValueError: duplicate is a probability in [0, 1], got '0.5'",
    "chance-nan": "=faults: ValueError: reorder is a probability in [0, 1], got nan",
    "delay-reversed": f"={DELAY} [0.2, 0.1]",
    "delay-past-a-minute": f"={DELAY} [0, 61]",
    "delay-not-a-pair": f"={DELAY} [0.1]",
    "delay-a-number": f"={DELAY} 0.1",
    "unknown-fault": "faults: TypeError: Faults.__init__() got an unexpected keyword argument 'loss'",
    "link-off-loopback": "=link: ValueError: 10.0.0.1: the transport binds and dials loopback addresses only",
    "link-port-not-a-number": f"=link: ValueError: b_address: {ADDRESS} ['127.0.0.1', 'x']",
    "link-port-past-65535": f"=link: ValueError: b_address: {ADDRESS} ['127.0.0.1', 65536]",
    "link-address-of-one-item": f"=link: ValueError: b_address: {ADDRESS} ['127.0.0.1']",
    "link-dialer-of-no-port": f"=link: ValueError: a_address: {ADDRESS} ['127.0.0.1', 70000]",
    "retarget-off-loopback": "=retarget: ValueError: 10.0.0.1: the transport binds and dials loopback addresses only",
    "retarget-to-no-port": f"=retarget: ValueError: address: {ADDRESS} ['127.0.0.1', 0]",
    "partition-not-lists": "=partition: ValueError: groups is a list of lists of node names",
    "partition-of-a-name": "=partition: ValueError: groups is a list of lists of node names",
}


#: The implementations whose control endpoint this process has found on loopback alone.
LOOPBACK_CHECKED: set[str] = set()


def run_command_line(argv: list[str]) -> tuple[int, str, str]:
    """``control.main(argv)`` here: its exit status and what it printed to standard output and error."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = control.main(argv)
    return code, out.getvalue(), err.getvalue()


def drawn(seed: int, src: str, dst: str) -> random.Random:
    return random.Random(f"{seed}:{src}->{dst}")


@attrs.define
class Held:
    """A datagram the model holds: due at ``at``, the ``sequence``-th the proxy took."""

    at: float
    sequence: int
    src: str
    dst: str
    port: int
    data: bytes
    address: tuple[str, int]


class ProxyMachine(TracedMachine):
    name = "proxy"
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", "link": "operations", "send": "delivery",
                                              "faults": "faults", "partition": "faults", "block": "faults",
                                              "heal": "faults", "clear": "faults", "advance": "time",
                                              "retarget": "crash", "restart": "crash", "stray": "adversary",
                                              "mistake": "adversary"}
    class_floors: ClassVar[dict[str, float]] = {"delivery": 0.12, "time": 0.08}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.loop = None
        self.client: ControlClient | None = None
        self.sockets: dict[str, socket.socket] = {}
        # the model
        self.seed = 0
        self.max_held = 0
        self.links: list[tuple[str, str, int]] = []
        self.fault_of: dict[tuple[str, str], tuple] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.draws: dict[tuple[str, str], random.Random] = {}
        self.delayed: list[Held] = []
        self.slot: dict[tuple[str, str], Held] = {}
        self.counts: Counter = Counter()
        self.arrivals: dict[str, list[tuple[int, bytes]]] = {name: [] for name in NODES}
        self.number = 0  # payloads made so far
        self.looks = 0  # stats read so far

    def teardown(self) -> None:
        try:
            if self.client is not None:
                self.client.close()
            if self.loop is not None:
                self.loop.stop()
        finally:
            for sock in self.sockets.values():
                sock.close()
            self.sockets.clear()
            self.loop = self.client = None

    # --- set-up -------------------------------------------------------------------------------

    @initialize(seed=st.sampled_from(SEEDS), max_held=st.sampled_from(HOLD_LIMITS))
    def start(self, seed, max_held):
        self.do("start", seed=seed, max_held=max_held)
        self.do("link", a="a", b="b", via="call")

    def step_start(self, seed: int, max_held: int) -> None:
        self.require(self.loop is None, "already started")
        self.require(isinstance(seed, int) and seed >= 0 and isinstance(max_held, int) and max_held >= 1,
                     f"seed {seed!r}, max_held {max_held!r}: a seed and a positive limit")
        self.seed, self.max_held = seed, max_held
        for name in NODES:
            if name not in self.sockets:
                self.sockets[name] = self.open_socket()
        self.loop = self.implementation.make_replica(0, None).open(seed, max_held)
        self.client = ControlClient(self.loop.control_port, timeout=5.0)
        ready = self.loop.ready_line
        assert ready.endswith("\n") and ready.count("\n") == 1 and json.loads(ready) == {
            "ready": True, "control": self.loop.control_port}, f"the proxy's ready line is {ready!r}"
        if self.implementation.name not in LOOPBACK_CHECKED:  # (the socket tables cost 8 ms a read)
            self.check_loopback_only()
            LOOPBACK_CHECKED.add(self.implementation.name)

    def check_loopback_only(self) -> None:
        """The control endpoint listens on 127.0.0.1 alone (it takes ``shutdown`` from anyone who reaches
        it): checked at the first start of each implementation in a process, since every start runs the
        same ``serve_control``."""
        ports = {("tcp", self.loop.control_port)}
        bound = {(protocol, address) for _, protocol, address, port in bound_sockets(socket_inodes({os.getpid()}))
                 if (protocol, port) in ports}
        assert bound == {("tcp", "127.0.0.1")}, f"the control endpoint is bound at {sorted(bound)}, not at 127.0.0.1 alone"

    @staticmethod
    def open_socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        return sock

    def address(self, name: str) -> tuple[str, int]:
        return self.sockets[name].getsockname()

    def change(self, via: str, op: str, **args):
        """Change the proxy through its control endpoint or by a call in its loop; what it answers."""
        if via == "control":
            assert self.client is not None
            return self.client.call(op, **args)
        proxy = self.loop.proxy
        method = {"link": lambda: proxy.add_link(args["a"], tuple(args["a_address"]), args["b"],
                                                 tuple(args["b_address"])),
                  "faults": lambda: proxy.set_faults(**args), "partition": lambda: proxy.partition(**args),
                  "block": lambda: proxy.block(**args), "heal": proxy.heal, "clear": proxy.clear,
                  "retarget": lambda: proxy.retarget(args["name"], tuple(args["address"]))}[op]
        return self.loop.call(method, f"{op} called in the proxy's loop")

    # --- links and datagrams --------------------------------------------------------------------

    @guard(lambda self: self.loop is not None and len(self.links) < MAX_LINKS)
    @rule(pair=st.sampled_from([("a", "b"), ("b", "c"), ("c", "a"), ("b", "a")]), via=st.sampled_from(VIA))
    def link(self, pair, via):
        self.do("link", a=pair[0], b=pair[1], via=via)

    def step_link(self, a: str, b: str, via: str) -> None:
        self.require(self.loop is not None and len(self.links) < MAX_LINKS, "no room for a link")
        self.require(a in NODES and b in NODES and a != b and via in VIA, f"link {a}-{b} via {via!r}")
        port = self.change(via, "link", a=a, a_address=list(self.address(a)), b=b, b_address=list(self.address(b)))
        assert isinstance(port, int) and 0 < port < 65536, f"link {a}-{b}: the proxy answered {port!r}, not a port"
        ports = [p for _, _, p in self.links]
        assert port not in ports, f"link {a}-{b}: the proxy answered link {ports.index(port)}'s port"
        self.links.append((a, b, port))

    @guard(lambda self: self.loop is not None)
    @rule(link=st.integers(0, MAX_LINKS - 1), end=st.sampled_from(["a", "b"]), count=st.integers(1, 3))
    def send(self, link, end, count):
        link = link % len(self.links)
        self.do("send", link=link, end=end, count=count)

    @guard(lambda self: self.loop is not None)
    @rule(link=st.integers(0, MAX_LINKS - 1), first=st.integers(1, 3), second=st.integers(1, 3))
    def exchange(self, link, first, second):
        """Both ends of a link send, one after the other (the two directions of one port)."""
        link = link % len(self.links)
        self.do("send", link=link, end="a", count=first)
        self.do("send", link=link, end="b", count=second)

    def direction(self, link: int, end: str) -> tuple[str, str, int]:
        """Link ``link`` from its end ``end`` (``a``: the node that dialed): sender, receiver, port."""
        a, b, port = self.links[link]
        return (a, b, port) if end == "a" else (b, a, port)

    def step_send(self, link: int, end: str, count: int) -> None:
        self.require(self.loop is not None and 0 <= link < len(self.links) and end in ("a", "b") and 1 <= count <= 3,
                     "no such link or end")
        src, dst, port = self.direction(link, end)
        for _ in range(count):
            data = b"datagram %d" % self.number
            self.number += 1
            self.sockets[src].sendto(data, ("127.0.0.1", port))
            self.take(src, dst, port, data)
        self.settle(f"{count} datagrams {src} -> {dst} on link {link}")

    def settle(self, what: str) -> None:
        """Wait until the proxy has taken every datagram sent to it (``ProxyLoop.settle``)."""
        self.loop.settle(self.counts["received"] + self.counts["unknown_source"], what)

    def take(self, src: str, dst: str, port: int, data: bytes) -> None:
        """The model takes a datagram from ``src`` for ``dst`` (see the module)."""
        self.counts["received"] += 1  # (the datagram's sequence number too)
        rng = self.draws.get((src, dst))
        if rng is None:
            rng = self.draws[(src, dst)] = drawn(self.seed, src, dst)
        u = [rng.random() for _ in range(4)]
        drop, duplicate, reorder, (lo, hi) = self.fault_of.get((src, dst), (0.0, 0.0, 0.0, (0.0, 0.0)))
        if (src, dst) in self.blocked:
            self.counts["partitioned"] += 1
            return
        if u[0] < drop:
            self.counts["dropped"] += 1
            return
        before = self.slot.pop((src, dst), None)
        now = self.loop.now()
        delay = lo + (hi - lo) * u[3]
        copies = 2 if u[1] < duplicate else 1
        for _ in range(copies):
            held = Held(now, self.counts["received"], src, dst, port, data, self.address(dst))
            if u[2] < reorder and (src, dst) not in self.slot:
                held.at = now + REORDER_HOLD_SECONDS
                if self.room():
                    self.slot[(src, dst)] = held
            elif delay > 0:
                held.at = now + delay
                if self.room():
                    self.delayed.append(held)
            else:
                self.out(held)
        if before is not None:
            self.counts["reordered"] += 1
            self.out(before)
        if copies == 2:
            self.counts["duplicated"] += 1

    def room(self) -> bool:
        if len(self.delayed) + len(self.slot) < self.max_held:
            return True
        self.counts["dropped_held_full"] += 1
        return False

    def out(self, held: Held) -> None:
        if (held.src, held.dst) in self.blocked:
            self.counts["partitioned"] += 1
            return
        self.counts["forwarded"] += 1
        if held.address == self.address(held.dst):
            self.arrivals[held.dst].append((held.port, held.data))


    def step_stray(self, link: int) -> None:
        self.require(self.loop is not None and 0 <= link < len(self.links), "no such link")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.1", 0))
            stranger.sendto(b"from nobody", ("127.0.0.1", self.links[link][2]))
            self.counts["unknown_source"] += 1
            self.settle(f"a stray datagram on link {link}")
            stranger.setblocking(False)
            try:
                answer = stranger.recv(65536)
            except BlockingIOError:
                answer = None
            assert answer is None, f"the proxy answered a stray datagram with {answer!r}"

    # --- faults -------------------------------------------------------------------------------

    def step_faults(self, src: str, dst: str, drop: float, duplicate: float, reorder: float, delay: list,
                    via: str) -> None:
        self.require(self.loop is not None, "the proxy is down")
        self.require(src in NODES and dst in NODES and via in VIA, f"faults {src} -> {dst} via {via!r}")
        self.require(all(0 <= chance <= 1 for chance in (drop, duplicate, reorder)) and len(delay) == 2
                     and 0 <= delay[0] <= delay[1] <= 60, "faults the proxy takes (mistakes are the mistake step's)")
        answer = self.change(via, "faults", src=src, dst=dst, drop=drop, duplicate=duplicate, reorder=reorder,
                             delay=delay)
        assert answer is None, f"faults answered {answer!r}"
        self.fault_of[(src, dst)] = (drop, duplicate, reorder, tuple(delay))

    @guard(lambda self: self.loop is not None)
    @rule(link=st.integers(0, MAX_LINKS - 1), end=st.sampled_from(["a", "b"]),
          chances=st.tuples(*[st.sampled_from(CHANCES)] * 3), delay=st.sampled_from(DELAYS), via=st.sampled_from(VIA))
    def faults(self, link, end, chances, delay, via):
        """Faults on one direction of a link: chances of drop, duplicate and reorder, a delay range."""
        src, dst, _ = self.direction(link % len(self.links), end)
        drop, duplicate, reorder = chances
        self.do("faults", src=src, dst=dst, drop=drop, duplicate=duplicate, reorder=reorder, delay=list(delay), via=via)

    @guard(lambda self: self.loop is not None)
    @rule(how=st.sampled_from(["partition", "block", "heal", "clear"]), link=st.integers(0, MAX_LINKS - 1),
          end=st.sampled_from(["a", "b"]), split=st.sampled_from(SPLITS), via=st.sampled_from(VIA))
    def network(self, how, link, end, split, via):
        """One rule for the four changes of who reaches whom (each a step of its own): a partition, a
        one-way block of a link's direction, heal, clear."""
        src, dst, _ = self.direction(link % len(self.links), end)
        if how == "partition":
            self.do("partition", groups=[list(group) for group in split], via=via)
        elif how == "block":
            self.do("block", src=src, dst=dst, via=via)
        else:
            self.do(how, via=via)

    def step_partition(self, groups: list, via: str) -> None:
        self.require(self.loop is not None, "the proxy is down")
        self.require(via in VIA and all(isinstance(group, list) and set(group) <= set(NODES) for group in groups),
                     f"groups {groups!r} via {via!r}")
        self.change(via, "partition", groups=groups)
        for i, group in enumerate(groups):
            for other in groups[i + 1:]:
                self.blocked |= {(x, y) for x in group for y in other} | {(y, x) for x in group for y in other}

    def step_block(self, src: str, dst: str, via: str) -> None:
        self.require(self.loop is not None, "the proxy is down")
        self.require(src in NODES and dst in NODES and via in VIA, f"block {src} -> {dst} via {via!r}")
        self.change(via, "block", src=src, dst=dst)
        self.blocked.add((src, dst))

    def step_heal(self, via: str) -> None:
        self.require(self.loop is not None and via in VIA, f"heal via {via!r}")
        self.change(via, "heal")
        self.blocked.clear()

    def step_clear(self, via: str) -> None:
        self.require(self.loop is not None and via in VIA, f"clear via {via!r}")
        self.change(via, "clear")
        self.blocked.clear()
        self.fault_of.clear()

    # --- time, restarts, the end ----------------------------------------------------------------

    @guard(lambda self: self.loop is not None)
    @rule(seconds=st.sampled_from(ADVANCES))
    def advance(self, seconds):
        self.do("advance", seconds=seconds)

    def step_advance(self, seconds: float) -> None:
        self.require(self.loop is not None and seconds > 0, "the proxy is down")
        self.loop.advance(seconds, f"the clock moved {seconds} s on")
        now = self.loop.now()
        due = sorted([held for held in [*self.delayed, *self.slot.values()] if held.at <= now],
                     key=lambda held: (held.at, held.sequence))
        self.delayed = [held for held in self.delayed if held.at > now]
        self.slot = {direction: held for direction, held in self.slot.items() if held.at > now}
        for held in due:
            self.out(held)

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from([*NODES, "proxy"]), via=st.sampled_from(VIA))
    def crash(self, node, via):
        """A node restarts on another port (``retarget``), or the proxy itself (``restart``)."""
        if node == "proxy":
            self.do("restart")
            self.do("link", a="a", b="b", via="call")
        else:
            self.do("retarget", node=node, via=via)

    def step_retarget(self, node: str, via: str) -> None:
        """``node`` restarts on another port (what reached its old one is gone with it)."""
        self.require(self.loop is not None and node in NODES and via in VIA, f"retarget {node!r} via {via!r}")
        self.check_arrivals()
        self.sockets.pop(node).close()
        self.sockets[node] = self.open_socket()
        answer = self.change(via, "retarget", name=node, address=list(self.address(node)))
        assert answer is None, f"retarget answered {answer!r}"

    def step_restart(self) -> None:
        """The control endpoint's ``shutdown``: answered, then the proxy closes every port and its loop
        ends; then a proxy of the same seed starts afresh (as ``Cluster`` would start its process again)."""
        self.require(self.loop is not None, "the proxy is down")
        assert self.client is not None
        answer = self.client.call("shutdown")
        assert answer == "shutting down", f"shutdown answered {answer!r}"
        assert self.loop.ended.wait(5.0), "the proxy's loop did not end within 5 s of shutdown"
        assert self.loop.error is None, f"the proxy ended with {self.loop.error!r} on shutdown, not cleanly"
        for _ in range(3):  # the endpoint is gone: each request fails, naming the operation and what happened
            # (on the connection the endpoint closed, then on a new one its port refuses)
            try:
                self.client.call("stats")
            except ControlError as error:
                assert str(error).startswith("stats: "), f"a request after shutdown failed as {error!r}, not naming stats"
            else:
                raise AssertionError("a stats request after shutdown was answered")
        self.client.close()
        for i, (_, _, port) in enumerate(self.links):  # every link's port is free again
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError as error:
                    raise AssertionError(f"link {i}'s port still bound after shutdown: {error.strerror}") from None
        with socket.socket() as probe:
            try:
                probe.connect(("127.0.0.1", self.loop.control_port))
            except OSError:
                pass
            else:
                raise AssertionError("the control port still accepts connections after shutdown")
        self.loop.stop()
        self.loop = None
        self.links, self.fault_of, self.blocked, self.draws = [], {}, set(), {}
        self.delayed, self.slot, self.counts = [], {}, Counter()
        self.step_start(self.seed, self.max_held)

    # --- a caller's mistakes -------------------------------------------------------------------

    @guard(lambda self: self.loop is not None)
    @rule(how=st.sampled_from(["stray", "mistake"]), mistake=st.sampled_from(sorted(MISTAKES)),
          link=st.integers(0, MAX_LINKS - 1))
    def adversary(self, how, mistake, link):
        """A stray datagram on a link's port, or a caller's mistake on the control endpoint."""
        if how == "stray":
            self.do("stray", link=link % len(self.links))
        else:
            self.do("mistake", how=mistake)

    def request_of(self, how: str) -> bytes:
        """The request line (without its newline) a caller who made mistake ``how`` sends."""
        port = self.address("b")[1]
        good_link = {"a": "a", "a_address": list(self.address("a")), "b": "b"}
        requests = {
            "empty-line": b"",
            "not-json": b"{op: heal}",
            "not-an-object": b"[1, 2]",
            "no-op": json.dumps({"args": {}}).encode(),
            "unknown-op": json.dumps({"op": "explode"}).encode(),
            "op-not-a-string": json.dumps({"op": ["heal"]}).encode(),
            "args-not-an-object": json.dumps({"op": "heal", "args": [1]}).encode(),
            "unknown-argument": json.dumps({"op": "heal", "args": {"gently": True}}).encode(),
            "chance-above-one": json.dumps({"op": "faults", "args": {"src": "a", "dst": "b", "drop": 1.5}}).encode(),
            "chance-not-a-number": json.dumps({"op": "faults", "args": {"src": "a", "dst": "b",
                                                                        "duplicate": "0.5"}}).encode(),
            "chance-nan": json.dumps({"op": "faults", "args": {"src": "a", "dst": "b", "reorder": math.nan}}).encode(),
            "delay-reversed": json.dumps({"op": "faults", "args": {"src": "a", "dst": "b",
                                                                   "delay": [0.2, 0.1]}}).encode(),
            "delay-past-a-minute": json.dumps({"op": "faults", "args": {"src": "a", "dst": "b",
                                                                        "delay": [0, 61]}}).encode(),
            "delay-not-a-pair": json.dumps({"op": "faults", "args": {"src": "a", "dst": "b", "delay": [0.1]}}).encode(),
            "delay-a-number": json.dumps({"op": "faults", "args": {"src": "a", "dst": "b", "delay": 0.1}}).encode(),
            "unknown-fault": json.dumps({"op": "faults", "args": {"src": "a", "dst": "b", "loss": 0.5}}).encode(),
            "link-off-loopback": json.dumps({"op": "link", "args": {**good_link,
                                                                     "b_address": ["10.0.0.1", port]}}).encode(),
            "link-port-not-a-number": json.dumps({"op": "link", "args": {**good_link,
                                                                          "b_address": ["127.0.0.1", "x"]}}).encode(),
            "link-port-past-65535": json.dumps({"op": "link", "args": {**good_link,
                                                                        "b_address": ["127.0.0.1", 65536]}}).encode(),
            "link-dialer-of-no-port": json.dumps({"op": "link", "args": {**good_link, "a_address": ["127.0.0.1", 70000],
                                                                          "b_address": list(self.address("b"))}}).encode(),
            "link-address-of-one-item": json.dumps({"op": "link", "args": {**good_link,
                                                                            "b_address": ["127.0.0.1"]}}).encode(),
            "retarget-off-loopback": json.dumps({"op": "retarget", "args": {"name": "b",
                                                                             "address": ["10.0.0.1", port]}}).encode(),
            "retarget-to-no-port": json.dumps({"op": "retarget", "args": {"name": "b",
                                                                           "address": ["127.0.0.1", 0]}}).encode(),
            "partition-not-lists": json.dumps({"op": "partition", "args": {"groups": "ab"}}).encode(),
            "partition-of-a-name": json.dumps({"op": "partition", "args": {"groups": [["a"], "b"]}}).encode(),
        }
        if how == "line-past-the-limit":  # a well-formed request, padded one byte past the limit
            return self.padded(MAX_CONTROL_LINE_BYTES + 1)
        return requests[how]

    @staticmethod
    def padded(size: int) -> bytes:
        """A ``stats`` request of ``size`` bytes (spaces after the JSON object)."""
        request = json.dumps({"op": "stats"}).encode()
        return request + b" " * (size - len(request))

    def step_mistake(self, how: str) -> None:
        self.require(self.loop is not None and how in MISTAKES, f"no mistake {how!r}")
        before = self.stats_of_proxy()
        line = self.request_of(how) + b"\n"
        if how != "line-past-the-limit":  # a request right behind it, in the same write: answered in turn
            line += json.dumps({"op": "stats"}).encode() + b"\n"
        with socket.create_connection(("127.0.0.1", self.loop.control_port), timeout=5.0) as conn:
            conn.sendall(line)
            answer, rest = self.read_line(conn)
            try:
                reply = json.loads(answer)
            except ValueError:
                raise AssertionError(f"mistake {how}: the control endpoint answered {answer[:200]!r}, not JSON") from None
            assert reply.get("ok") is False, f"mistake {how}: the control endpoint took it (answered ok); an error was due"
            self.check_error(how, reply.get("error"))
            if how == "line-past-the-limit":  # answered, then the connection is closed
                assert rest == b"" and self.read_closed(conn), f"mistake {how}: the connection stayed open"
            else:
                following, _ = self.read_line(conn, rest)
                assert json.loads(following) == {"ok": True, "value": before}, (
                    f"mistake {how}: the stats request behind it on the same connection was answered "
                    f"{json.loads(following).get('error', 'with other stats')}")
        if how == "line-past-the-limit":  # a line exactly at the limit is a request like any other
            with socket.create_connection(("127.0.0.1", self.loop.control_port), timeout=5.0) as conn:
                conn.sendall(self.padded(MAX_CONTROL_LINE_BYTES) + b"\n")
                reply = json.loads(self.read_line(conn)[0])
                assert reply == {"ok": True, "value": before}, (f"a stats request of exactly MAX_CONTROL_LINE_BYTES "
                                                                f"was answered {reply.get('error', 'with other stats')}")
        request = json.loads(self.request_of(how)) if how not in ("line-past-the-limit", "empty-line", "not-json") else None
        if isinstance(request, dict) and isinstance(request.get("op"), str) and isinstance(request.get("args", {}), dict):
            try:  # as a caller of ControlClient makes it: a ControlError carrying the endpoint's error
                self.client.call(request["op"], **request.get("args", {}))
            except ControlError as error:
                self.check_error(f"{how} (by ControlClient)", str(error))
            else:
                raise AssertionError(f"mistake {how}: ControlClient's call of it returned; a ControlError was due")
            self.check_command_line(how, request, before)
        if how == "retarget-to-no-port":  # the edges of a port: a node no link names, retargeted to each, is a no-op
            for port in (1, 65535):
                answer = self.client.call("retarget", name="z", address=["127.0.0.1", port])
                assert answer is None, f"retarget of a node on no link to port {port} answered {answer!r}"
        after = self.stats_of_proxy()
        assert after == before, f"mistake {how} changed the proxy: {self.named(before)} -> {self.named(after)}"

    def check_command_line(self, how: str, request: dict, stats: dict) -> None:
        """The operator's command line (``python -m implementations.transport.control PORT OP [ARGS]``,
        its ``main`` run here): the mistake's request prints ``error: `` and the endpoint's error to
        standard error, exit 1; ``stats`` prints the proxy's stats as indented JSON, exit 0; a call
        without an operation, or with a port or arguments that are none, prints its usage and what is
        wrong, exit 2."""
        port = str(self.loop.control_port)
        code, out, err = run_command_line([port, request["op"], json.dumps(request.get("args", {}))])
        assert code == 1 and out == "" and err.startswith("error: ") and err.endswith("\n"), (
            f"mistake {how} by the command line: exit {code}, printed {out!r} and {err!r}")
        self.check_error(f"{how} (by the command line)", err[len("error: "):-1])
        code, out, err = run_command_line([port, "stats"])
        assert (code, out, err) == (0, json.dumps(stats, indent=2, sort_keys=True) + "\n", ""), (
            f"the command line's stats: exit {code}, printed {out[:200]!r} and {err[:200]!r}")
        usage = "usage: python -m implementations.transport.control PORT OP [JSON-ARGS]\n"
        for argv, problem in (([port], ""), (["x", "stats"], "error: PORT is a port number, got 'x'\n"),
                              (["70000", "stats"], "error: PORT is a port number, got '70000'\n"),
                              (["65536", "stats"], "error: PORT is a port number, got '65536'\n"),
                              ([port, "heal", "{gently"], "error: JSON-ARGS is not JSON: "),
                              ([port, "heal", "[1]"], "error: JSON-ARGS is a JSON object, got list\n")):
            try:
                code, out, err = run_command_line(argv)
            except Exception as error:  # (a traceback is what the operator would get)
                raise AssertionError(f"the command line {argv} raised {type(error).__name__}: {error}") from None
            said = err.startswith(usage + problem) if problem else err == usage
            assert code == 2 and out == "" and said, (
                f"the command line {argv}: exit {code}, printed {out!r} and {err!r}; exit 2 with {usage + problem!r}")
        for edge in ("1", "65535"):  # a port at either end is a port: dialed, refused there (nothing listens), exit 1
            code, out, err = run_command_line([edge, "stats"])
            assert code == 1 and err.startswith(f"error: stats: control endpoint 127.0.0.1:{edge}: "), (
                f"the command line at port {edge}: exit {code}, printed {out!r} and {err!r}")

    @staticmethod
    def check_error(how: str, error) -> None:
        expected = MISTAKES[how.split(" ")[0]]
        if expected.startswith("="):
            assert error == expected[1:], f"mistake {how}: the error is {error!r}, not {expected[1:]!r}"
        else:
            assert expected in str(error), f"mistake {how}: the error {error!r} does not say {expected!r}"

    @staticmethod
    def read_line(conn: socket.socket, buffer: bytes = b"") -> tuple[bytes, bytes]:
        """The next line from ``conn`` (after what ``buffer`` holds of it), and what came after it."""
        while b"\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                raise AssertionError(f"the control endpoint closed the connection without an answer ({buffer[:200]!r})")
            buffer += data
        line, _, rest = buffer.partition(b"\n")
        return line, rest

    @staticmethod
    def read_closed(conn: socket.socket) -> bool:
        try:
            return conn.recv(1) == b""
        except OSError:
            return True

    # --- what must hold -----------------------------------------------------------------------

    def stats_of_proxy(self) -> dict:
        """The control endpoint's ``stats``, through the machine's client, which closes its connection
        after every other look (a client closed and used again connects anew; the endpoint serves both)."""
        assert self.client is not None
        stats = self.client.call("stats")
        self.looks += 1
        if self.looks % 2:
            self.client.close()
        return stats

    def named(self, stats: dict) -> dict:
        """The proxy's ``stats`` with each link's port replaced by the link's number (ports change from
        run to run; a failure must read the same in every replay)."""
        number = {str(port): f"link {i}" for i, (_, _, port) in enumerate(self.links)}
        links = stats.get("links")
        if isinstance(links, dict):
            stats = {**stats, "links": {number.get(port, f"port {port}, no link"): ends for port, ends in links.items()}}
        return stats

    def expected_stats(self) -> dict:
        return {
            "links": {f"link {i}": [a, b] for i, (a, b, _) in enumerate(self.links)},
            "blocked": sorted(f"{src}->{dst}" for src, dst in self.blocked),
            "held": len(self.delayed) + len(self.slot),
            "stats": {kind: count for kind, count in sorted(self.counts.items()) if count},
        }

    def check_arrivals(self) -> None:
        for name in NODES:
            expected, self.arrivals[name] = self.arrivals[name], []
            got = self.receive(name, len(expected))
            assert got == expected, (f"node {name} received {self.show(got)}; the model says {self.show(expected)}")

    def receive(self, name: str, count: int) -> list[tuple[int, bytes]]:
        """What node ``name``'s socket holds: ``count`` datagrams waited for (0.1 s at most: on loopback a
        datagram sent is in its receiver's buffer when sendto returns), then any more."""
        sock, got = self.sockets[name], []
        while True:
            wait = 0.1 if len(got) < count else 0.0
            if not select.select([sock], [], [], wait)[0]:
                return got
            data, source = sock.recvfrom(65536)
            assert source[0] == "127.0.0.1", f"node {name} received {data!r} from {source}"
            got.append((source[1], data))

    def show(self, arrivals: list[tuple[int, bytes]]) -> str:
        number = {port: f"link {i}" for i, (_, _, port) in enumerate(self.links)}
        return ("[" + ", ".join(f"{data.decode()} from {number.get(port, 'another port')}" for port, data in arrivals)
                + "]" if arrivals else "nothing")

    def check(self) -> None:
        if self.loop is None:
            return
        self.check_arrivals()
        got, expected = self.named(self.stats_of_proxy()), self.expected_stats()
        assert got == expected, f"the proxy's stats are {got}; the model says {expected}"

    def observe(self) -> list[Observation]:
        if self.loop is None:
            return []
        try:
            got = self.named(self.stats_of_proxy())
        except (ControlError, OSError) as error:
            got = {"error": str(error)}
        expected = self.expected_stats()
        return [Observation(key, expected[key], got.get(key)) for key in expected]


test_proxy_machine = network_machine_test(ProxyMachine, examples=60, steps=40)
