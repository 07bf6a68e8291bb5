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
import threading
import time
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

from harness import Implementation, register
from implementations.transport import tls
from implementations.transport.driver import CoreDriver
from implementations.transport.endpoint import open_endpoint
from implementations.transport.identity import Ed25519Identity
from implementations.transport.metrics import NodeMetrics
from machines.adapters.loop_thread import call_in_loop, run_timers

#: The longest a call into the loop may take, in real seconds.
CALL_SECONDS = 10.0
#: Timers due within this many seconds are the transport's own: ``settle`` runs them.
HORIZON_SECONDS = 0.01
#: The most clock jumps one ``settle`` makes before it calls the loop stuck.
MAX_JUMPS = 5_000
_certificates: dict[str, tls.NodeCertificate] = {}


def certificate(name: str) -> tls.NodeCertificate:
    """A certificate per name, made once a process (in a directory removed at once)."""
    if name not in _certificates:
        with tempfile.TemporaryDirectory(prefix="mbt-driver-") as directory:
            _certificates[name] = tls.load_or_create(directory)
    return _certificates[name]


class DriverLoop:
    """A trio loop on a mock clock, in a thread, holding the endpoints and drivers of one example."""

    def __init__(self, names: list[str], driver_class: type[CoreDriver]) -> None:
        self.names, self.driver_class = list(names), driver_class
        self.clock = trio.testing.MockClock()
        self.identities = {name: Ed25519Identity(bytes([i + 1]) * 32) for i, name in enumerate(names)}
        self.keys = {name: identity.public_key for name, identity in self.identities.items()}
        self.endpoints: dict[str, Any] = {}
        self.drivers: dict[str, CoreDriver] = {}
        self.metrics: dict[str, NodeMetrics] = {}
        self.ended: dict[str, BaseException] = {}
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._loop_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="driver-machine trio loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(CALL_SECONDS) or len(self.endpoints) != len(names):
            self.stop()
            raise RuntimeError(f"the endpoints did not open within {CALL_SECONDS} s: {self._loop_error!r}")

    def _run(self) -> None:
        async def main() -> None:
            async with contextlib.AsyncExitStack() as stack:
                for name in self.names:
                    self.endpoints[name] = await stack.enter_async_context(
                        open_endpoint(self.identities[name], certificate(name)))
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self._token = trio.lowlevel.current_trio_token()
                    self._ready.set()
                    await trio.sleep_forever()

        try:
            trio.run(main, clock=self.clock)
        except BaseException as error:  # reported by the next call
            self._loop_error = error
        finally:
            self._finished.set()
            self._ready.set()

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

    # --- running code in the loop ---------------------------------------------------------

    def call(self, function: Callable[[], Any], what: str) -> Any:
        """``function()`` (awaited if it returns an awaitable) in the loop; its result or its exception."""
        if self._finished.is_set():
            raise AssertionError(f"{what}: the loop has ended ({self._loop_error!r})")
        assert self._token is not None and self._nursery is not None
        return call_in_loop(self._token, self._nursery, function, what, CALL_SECONDS)

    def settle(self, what: str) -> None:
        self.call(lambda: run_timers(self.clock, HORIZON_SECONDS, MAX_JUMPS, what), what)

    def advance(self, seconds: float, what: str) -> None:
        async def go() -> None:
            await run_timers(self.clock, HORIZON_SECONDS, MAX_JUMPS, what, until=trio.current_time() + seconds)
            await run_timers(self.clock, HORIZON_SECONDS, MAX_JUMPS, what)

        self.call(go, what)

    def now_ns(self) -> int:
        """The loop's clock, in nanoseconds (as the drivers' clocks count from it)."""
        return round(self.clock.current_time() * 1_000_000_000)

    def stop(self) -> None:
        """End the loop: drivers cancelled, endpoints closed; bounded."""
        if self._token is not None and self._nursery is not None and not self._finished.is_set():
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
        deadline = time.monotonic() + CALL_SECONDS
        self._thread.join(max(0.0, deadline - time.monotonic()))


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
