"""Adapter: node programs run by ``implementations.transport.node_host.run_node``, in this process, in
one trio loop on a mock clock, for the ``node_host`` machine.

``make_replica(replica_id, clock)`` returns a ``Hosts``; ``hosts.open()`` a ``NodeLoop``: one trio
loop in a thread of its own for the length of one example, on a ``trio.testing.MockClock``.
``start(name, data_dir, port)`` runs ``run_node`` of the toy counter program
(``implementations.transport.toy``: a grow-only counter gossiped between nodes, kept in a SQLite file
in the data directory) as a task of the loop, waits for the ready line it prints and returns it: the
node's identity, certificate, QUIC endpoint, metrics server and control endpoint are the ones a node
process has, on 127.0.0.1. The machine talks to a node through its control endpoint, as an operator
or realnet does; a ``shutdown`` request ends its ``run_node`` (``ended[name]`` says how).

``settle()`` and ``advance(seconds)`` move the loop's clock timer by timer as the driver machine's
loop does (``machines.adapters.loop_thread.run_timers``): a step ends with what it sent delivered
and acknowledged, and the counters gossip at their 200 ms ticks only when the clock is moved.
Every wait is bounded in real time; ``stop()`` ends the loop (every node left, its sockets closed).
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import trio.testing

from harness import Implementation, register
from implementations.transport import node_host, toy
from machines.adapters.loop_thread import call_in_loop, run_timers

CALL_SECONDS = 10.0
HORIZON_SECONDS = 0.01
MAX_JUMPS = 5_000


class NodeLoop:
    """A trio loop on a mock clock, in a thread, running the nodes of one example."""

    def __init__(self, program: Callable[[], node_host.NodeProgram]) -> None:
        self.program = program
        self.clock = trio.testing.MockClock()
        self.ended: dict[str, str] = {}  # name -> "shutdown" or the exception its run_node ended with
        self.running: set[str] = set()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._loop_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="node-host-machine trio loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(CALL_SECONDS) or self._token is None:
            raise RuntimeError(f"the trio loop did not start within {CALL_SECONDS} s: {self._loop_error!r}")

    def _run(self) -> None:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._token = trio.lowlevel.current_trio_token()
                self._ready.set()
                await trio.sleep_forever()

        try:
            trio.run(main, clock=self.clock)
        except BaseException as error:
            self._loop_error = error
        finally:
            self._finished.set()
            self._ready.set()

    def call(self, function: Callable[[], Any], what: str) -> Any:
        if self._finished.is_set():
            raise AssertionError(f"{what}: the loop has ended ({self._loop_error!r})")
        assert self._token is not None and self._nursery is not None
        return call_in_loop(self._token, self._nursery, function, what, CALL_SECONDS)

    def start(self, name: str, data_dir: Path, port: int = 0) -> dict:
        """Run ``name``'s node on ``data_dir`` (QUIC ``port``, 0: any) and return its ready line, read as JSON."""
        assert name not in self.running, f"{name} runs already"
        ready = io.StringIO()

        async def node() -> None:
            try:
                await node_host.run_node(self.program(), data_dir, port, ready)
                self.ended[name] = "shutdown"
            except Exception as error:  # the machine says whether it is the end expected
                self.ended[name] = f"{type(error).__name__}: {error}"
            finally:
                self.running.discard(name)

        async def begin() -> str:
            assert self._nursery is not None
            self.ended.pop(name, None)
            self.running.add(name)
            self._nursery.start_soon(node)
            for _ in range(MAX_JUMPS):
                await trio.testing.wait_all_tasks_blocked()
                if ready.getvalue() or name in self.ended:
                    return ready.getvalue()
                await trio.sleep(0)
            raise AssertionError(f"{name}'s node printed no ready line")

        line = self.call(begin, f"starting {name}'s node")
        if not line:
            raise AssertionError(f"{name}'s node ended before it was ready: {self.ended.get(name)}")
        assert line.endswith("\n") and line.count("\n") == 1, f"{name}'s ready output is {line!r}, not one line"
        return json.loads(line)

    def settle(self, what: str) -> None:
        self.call(lambda: run_timers(self.clock, HORIZON_SECONDS, MAX_JUMPS, what), what)

    def advance(self, seconds: float, what: str) -> None:
        async def go() -> None:
            await run_timers(self.clock, HORIZON_SECONDS, MAX_JUMPS, what, until=trio.current_time() + seconds)
            await run_timers(self.clock, HORIZON_SECONDS, MAX_JUMPS, what)

        self.call(go, what)

    def stop(self) -> None:
        if self._token is not None and self._nursery is not None and not self._finished.is_set():
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
        deadline = time.monotonic() + CALL_SECONDS
        self._thread.join(max(0.0, deadline - time.monotonic()))


class Hosts:
    """What the machine is handed: ``open()`` starts a loop whose nodes run ``program()``."""

    def __init__(self, program: Callable[[], node_host.NodeProgram] = toy._counter_program) -> None:
        self.program = program

    def open(self) -> NodeLoop:
        return NodeLoop(self.program)


TOY_COUNTER = register(
    Implementation(
        machine="node_host",
        name="toy-counter",
        make_replica=lambda replica_id, clock: Hosts(),
        level="exact",
        description="implementations.transport.node_host.run_node of the toy counter program, in process, on a mock "
                    "clock: QUIC, control and metrics endpoints on 127.0.0.1",
    )
)
