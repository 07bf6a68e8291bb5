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
