"""Adapter: ``CoreDriver`` (``implementations.transport.driver``) over real QUIC endpoints on 127.0.0.1,
in this process, on a mock clock, for the ``driver`` machine.

``make_replica(replica_id, clock)`` returns a ``Drivers``; ``drivers.open(names, periods, metered)``
a ``DriverLoop``: one trio loop in a thread of its own for the length of one example, on a
``trio.testing.MockClock``, holding one endpoint (``open_endpoint``, an identity and a certificate
per name) and one ``CoreDriver`` per name, each over a core the machine hands it
(``start(name, core, ...)``); the directory of each driver holds every other name's address.

**Time.** The endpoints and the drivers read the loop's clock, which moves only when the loop is
told. ``settle()`` runs the loop until it is quiet: every task blocked, nothing readable on a
socket, and no timer due within ``HORIZON_SECONDS``; while it is not, the clock jumps to the next
timer. QUIC's own timers (pacing, the acknowledgement delay, microseconds to a millisecond) are
within the horizon; a core's tick a period away is not. So every message a step sends is
delivered and acknowledged by the end of the step, and the clock has moved only as far as the
transport needed, the same way in every replay. ``advance(seconds)`` moves the clock on, timer by
timer (every tick at its own time), then settles. ``now_ns()`` is the clock in nanoseconds.

A driver's ``run`` that ends (a core's exception stops a node, as the driver documents) is kept in
``ended[name]``; ``restart(name, core)`` starts a new driver over the same endpoint. Every wait is
bounded in real time. ``stop()`` ends the loop (the drivers, then the endpoints; bounded).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from typing import Any

from harness import Implementation, register
from implementations.transport import tls
from implementations.transport.driver import CoreDriver
from implementations.transport.endpoint import open_endpoint
from implementations.transport.identity import Ed25519Identity
from implementations.transport.metrics import NodeMetrics
from machines.adapters.loop_thread import MockLoop

_certificates: dict[str, tls.NodeCertificate] = {}


def certificate(name: str) -> tls.NodeCertificate:
    """A certificate per name, made once a process (in a directory removed at once)."""
    if name not in _certificates:
        with tempfile.TemporaryDirectory(prefix="mbt-driver-") as directory:
            _certificates[name] = tls.load_or_create(directory)
    return _certificates[name]


class DriverLoop(MockLoop):
    """A trio loop on a mock clock, in a thread, holding the endpoints and drivers of one example."""

    thread_name = "driver-machine trio loop"

    def __init__(self, names: list[str], driver_class: type[CoreDriver]) -> None:
        self.names, self.driver_class = list(names), driver_class
        self.identities = {name: Ed25519Identity(bytes([i + 1]) * 32) for i, name in enumerate(names)}
        self.keys = {name: identity.public_key for name, identity in self.identities.items()}
        self.endpoints: dict[str, Any] = {}
        self.drivers: dict[str, CoreDriver] = {}
        self.metrics: dict[str, NodeMetrics] = {}
        self.ended: dict[str, BaseException] = {}
        super().__init__()

    async def setup(self, stack: contextlib.AsyncExitStack) -> None:
        for name in self.names:
            self.endpoints[name] = await stack.enter_async_context(open_endpoint(self.identities[name], certificate(name)))

    # --- drivers --------------------------------------------------------------------------

    def start(self, name: str, core: Any, tick_period_ns: int, metered: bool,
              first: Callable[[Any, int], tuple[Any, Any]] | None = None) -> CoreDriver:
        """A driver of ``core`` over ``name``'s endpoint, its directory every other name's address, peers
        named by name (``public_key_of``: the name's key, ``None`` for a name it does not know), with a
        ``NodeMetrics`` sink if ``metered`` (the same sink across restarts); ``first``, if given, is
        applied (``CoreDriver.apply``) before its ``run`` starts."""
        directory = {other: self.endpoints[other].peer_address() for other in self.names if other != name}
        if metered and name not in self.metrics:
            self.metrics[name] = NodeMetrics()
        driver = self.driver_class(core, self.endpoints[name], directory, tick_period_ns=tick_period_ns,
                                   public_key_of=self.keys.get, metrics=self.metrics.get(name))

        async def run() -> None:
            try:
                await driver.run()
            except Exception as error:  # a node's end; the machine says whether it is the one expected
                self.ended[name] = error

        def begin() -> None:
            assert self._nursery is not None
            self.ended.pop(name, None)
            self.drivers[name] = driver
            if first is not None:
                driver.apply(first)
            self._nursery.start_soon(run)

        self.call(begin, f"starting {name}'s driver")
        return driver

    def now_ns(self) -> int:
        """The loop's clock, in nanoseconds (as the drivers' clocks count from it)."""
        return round(self.clock.current_time() * 1_000_000_000)


class Drivers:
    """What the machine is handed: ``open(names)`` starts a loop whose drivers are ``driver_class``."""

    def __init__(self, driver_class: type[CoreDriver] = CoreDriver) -> None:
        self.driver_class = driver_class

    def open(self, names: list[str]) -> DriverLoop:
        return DriverLoop(names, self.driver_class)


def implementation_with(name: str, driver_class: type[CoreDriver]) -> Implementation:
    """A driver-machine implementation around ``driver_class`` (the bug catalogue plants its bugs so)."""
    return Implementation(machine="driver", name=name, make_replica=lambda replica_id, clock: Drivers(driver_class),
                          level="exact", description=f"{driver_class.__name__} of implementations.transport.driver")


QUIC_LOOPBACK = register(
    Implementation(
        machine="driver",
        name="quic-loopback",
        make_replica=lambda replica_id, clock: Drivers(),
        level="exact",
        description="implementations.transport.driver.CoreDriver over real QUIC endpoints on 127.0.0.1, in process, "
                    "on a mock clock",
    )
)
