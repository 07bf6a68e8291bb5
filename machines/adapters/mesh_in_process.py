"""Adapter: the realnet machine's mesh in this process, in one trio loop on a mock clock ("in-process").

The realnet machine asks its backend for a cluster: mesh nodes (``implementations.transport.mesh_node``) joined
into one mesh and one signing group behind a fault proxy. ``node_processes`` gives it OS processes on the real
clock. This backend gives it the same programs in one trio loop of this process on a ``MockClock``
(``machines.adapters.node_host_loop.NodeLoop``): each node is ``node_host.run_node`` of ``mesh_node.program()``
(all a node process runs but its ``main``) on its own data directory, the proxy is ``proxy.serve``, each with its
QUIC or UDP sockets, control endpoint and metrics page on 127.0.0.1. The cluster is ``cluster.Cluster`` itself
(its ``join``, ``reset``, ``quiet``, links through the proxy, ``op``) with its processes replaced.

Why: a run of the machine costs seconds of CPU instead of the processes' real seconds, and every line the nodes
run is in this process, where a mutation run's mutants are active (``mesh_node.py``, ``node_host.run_node``,
``cluster.py``'s joining, and the node, task list and signing code as a node runs them).

What differs from processes, each said where the machine meets it:

* **Time** is the loop's clock. It moves only when the machine lets time pass (``run``: ``wait``'s sleep, an
  impostor's dial) or polls (``wait_until``: the clock moved ``POLL_SECONDS`` between two looks, the timeout in
  the clock's seconds), timer by timer (``machines.adapters.loop_thread.run_timers``); after every control
  request the loop runs what became due within the transport's own 10 ms (pacing, acknowledgement delays), so
  a step ends with what it sent delivered. Every node's driver reads one clock, ``EPOCH_NS`` plus the loop's
  time: nodes agree but for the skews ``join`` gives them, and a restarted node's clock goes on from where the
  others are (a process's wall clock does; a fresh ``TrioClock`` per start would set it back by all the mock
  time that ran ahead of the real).
* **A kill** cancels the node's ``run_node`` where it waits: its files are as a crash leaves them (what it
  acknowledged was committed before it answered), but unlike SIGKILL its endpoint and metrics server close as a
  shutdown closes them.
* **A process** is this one: a node's ``pid`` is this process's, its page's ``process_*`` metrics are this
  process's, and a node "stopped" that does not end by itself is cancelled (status -9, as the processes' SIGKILL
  after ``STOP_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import trio

from harness import Implementation, register
from implementations.transport import mesh_node, node_host
from implementations.transport.cluster import Cluster
from implementations.transport.control import ControlClient
from implementations.transport.driver import NS_PER_SECOND
from implementations.transport.proxy import serve
from machines.adapters.loop_thread import run_timers
from machines.adapters.node_host_loop import NodeLoop

#: The wall-clock time every node's clock reads when the loop's clock reads 0 (1 January 2026, 00:00 UTC).
EPOCH_NS = 1_767_225_600 * NS_PER_SECOND
#: The clock moves this much between two looks of ``wait_until`` (a node's tick period).
POLL_SECONDS = 0.1


class LoopClock:
    """What a node's driver reads as the wall clock: ``EPOCH_NS`` plus the loop's (mock) time."""

    def now(self) -> int:
        return EPOCH_NS + round(trio.current_time() * NS_PER_SECOND)


def mesh_program() -> node_host.NodeProgram:
    """``mesh_node.program()``, its driver reading ``LoopClock`` (handed over where the program attaches)."""
    program = mesh_node.program()
    attach = program.attach

    def on_the_loop_clock(core, driver) -> None:
        driver.clock = LoopClock()
        if attach is not None:
            attach(core, driver)

    program.attach = on_the_loop_clock
    return program


class MeshLoop(NodeLoop):
    """The loop of one cluster: its nodes, its proxy, and time that runs while a function does."""

    thread_name = "realnet in-process trio loop"
    CALL_SECONDS = 60.0  # an advance of 10 s of the clock runs a few thousand timers of five nodes
    MAX_JUMPS = 50_000

    def start_proxy(self, seed: int) -> dict:
        """Run ``proxy.serve(seed)`` as a task of the loop; its ready line, read as JSON."""

        async def begin() -> str:
            assert self._nursery is not None
            ready = io.StringIO()
            await self._nursery.start(functools.partial(serve, seed, ready))
            return ready.getvalue()

        return json.loads(self.call(begin, "starting the fault proxy"))

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``await function(*args)`` as a task of the loop, the clock moved timer by timer until it returns (then
        the loop settles); its result, or its exception raised here."""
        what = f"{getattr(function, '__name__', 'a function')} in the loop"

        async def go() -> Any:
            assert self._nursery is not None
            box: dict[str, Any] = {}

            async def task() -> None:
                try:
                    box["value"] = await function(*args)
                except Exception as error:
                    box["error"] = error
                finally:
                    box["done"] = True

            self._nursery.start_soon(task)
            await run_timers(self.clock, self.HORIZON_SECONDS, self.MAX_JUMPS, what, done=lambda: "done" in box)
            await run_timers(self.clock, self.HORIZON_SECONDS, self.MAX_JUMPS, what)
            if "error" in box:
                raise box["error"]
            return box.get("value")

        return self.call(go, what)


class _Controlled:
    """A task of the loop the cluster talks to through its control endpoint, as to a process."""

    loop: MeshLoop
    name: str
    client: ControlClient | None = None

    def call(self, request: str, **args: Any) -> Any:
        """A control request; then the loop runs what it made due within the transport's own horizon."""
        assert self.client is not None, f"{self.name} was never started"
        try:
            return self.client.call(request, **args)
        finally:
            self.loop.settle(f"{self.name}'s {request}")

    def close_client(self) -> None:
        if self.client is not None:
            self.client.close()


class LoopNode(_Controlled):
    """A node of the loop as the cluster sees a node process: ``ready``, ``alive``, ``call``, ``kill``, ``stop``,
    ``restart`` (on its data directory and QUIC port)."""

    def __init__(self, loop: MeshLoop, name: str, data: Path) -> None:
        self.loop, self.name, self.data = loop, name, data
        self.args = ["--data", str(data)]  # as a node process is started (the machine reads its data directory here)
        self.ready: dict[str, Any] = {}

    @property
    def alive(self) -> bool:
        return self.name in self.loop.running

    @property
    def pid(self) -> int | None:
        return os.getpid() if self.alive else None

    def start(self) -> dict:
        self.ready = self.loop.start(self.name, self.data, self.ready.get("quic", 0))
        self.client = ControlClient(self.ready["control"])
        return self.ready

    restart = start

    def kill(self) -> None:
        self.close_client()
        self.loop.kill(self.name)

    def stop(self) -> int:
        """Ask the node to shut down: 0 if it ended by itself, -9 if it had to be cancelled, 1 if it failed."""
        with contextlib.suppress(Exception):  # a node that does not answer is cancelled below
            self.call("shutdown")
        self.close_client()
        if self.alive:
            self.loop.kill(self.name)
            return -9
        return 0 if self.loop.ended.get(self.name) == "shutdown" else 1


class LoopProxy(_Controlled):
    """The fault proxy as the cluster sees its process: ``call``."""

    def __init__(self, loop: MeshLoop, seed: int) -> None:
        self.loop, self.name = loop, "the proxy"
        self.ready = loop.start_proxy(seed)
        self.client = ControlClient(self.ready["control"])


class LoopCluster(Cluster):
    """``Cluster`` whose nodes and proxy are tasks of one ``MeshLoop``."""

    loop: MeshLoop | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.loop = MeshLoop(mesh_program)
        if self.proxy_seed is not None:
            self.proxy = LoopProxy(self.loop, self.proxy_seed)
        self.pool = [LoopNode(self.loop, f"n{i}", self.directory / f"n{i}") for i in range(self.size)]
        for node in self.pool:
            node.start()
        self.join(self.skews_ms)

    def _stop_nodes(self) -> None:
        """The nodes and the proxy are the loop's tasks: their control clients closed, the loop ended."""
        for controlled in (*self.pool, self.proxy):
            if controlled is not None:
                controlled.close_client()
        if self.loop is not None:
            self.loop.stop()
            self.loop = None

    def wait_until(self, condition, timeout: float, what: str) -> float:
        """Look at ``condition()``, moving the loop's clock ``POLL_SECONDS`` between two looks; ``TimeoutError``
        naming ``what`` after ``timeout`` seconds of the clock. Returns the clock's seconds taken."""
        assert self.loop is not None
        waited = 0.0
        while not condition():
            if waited >= timeout:
                raise TimeoutError(f"{what}: not within {timeout} s of the loop's clock")
            self.loop.advance(POLL_SECONDS, what)
            waited += POLL_SECONDS
        return waited


class LoopBackend:
    """The realnet machine's backend: a cluster in a loop of this process per run."""

    current: LoopCluster | None = None
    #: Messages between up nodes on clear links arrive before a signing session expires: the clock moves only when
    #: the machine lets time pass, and every control request ends with what it sent delivered.
    timely = True

    def cluster(self, directory: str | Path, nodes: int, proxy_seed: int, skews_ms: list[int]) -> LoopCluster:
        self.current = LoopCluster(directory, nodes, proxy_seed=proxy_seed, skews_ms=skews_ms).__enter__()
        return self.current

    def release(self, cluster: LoopCluster) -> None:
        cluster.close()

    def now(self) -> float:
        """The loop's clock, in seconds."""
        assert self.current is not None and self.current.loop is not None, "no cluster, or it has been released"
        return self.current.loop.clock.current_time()

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` awaited where the cluster lives: in its loop, time running while it does."""
        assert self.current is not None and self.current.loop is not None, "no cluster, or it has been released"
        return self.current.loop.run(function, *args)

    @staticmethod
    @contextlib.contextmanager
    def pooled(directory: str | Path) -> Iterator[None]:
        """No pool: a run's loop starts its nodes in milliseconds."""
        yield


register(Implementation(
    machine="realnet",
    name="in-process",
    make_replica=lambda replica_id, clock: LoopBackend(),
    level="exact",
    description="implementations.transport.mesh_node's program run by node_host.run_node, and the fault proxy's serve, "
                "in one trio loop of this process on a mock clock: QUIC, UDP, control and metrics on 127.0.0.1",
))
