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

import io
import json
from collections.abc import Callable
from pathlib import Path

import trio
import trio.testing

from harness import Implementation, register
from implementations.transport import node_host, toy
from machines.adapters.loop_thread import MockLoop


class NodeLoop(MockLoop):
    """A trio loop on a mock clock, in a thread, running the nodes of one example."""

    thread_name = "node-host-machine trio loop"

    def __init__(self, program: Callable[[], node_host.NodeProgram]) -> None:
        self.program = program
        self.ended: dict[str, str] = {}  # name -> "shutdown", "killed" or the exception its run_node ended with
        self.running: set[str] = set()
        self.scopes: dict[str, trio.CancelScope] = {}
        super().__init__()

    def start(self, name: str, data_dir: Path, port: int = 0) -> dict:
        """Run ``name``'s node on ``data_dir`` (QUIC ``port``, 0: any) and return its ready line, read as JSON."""
        assert name not in self.running, f"{name} runs already"
        ready = io.StringIO()

        async def node() -> None:
            try:
                with trio.CancelScope() as self.scopes[name]:
                    await node_host.run_node(self.program(), data_dir, port, ready)
                self.ended[name] = "killed" if self.scopes[name].cancelled_caught else "shutdown"
            except Exception as error:  # the machine says whether it is the end expected
                self.ended[name] = f"{type(error).__name__}: {error}"
            finally:
                self.running.discard(name)

        async def begin() -> str:
            assert self._nursery is not None
            self.ended.pop(name, None)
            self.running.add(name)
            self._nursery.start_soon(node)
            for _ in range(self.MAX_JUMPS):
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

    def kill(self, name: str) -> None:
        """End ``name``'s node at once: its ``run_node`` cancelled where it waits (``ended[name]``: "killed")."""
        assert name in self.running, f"{name} does not run"
        self.call(self.scopes[name].cancel, f"killing {name}'s node")
        self.settle(f"{name}'s node ending")
        assert name not in self.running, f"{name}'s node still runs after its kill"


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
