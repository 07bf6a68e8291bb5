"""Adapter: the UDP fault proxy of ``implementations.transport.proxy`` and its control endpoint
(``implementations.transport.control``) on 127.0.0.1, in this process, for the ``proxy`` machine.

``make_replica(replica_id, clock)`` returns a ``Proxies``; ``proxies.open(seed, max_held)`` a
``ProxyLoop``: one trio loop in a thread of its own for the length of one example, running the
proxy process's own ``serve`` (a ``FaultProxy`` and ``serve_control`` over its
``control_handlers()``, whose ``shutdown`` ends both; its ready line is kept in
``ready_line``). The loop's clock is a ``trio.testing.MockClock``
that moves only when the machine says (``advance``): a delay or a reordering hold ends exactly
when the model says, whatever the host's load. ``call(function, what)`` runs ``function()`` (a
plain or async callable) in the loop and returns its result; ``settle(received)`` waits until
the proxy has taken ``received`` datagrams and every task of the loop is blocked (nothing more
will move until something arrives or the clock is moved); ``advance(seconds)`` moves the clock
and settles. Every wait is bounded in real time. ``stop()`` ends the loop (bounded).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

from harness import Implementation, register
from implementations.transport.proxy import FaultProxy, serve
from machines.adapters.loop_thread import call_in_loop

#: The longest a call into the loop may take, in real seconds.
CALL_SECONDS = 5.0
#: How long ``settle`` waits, in real seconds, for the proxy to take what was sent to it.
SETTLE_SECONDS = 3.0


class ProxyLoop:
    """A trio loop on a mock clock, in a thread, running one fault proxy and its control endpoint."""

    def __init__(self, proxy_class: type[FaultProxy], seed: int, max_held: int) -> None:
        self.clock = trio.testing.MockClock()
        self.proxy: FaultProxy | None = None
        self.control_port = 0
        self.ready_line = ""
        self.ended = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._loop_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(proxy_class, seed, max_held),
                                        name="proxy-machine trio loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(CALL_SECONDS) or self.proxy is None:
            raise RuntimeError(f"the proxy did not start within {CALL_SECONDS} s: {self._loop_error!r}")

    def _run(self, proxy_class: type[FaultProxy], seed: int, max_held: int) -> None:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._token = trio.lowlevel.current_trio_token()
                ready = io.StringIO()
                proxy = await nursery.start(functools.partial(serve, seed, ready, max_held=max_held,
                                                              proxy_class=proxy_class))
                self.ready_line = ready.getvalue()
                self.control_port = json.loads(self.ready_line)["control"]
                self.proxy = proxy
                self._ready.set()  # the loop ends with serve (on shutdown) or at stop()

        try:
            trio.run(main, clock=self.clock)
        except BaseException as error:  # reported by the next call
            self._loop_error = error
        finally:
            self.ended.set()
            self._ready.set()

    @property
    def running(self) -> bool:
        return not self.ended.is_set()

    @property
    def error(self) -> BaseException | None:
        """What the loop ended with, if it ended by an exception (a clean shutdown ends it with none)."""
        return self._loop_error

    def call(self, function: Callable[[], Any], what: str) -> Any:
        """``function()`` (awaited if it returns an awaitable) in the loop; its result or its exception."""
        if not self.running:
            raise AssertionError(f"{what}: the proxy's loop has ended ({self._loop_error!r})")
        assert self._token is not None and self._nursery is not None
        return call_in_loop(self._token, self._nursery, function, what, CALL_SECONDS, "the proxy's loop")

    def settle(self, received: int, what: str) -> None:
        """Wait until the proxy has counted ``received`` datagrams (forwarded or not) and nothing in
        the loop can move; past ``SETTLE_SECONDS`` of real time an ``AssertionError`` naming ``what``."""

        async def wait() -> None:
            deadline = time.monotonic() + SETTLE_SECONDS
            while True:
                await trio.testing.wait_all_tasks_blocked(0.0005)
                assert self.proxy is not None
                taken = self.proxy.stats["received"] + self.proxy.stats["unknown_source"]
                if taken >= received:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{what}: the proxy took {taken} of the {received} datagrams sent to it "
                                         f"within {SETTLE_SECONDS} s")

        self.call(wait, what)

    def advance(self, seconds: float, what: str) -> None:
        """Move the loop's clock ``seconds`` on and wait until what became due has run."""

        async def jump() -> None:
            self.clock.jump(seconds)
            await trio.testing.wait_all_tasks_blocked(0.0005)

        self.call(jump, what)

    def now(self) -> float:
        return self.clock.current_time()

    def stop(self) -> None:
        """End the loop (the proxy closes its sockets, the control endpoint its listener); bounded."""
        if self._token is not None and self._nursery is not None and self.running:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
        self._thread.join(CALL_SECONDS)


class Proxies:
    """What the machine is handed: ``open(seed, max_held)`` starts a proxy of ``proxy_class``."""

    def __init__(self, proxy_class: type[FaultProxy] = FaultProxy) -> None:
        self.proxy_class = proxy_class

    def open(self, seed: int, max_held: int) -> ProxyLoop:
        return ProxyLoop(self.proxy_class, seed, max_held)


def implementation_with(name: str, proxy_class: type[FaultProxy]) -> Implementation:
    """A proxy-machine implementation around ``proxy_class`` (the bug catalogue plants its bugs so)."""
    return Implementation(machine="proxy", name=name, make_replica=lambda replica_id, clock: Proxies(proxy_class),
                          level="exact", description=f"{proxy_class.__name__} of implementations.transport.proxy")


UDP_LOOPBACK = register(
    Implementation(
        machine="proxy",
        name="udp-loopback",
        make_replica=lambda replica_id, clock: Proxies(),
        level="exact",
        description="implementations.transport.proxy.FaultProxy and its control endpoint, UDP and TCP on "
                    "127.0.0.1, in process, on a mock clock",
    )
)
