"""Run a sans-I/O core over a QUIC endpoint: the only place a node reads real time.

A core is any object with ``handle(data, now)`` and ``tick(now)`` that return what to send
as ``[(peer, bytes)]`` (the threshold cores, the node core of issue 8, the small cores in
``toy``). ``now`` is an integer of nanoseconds from ``TrioClock``: the wall clock read once,
when the driver starts, then advanced by trio's monotonic clock, so it is on the wall-clock
scale (comparable with times a core stored before a restart) and never goes backwards
within a run.

``CoreDriver.run`` takes every message the endpoint receives to ``core.handle`` and calls
``core.tick`` at the core's next deadline (``core.next_deadline(now)``, if it has one) or
every ``tick_period_ns``, whichever comes first; an operation from outside (the control
endpoint) goes through ``apply``. Whatever these return is sent at once: to the peer's open
connection if there is one, otherwise to the address the directory holds for it (dialed in
the background). Nothing here blocks on a peer: a peer that is down or slow loses messages
(counted in ``stats``: ``dropped``), which a core that gossips repairs by anti-entropy. A
message past ``MAX_FRAME_BYTES``, which no peer could take, is counted (``too_large``) and
the core's other messages go out: it stops neither the operation nor the node.

A message the core refuses (it raises ``DecodeError`` or another ``ValueError``: a bad
signature, a replay, malformed bytes) is counted and dropped; any other exception is a bug
and stops the node.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol

import trio

from implementations.transport.endpoint import Endpoint, PeerAddress, TransportError
from implementations.transport.framing import FramingError
from implementations.transport.metrics import MetricsSink

NS_PER_SECOND = 1_000_000_000
MIN_TICK_GAP_NS = 1_000_000
Outgoing = Iterable[tuple[Hashable, bytes]]


class Core(Protocol):
    def handle(self, data: bytes, now: int) -> Outgoing: ...

    def tick(self, now: int) -> Outgoing: ...


class TrioClock:
    """Nanoseconds on the wall-clock scale, advanced by ``trio.current_time()``."""

    def __init__(self) -> None:
        self._wall_ns, self._start = time.time_ns(), trio.current_time()

    def now(self) -> int:
        return self._wall_ns + round((trio.current_time() - self._start) * NS_PER_SECOND)


class CoreDriver:
    """One core, one endpoint, a directory of where peers listen.

    ``public_key_of(peer)`` is the identity key of the node a core's ``peer`` names (the
    identity function when the core names peers by key); ``directory`` maps a core's peer to
    the address to dial it at.
    """

    def __init__(
        self,
        core: Core,
        endpoint: Endpoint,
        directory: dict[Hashable, PeerAddress] | None = None,
        *,
        tick_period_ns: int = NS_PER_SECOND,
        public_key_of: Callable[[Hashable], bytes] = lambda peer: peer,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.core, self.endpoint, self.metrics = core, endpoint, metrics
        self.directory: dict[Hashable, PeerAddress] = dict(directory or {})
        self.tick_period_ns, self.public_key_of = tick_period_ns, public_key_of
        self.stats: collections.Counter = collections.Counter()
        self.clock: TrioClock | None = None
        self._poke = trio.Event()
        if metrics is not None and hasattr(core, "attach_metrics"):
            core.attach_metrics(metrics)

    def now(self) -> int:
        if self.clock is None:
            self.clock = TrioClock()
        return self.clock.now()

    def apply(self, operation: Callable[[Any, int], tuple[Any, Outgoing]]) -> Any:
        """Run ``operation(core, now)``, which returns ``(result, outgoing)``; send and return ``result``."""
        result, outgoing = operation(self.core, self.now())
        self._dispatch(outgoing)
        self._poke.set()
        return result

    async def run(self) -> None:
        """Handle messages and ticks until cancelled."""
        self.now()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._ticks)
            while True:
                for _, data in await self.endpoint.receive_many():
                    self.stats["received"] += 1
                    try:
                        outgoing = self.core.handle(data, self.now())
                    except ValueError:  # DecodeError and every refusal of a core is one
                        self.stats["refused"] += 1
                        if self.metrics is not None:
                            self.metrics.message_refused()
                        continue
                    self._dispatch(outgoing)
                self._poke.set()

    async def _ticks(self) -> None:
        last_tick = self.now()
        while True:
            self._poke = trio.Event()  # reset before reading the deadline: a poke after it is kept
            now = self.now()
            wake_at = last_tick + self.tick_period_ns
            next_deadline = getattr(self.core, "next_deadline", None)
            deadline = next_deadline(now) if next_deadline is not None else None
            if deadline is not None:  # never sooner than MIN_TICK_GAP_NS after a tick: a stuck deadline cannot spin
                wake_at = max(min(wake_at, deadline), last_tick + MIN_TICK_GAP_NS)
            if now < wake_at:
                with trio.move_on_after((wake_at - now) / NS_PER_SECOND):
                    await self._poke.wait()
                continue  # an operation or a message may have moved the deadline
            last_tick = now
            self.stats["ticks"] += 1
            self._dispatch(self.core.tick(now))
            if hasattr(self.metrics, "peers_online"):
                self.metrics.peers_online(len(self.endpoint.peers()))

    def _dispatch(self, outgoing: Outgoing) -> None:
        for peer, data in outgoing:
            key = self.public_key_of(peer)
            conn = self.endpoint.connection_to(key)
            try:
                if conn is not None:
                    conn.send_nowait(data)
                elif peer in self.directory:
                    self.endpoint.send_to(self.directory[peer], data)
                else:
                    self.stats["unknown_peer"] += 1
                    continue
            except TransportError:
                self.stats["dropped"] += 1
                continue
            except FramingError:  # the core's message exceeds MAX_FRAME_BYTES: no peer could take it
                self.stats["too_large"] += 1
                continue
            self.stats["sent"] += 1
