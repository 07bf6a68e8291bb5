"""A UDP fault proxy between nodes: drop, delay, duplicate, reorder, partition and heal.

Nodes do not dial each other directly: node ``a`` reaches node ``b`` at a proxy port made
by ``add_link(a, a_address, b, b_address)``. A datagram arriving there from ``a`` goes to
``b`` and one from ``b`` (its answers, sent back to that port) goes to ``a``, so one link
carries both directions of the connections ``a`` dials to ``b``.

Faults are per direction, named by the nodes (``src -> dst``), and apply to every link
between them:

* ``set_faults(src, dst, drop=, duplicate=, reorder=, delay=(lo, hi))``: probabilities and
  a delay range in seconds;
* ``partition([[a, b], [c]])``: nothing passes between different groups, both ways;
  ``block(src, dst)``: one way only (an asymmetric partition); ``heal()`` lifts every
  block (faults stay; ``clear()`` lifts those too).

**Deterministic given a seed.** Each direction draws from its own generator,
``random.Random(f"{seed}:{src}->{dst}")``, and every datagram draws the same four numbers of it
whatever the faults (``decide``): the fate of the n-th datagram from ``src`` to ``dst`` depends
only on the seed, the link and the faults set when it passes, not on other links' traffic.

Reordering holds a datagram back (one per direction at a time) and sends it as soon as the next
datagram of the same direction has passed (after it, when that one goes out at once), or after
``REORDER_HOLD_SECONDS`` if none comes. Delayed and held-back datagrams go out in order of the
time they are due, then of their arrival, to the address the receiver had when they came. A
block is checked again when a held datagram is released, so nothing crosses a partition made
while it waited. At most ``max_held`` (by default ``MAX_PROXY_HELD_DATAGRAMS``) are held at
once; past it, a datagram to hold is dropped (``dropped_held_full``).

A caller's mistake (a chance that is no number in [0, 1], a delay that is no pair of seconds in
order, an address that is no ``[host, port]`` on loopback) is refused with a ``ValueError``
naming it, and changes nothing.

Driven from outside: in a process (``python -m implementations.transport.proxy --seed 7``:
prints a ready line with its control port) through the control protocol (``control``),
whose operations are ``link``, ``faults``, ``partition``, ``block``, ``heal``, ``clear``,
``retarget`` and ``stats``; or in-process through the same methods.
"""

from __future__ import annotations

import argparse
import collections
import heapq
import itertools
import json
import random
import socket
import sys
from dataclasses import dataclass, field

import trio

from implementations.limits import MAX_PROXY_HELD_DATAGRAMS
from implementations.transport.control import serve_control
from implementations.transport.endpoint import check_loopback, is_port

REORDER_HOLD_SECONDS = 0.05
Address = tuple[str, int]


@dataclass(frozen=True)
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder"):
            value = getattr(self, name)
            if not (_is_number(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} is a probability in [0, 1], got {value!r}")
        delay = self.delay
        if not (isinstance(delay, (tuple, list)) and len(delay) == 2 and all(map(_is_number, delay))
                and 0.0 <= delay[0] <= delay[1] <= 60.0):
            raise ValueError(f"delay is a range 0 <= lo <= hi <= 60 seconds, got {delay!r}")
        object.__setattr__(self, "delay", tuple(delay))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked_address(value, what: str) -> Address:
    """``value``, a ``[host, port]`` on loopback, as an address; a ``ValueError`` naming ``what`` otherwise."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str) and is_port(value[1])):
        raise ValueError(f"{what}: expected [host, port] with a port from 1 to 65535, got {value!r}")
    return (check_loopback(value[0]), value[1])


@dataclass(frozen=True)
class Decision:
    """What happens to one datagram: dropped, or sent ``copies`` times after ``delay``, maybe held back."""

    drop: bool
    copies: int
    delay: float
    hold: bool


def decide(rng: random.Random, faults: Faults) -> Decision:
    """The fate of the next datagram; always draws four numbers, so the stream stays aligned."""
    drop, duplicate, reorder, delay = rng.random(), rng.random(), rng.random(), rng.random()
    lo, hi = faults.delay
    return Decision(
        drop=drop < faults.drop,
        copies=2 if duplicate < faults.duplicate else 1,
        delay=lo + (hi - lo) * delay,
        hold=reorder < faults.reorder,
    )


@dataclass
class Link:
    a: str
    a_address: Address
    b: str
    b_address: Address
    sock: socket.socket


@dataclass
class FaultProxy:
    """The proxy's state and tasks; ``run`` in a nursery, then add links and faults."""

    seed: int
    #: Datagrams held at once, at most (delayed or held back for reordering).
    max_held: int = MAX_PROXY_HELD_DATAGRAMS
    stats: collections.Counter = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.links: dict[int, Link] = {}
        self.faults: dict[tuple[str, str], Faults] = {}
        self.blocked: set[tuple[str, str]] = set()
        self._rngs: dict[tuple[str, str], random.Random] = {}
        self._held: list = []  # heap of delayed datagrams: (release time, sequence, src, dst, sock, data, address)
        self._reorder_slot: dict[tuple[str, str], tuple] = {}  # direction -> the datagram held back, as above
        self._sequence = itertools.count()
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None

    # --- control -------------------------------------------------------------------------

    async def add_link(self, a: str, a_address: Address | list, b: str, b_address: Address | list) -> int:
        """A port on which ``a`` reaches ``b``."""
        if self._nursery is None:
            raise RuntimeError("the proxy is not running")
        a_address = checked_address(a_address, "a_address")
        b_address = checked_address(b_address, "b_address")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.links[port] = Link(a, a_address, b, b_address, sock)
        self._nursery.start_soon(self._relay, self.links[port])
        return port

    def set_faults(self, src: str, dst: str, **faults) -> None:
        self.faults[(src, dst)] = Faults(**faults)

    def partition(self, groups: list[list[str]]) -> None:
        """Block both directions between every two nodes of different groups (on top of current blocks)."""
        for i, group in enumerate(groups):
            for other in groups[i + 1 :]:
                for x in group:
                    for y in other:
                        self.blocked.update({(x, y), (y, x)})

    def block(self, src: str, dst: str) -> None:
        self.blocked.add((src, dst))

    def heal(self) -> None:
        self.blocked.clear()

    def clear(self) -> None:
        self.blocked.clear()
        self.faults.clear()

    def retarget(self, name: str, address: Address | list) -> None:
        """``name`` now listens at ``address`` (a node restarted on another port)."""
        address = checked_address(address, "address")
        for link in self.links.values():
            if link.a == name:
                link.a_address = address
            if link.b == name:
                link.b_address = address

    # --- forwarding ------------------------------------------------------------------------

    def _rng(self, src: str, dst: str) -> random.Random:
        rng = self._rngs.get((src, dst))
        if rng is None:
            rng = self._rngs[(src, dst)] = random.Random(f"{self.seed}:{src}->{dst}")
        return rng

    async def _relay(self, link: Link) -> None:
        sock = link.sock
        try:
            while True:
                await trio.lowlevel.wait_readable(sock)
                while True:
                    try:
                        data, source = sock.recvfrom(65536)
                    except BlockingIOError:
                        break
                    except OSError:
                        continue
                    if source == link.a_address:
                        self._forward(link.a, link.b, sock, data, link.b_address)
                    elif source == link.b_address:
                        self._forward(link.b, link.a, sock, data, link.a_address)
                    else:
                        self.stats["unknown_source"] += 1
        finally:
            sock.close()

    def _forward(self, src: str, dst: str, sock: socket.socket, data: bytes, address: Address) -> None:
        self.stats["received"] += 1
        decision = decide(self._rng(src, dst), self.faults.get((src, dst), Faults()))
        if (src, dst) in self.blocked:
            self.stats["partitioned"] += 1
            return
        if decision.drop:
            self.stats["dropped"] += 1
            return
        held = self._reorder_slot.pop((src, dst), None)
        now = trio.current_time()
        for _ in range(decision.copies):
            if decision.hold and (src, dst) not in self._reorder_slot:
                if self._room():
                    self._reorder_slot[(src, dst)] = (now + REORDER_HOLD_SECONDS, next(self._sequence),
                                                      src, dst, sock, data, address)
                    self._wake.set()
            elif decision.delay > 0:
                if self._room():
                    heapq.heappush(self._held, (now + decision.delay, next(self._sequence), src, dst, sock, data,
                                                address))
                    self._wake.set()
            else:
                self._send(src, dst, sock, data, address)
        if held is not None:  # the datagram held back goes after this one
            self.stats["reordered"] += 1
            self._send(*held[2:])
        if decision.copies == 2:
            self.stats["duplicated"] += 1

    def _room(self) -> bool:
        if len(self._held) + len(self._reorder_slot) < self.max_held:
            return True
        self.stats["dropped_held_full"] += 1
        return False

    def _send(self, src: str, dst: str, sock: socket.socket, data: bytes, address: Address) -> None:
        if (src, dst) in self.blocked:  # a partition made while the datagram waited
            self.stats["partitioned"] += 1
            return
        try:
            sock.sendto(data, address)
            self.stats["forwarded"] += 1
        except OSError:
            self.stats["unsent"] += 1

    def _take_due(self, now: float) -> list:
        """The held datagrams due by ``now``, delayed and held back, taken out, in the order they go:
        by the time they are due, then by their arrival."""
        due = []
        while self._held and self._held[0][0] <= now:
            due.append(heapq.heappop(self._held))
        for direction, entry in list(self._reorder_slot.items()):
            if entry[0] <= now:
                del self._reorder_slot[direction]
                due.append(entry)
        return sorted(due, key=lambda entry: entry[:2])

    async def _release_held(self) -> None:
        while True:
            self._wake = trio.Event()
            for entry in self._take_due(trio.current_time()):
                self._send(*entry[2:])
            next_due = min([entry[0] for entry in self._reorder_slot.values()], default=float("inf"))
            with trio.move_on_at(min(self._held[0][0], next_due) if self._held else next_due):
                await self._wake.wait()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Forward until cancelled; closes every link's socket on the way out."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._release_held)
                task_status.started(self)
        finally:
            self._nursery = None
            for link in self.links.values():
                link.sock.close()

    def describe(self) -> dict:
        return {
            "links": {str(port): [link.a, link.b] for port, link in self.links.items()},
            "blocked": sorted(f"{src}->{dst}" for src, dst in self.blocked),
            "held": len(self._held) + len(self._reorder_slot),
            "stats": dict(self.stats),
        }

    def control_handlers(self) -> dict:
        """The control protocol's operations (JSON arguments, JSON answers)."""

        async def link(a: str, a_address: list, b: str, b_address: list) -> int:
            return await self.add_link(a, a_address, b, b_address)

        def partition(groups: list) -> None:
            if not isinstance(groups, list) or not all(isinstance(group, list) for group in groups):
                raise ValueError("groups is a list of lists of node names")
            self.partition(groups)

        return {
            "link": link,
            "faults": self.set_faults,
            "partition": partition,
            "block": self.block,
            "heal": self.heal,
            "clear": self.clear,
            "retarget": self.retarget,
            "stats": self.describe,
        }


async def serve(seed: int, ready=sys.stdout, *, max_held: int = MAX_PROXY_HELD_DATAGRAMS,
                proxy_class: type[FaultProxy] = FaultProxy, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run a proxy (a ``proxy_class``) with a control endpoint; print ``{"ready": true, "control": PORT}``
    to ``ready``; stop on ``shutdown`` or when the parent process is gone. Started in a nursery, it
    gives the proxy to ``task_status`` once ready (the proxy machine runs it so, in process)."""
    from implementations.transport.process import watch_parent

    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(proxy_class(seed, max_held=max_held).run)
        port = await nursery.start(serve_control, proxy.control_handlers(), nursery.cancel_scope.cancel)
        nursery.start_soon(watch_parent, nursery.cancel_scope)
        print(json.dumps({"ready": True, "control": port}), file=ready, flush=True)
        task_status.started(proxy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m implementations.transport.proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    trio.run(serve, args.seed)
    return 0


if __name__ == "__main__":
    # Run by ``python -m`` (or a zygote's ``runpy``), this file is ``__main__``: the module imported by
    # its name does the work, so the process runs the functions the project imports (a mutation
    # run's mutants of them too: mutmut activates a mutant only in the module of its name).
    from implementations.transport import proxy as named

    raise SystemExit(named.main())
