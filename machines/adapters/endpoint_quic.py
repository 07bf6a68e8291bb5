"""Adapter: real QUIC endpoints of ``implementations.transport.endpoint`` on 127.0.0.1, in this
process, for the ``endpoint`` machine.

``make_replica(replica_id, clock)`` returns a ``Loopback``: one trio loop running in a thread of
its own for the length of one example, in which every endpoint of the example lives (an endpoint's
tasks and socket must outlive the step that opened it, and a machine's steps are synchronous).
``loopback.call(async_fn, seconds, what)`` runs ``async_fn()`` in that loop and returns its result
once it has finished, within ``seconds`` (trio's ``fail_after``; past it an ``AssertionError``
naming ``what``); a loop too wedged to answer at all is caught by a wait on this side, a few
seconds longer. ``open(node, identity, certificate, port)`` opens an endpoint that stays open until
``close(node)``; an endpoint whose tasks crashed is recorded in ``crashed``. ``stop()`` closes every
endpoint and ends the loop and its thread (bounded).

While a loop runs, ``limits.UNANSWERED_SECONDS`` is held at ``UNANSWERED_HELD_SECONDS``, past any
step's wait: every peer of the machine is alive, and the machine does not model a connection given
up on a silent peer (realnet does), so a host slow enough to leave a 1 MiB message unacknowledged
for 3 s must not decide a step. (Under mutmut's recording it did: "peer silent for
UNANSWERED_SECONDS (3.0 s) with data unacknowledged", a run that replayed clean; a loaded host
could too.)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from harness import Implementation, register
from implementations import limits
from implementations.transport import tls
from implementations.transport.endpoint import Endpoint, open_endpoint
from implementations.transport.identity import Ed25519Identity

#: How much longer than a call's own bound this side waits for the loop to answer at all.
GRACE_SECONDS = 5.0
#: ``limits.UNANSWERED_SECONDS`` while a loop runs (see the module): past every step's wait.
UNANSWERED_HELD_SECONDS = 60.0


class Loopback:
    """A trio loop in a thread, and the endpoints open in it (see the module)."""

    def __init__(self) -> None:
        self.endpoints: dict[int, Endpoint] = {}
        self.crashed: dict[int, str] = {}
        self._held: dict[int, tuple[trio.Event, trio.Event]] = {}
        self._calls: set[trio.CancelScope] = set()  # the calls under way: a crash cancels them
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._loop_error: BaseException | None = None
        self._unanswered = limits.UNANSWERED_SECONDS
        limits.UNANSWERED_SECONDS = UNANSWERED_HELD_SECONDS
        self._thread = threading.Thread(target=self._run, name="endpoint-machine trio loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(GRACE_SECONDS) or self._token is None:
            limits.UNANSWERED_SECONDS = self._unanswered
            raise RuntimeError(f"the trio loop did not start within {GRACE_SECONDS} s: {self._loop_error!r}")

    def _run(self) -> None:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._token = trio.lowlevel.current_trio_token()
                self._ready.set()
                await trio.sleep_forever()

        try:
            trio.run(main)
        except BaseException as error:
            self._loop_error = error
        finally:
            self._ready.set()

    # --- identities and certificates ------------------------------------------------------

    def identity(self, seed: bytes) -> Ed25519Identity:
        return Ed25519Identity(seed)

    def certificate(self, directory) -> tls.NodeCertificate:
        return tls.load_or_create(directory)

    # --- running code in the loop ---------------------------------------------------------

    def call(self, async_fn: Callable[[], Awaitable[Any]], seconds: float, what: str) -> Any:
        """``await async_fn()`` in the loop, bounded by ``seconds`` (see the module)."""
        if self._loop_error is not None or not self._thread.is_alive():
            raise AssertionError(f"{what}: the trio loop has ended ({self._loop_error!r})")
        box: dict[str, Any] = {}
        done = threading.Event()

        async def task() -> None:
            try:
                with trio.CancelScope() as scope:
                    self._calls.add(scope)
                    with trio.fail_after(seconds):
                        box["value"] = await async_fn()
                if scope.cancelled_caught:
                    box["error"] = AssertionError(f"{what}: an endpoint crashed meanwhile: {self.crashed}")
            except trio.TooSlowError:
                box["error"] = AssertionError(f"{what}: did not happen within {seconds} s")
            except Exception as error:
                box["error"] = error
            finally:
                self._calls.discard(scope)
                done.set()

        assert self._token is not None and self._nursery is not None
        self._token.run_sync_soon(self._nursery.start_soon, task)
        if not done.wait(seconds + GRACE_SECONDS):
            raise AssertionError(f"{what}: the trio loop did not answer within {seconds + GRACE_SECONDS} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    # --- endpoints ------------------------------------------------------------------------

    def open(self, node: int, identity, certificate: tls.NodeCertificate, port: int = 0) -> Endpoint:
        """An endpoint for ``node`` on 127.0.0.1:``port`` (0: any), open until ``close(node)``."""
        assert node not in self.endpoints, f"node {node} is open already"

        async def start() -> Endpoint:
            assert self._nursery is not None
            return await self._nursery.start(self._hold, node, identity, certificate, port)

        endpoint = self.call(start, 5.0, f"opening node {node}'s endpoint")
        self.endpoints[node] = endpoint
        return endpoint

    async def _hold(self, node: int, identity, certificate, port: int, task_status=trio.TASK_STATUS_IGNORED) -> None:
        leave, left = trio.Event(), trio.Event()
        self._held[node] = (leave, left)
        try:
            async with open_endpoint(identity, certificate, port=port) as endpoint:
                task_status.started(endpoint)
                await leave.wait()
        except Exception as error:
            self.crashed[node] = f"{type(error).__name__}: {error}"
            for scope in list(self._calls):  # what waits for this endpoint would wait in vain
                scope.cancel()
        finally:
            left.set()

    def close(self, node: int, reason: str | None = None) -> None:
        """Close ``node``'s endpoint (``Endpoint.close(reason)``, or leaving ``open_endpoint``)."""
        endpoint = self.endpoints.pop(node)
        leave, left = self._held.pop(node)

        async def shut() -> None:
            if reason is not None:
                endpoint.close(reason)
            leave.set()
            await left.wait()

        self.call(shut, 5.0, f"closing node {node}'s endpoint")

    def stop(self) -> None:
        """Close every endpoint and end the loop (bounded); leaves no thread behind unless wedged."""
        try:
            for node in list(self.endpoints):
                with contextlib.suppress(AssertionError):
                    self.close(node)
        finally:
            if self._token is not None and self._nursery is not None and self._thread.is_alive():
                with contextlib.suppress(trio.RunFinishedError):
                    self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
            self._thread.join(GRACE_SECONDS)
            limits.UNANSWERED_SECONDS = self._unanswered


def implementation_with(name: str) -> Implementation:
    """A ``quic-loopback`` implementation under another name (the bug catalogue plants its bugs by
    patching the transport's modules while it runs)."""
    return Implementation(machine="endpoint", name=name, make_replica=lambda replica_id, clock: Loopback(),
                          level="exact", description="implementations.transport.endpoint, patched")


QUIC_LOOPBACK = register(
    Implementation(
        machine="endpoint",
        name="quic-loopback",
        make_replica=lambda replica_id, clock: Loopback(),
        level="exact",
        description="implementations.transport.endpoint: aioquic driven by trio over UDP on 127.0.0.1, in process",
    )
)
