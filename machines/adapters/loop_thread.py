"""Running code in a trio loop that lives in a thread of its own, from the machine's thread.

The in-process networked machines (``proxy``, ``driver``) keep one trio loop per example in a
daemon thread, since an endpoint's or a proxy's sockets and tasks outlive the step that opened
them. A step hands the loop a function with ``call_in_loop`` and waits for its result.
"""

from __future__ import annotations

import threading
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
                     until: float | None = None) -> None:
    """In a loop on the mock ``clock``: run its timers, jumping the clock to each, until the loop is quiet
    (every task blocked, nothing readable, no timer due within ``horizon`` seconds), or, with ``until``,
    until the clock reaches it and the loop is quiet there; an ``AssertionError`` naming ``what`` after
    ``max_jumps`` jumps."""
    for _ in range(max_jumps):
        await trio.testing.wait_all_tasks_blocked(CUSHION_SECONDS)
        now = trio.current_time()
        gap = trio.lowlevel.current_statistics().seconds_to_next_deadline
        if until is not None and now + gap > until:
            if now >= until:
                return
            clock.jump(until - now)
        elif until is None and gap > horizon:
            return
        else:
            clock.jump(max(gap, 0.0))
    raise AssertionError(f"{what}: the loop was not quiet after {max_jumps} jumps of its clock")

