"""Running code in a trio loop that lives in a thread of its own, from the machine's thread.

The in-process networked machines (``proxy``, ``driver``) keep one trio loop per example in a
daemon thread, since an endpoint's or a proxy's sockets and tasks outlive the step that opened
them. A step hands the loop a function with ``call_in_loop`` and waits for its result.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

#: Real seconds every task must stay blocked, with nothing readable, for a loop to count as quiet.
#: None needed: a datagram sent on loopback is readable at its receiver when ``sendto`` returns, so
#: the poll trio makes before it calls the loop idle sees it (0.2 ms here made the driver machine's
#: run 3 times slower in wall time and found nothing more).
CUSHION_SECONDS = 0.0


def call_in_loop(token: trio.lowlevel.TrioToken, nursery: trio.Nursery, function: Callable[[], Any], what: str,
                 seconds: float, loop: str = "the loop") -> Any:
    """``function()`` (awaited if it returns an awaitable) as a task of ``nursery`` in the loop of
    ``token``; its result, or its exception raised here. An ``AssertionError`` naming ``what`` if the loop
    has ended or does not answer within ``seconds`` of real time."""
    box: dict[str, Any] = {}
    done = threading.Event()

    async def task() -> None:
        try:
            value = function()
            if hasattr(value, "__await__"):
                value = await value
            box["value"] = value
        except Exception as error:
            box["error"] = error
        finally:
            done.set()

    try:
        token.run_sync_soon(nursery.start_soon, task)
    except trio.RunFinishedError:
        raise AssertionError(f"{what}: {loop} has ended") from None
    if not done.wait(seconds):
        raise AssertionError(f"{what}: {loop} did not answer within {seconds} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


async def run_timers(clock: trio.testing.MockClock, horizon: float, max_jumps: int, what: str,
                     until: float | None = None, done: Callable[[], bool] | None = None) -> None:
    """In a loop on the mock ``clock``: run its timers, jumping the clock to each, until the loop is quiet
    (every task blocked, nothing readable, no timer due within ``horizon`` seconds), or, with ``until``,
    until the clock reaches it and the loop is quiet there, or, with ``done``, until the loop is blocked
    with ``done()`` true (every timer run however far, and none set while it is false an error); an
    ``AssertionError`` naming ``what`` after ``max_jumps`` jumps."""
    for _ in range(max_jumps):
        await trio.testing.wait_all_tasks_blocked(CUSHION_SECONDS)
        now = trio.current_time()
        gap = trio.lowlevel.current_statistics().seconds_to_next_deadline
        if done is not None:
            if done():
                return
            if math.isinf(gap):
                raise AssertionError(f"{what}: every task waits and no timer is set")
            clock.jump(max(gap, 0.0))
        elif until is not None and now + gap > until:
            if now >= until:
                return
            clock.jump(until - now)
        elif until is None and gap > horizon:
            return
        else:
            clock.jump(max(gap, 0.0))
    raise AssertionError(f"{what}: the loop was not quiet after {max_jumps} jumps of its clock")


class MockLoop:
    """A trio loop on a ``MockClock``, in a daemon thread of its own, for the length of one example.

    ``setup(stack)`` (a subclass's) opens what the example keeps open in the loop before it serves
    calls; ``call(function, what)`` runs ``function()`` in the loop; ``settle(what)`` runs the loop's
    timers until it is quiet (``run_timers``: nothing due within ``HORIZON_SECONDS``, the transport's
    own timers); ``advance(seconds, what)`` moves the clock on, timer by timer, then settles; ``stop()``
    ends the loop, cancelling its tasks and leaving ``setup``'s stack. Every wait is bounded in real
    time (``CALL_SECONDS``)."""

    CALL_SECONDS = 10.0
    #: Timers due within this many seconds are the transport's own (pacing, the acknowledgement delay).
    HORIZON_SECONDS = 0.01
    #: The most clock jumps one settle makes before it calls the loop stuck.
    MAX_JUMPS = 5_000
    thread_name = "machine trio loop"

    def __init__(self) -> None:
        self.clock = trio.testing.MockClock()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._loop_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(self.CALL_SECONDS) or self._token is None:
            self.stop()
            raise RuntimeError(f"{self.thread_name} did not start within {self.CALL_SECONDS} s: {self._loop_error!r}")

    async def setup(self, stack: contextlib.AsyncExitStack) -> None:
        """Open what the example keeps open (left when the loop ends)."""

    def _run(self) -> None:
        async def main() -> None:
            async with contextlib.AsyncExitStack() as stack:
                await self.setup(stack)
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

    def call(self, function: Callable[[], Any], what: str) -> Any:
        if self._finished.is_set():
            raise AssertionError(f"{what}: the loop has ended ({self._loop_error!r})")
        assert self._token is not None and self._nursery is not None
        try:
            return call_in_loop(self._token, self._nursery, function, what, self.CALL_SECONDS)
        except AssertionError as error:
            frame = sys._current_frames().get(self._thread.ident)
            if "did not answer" not in str(error) or frame is None:
                raise
            where = "".join(traceback.format_stack(frame)[-8:])
            raise AssertionError(f"{error}; the loop's thread is at:\n{where}") from None

    def settle(self, what: str) -> None:
        self.call(lambda: run_timers(self.clock, self.HORIZON_SECONDS, self.MAX_JUMPS, what), what)

    def advance(self, seconds: float, what: str) -> None:
        async def go() -> None:
            until = trio.current_time() + seconds
            await run_timers(self.clock, self.HORIZON_SECONDS, self.MAX_JUMPS, what, until=until)
            await run_timers(self.clock, self.HORIZON_SECONDS, self.MAX_JUMPS, what)

        self.call(go, what)

    def stop(self) -> None:
        if self._token is not None and self._nursery is not None and not self._finished.is_set():
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
        self._thread.join(self.CALL_SECONDS)
