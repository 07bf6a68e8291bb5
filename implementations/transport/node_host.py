"""One node process: a sans-I/O core on a QUIC endpoint, a control endpoint, metrics over HTTP.

A node program is a ``NodeProgram``: how to make its core from the node's identity and data
directory, and the operations the control endpoint may run on it. ``run_node`` does the
rest, the same for every core:

* loads (or makes, at the first start) the node identity and TLS certificate stored in the
  data directory, so a restart on the same directory is the same node to its peers;
* opens the QUIC endpoint (``--port``, or a free one), the metrics server and the control
  endpoint, all on 127.0.0.1;
* runs the core with ``CoreDriver``;
* prints one line, ``{"ready": true, "pid": ..., "quic": ..., "control": ..., "metrics": ...,
  "address": {...}}``, on standard output (nothing else is ever written there), then serves
  until a ``shutdown`` request, SIGTERM or SIGINT, or until its parent process is gone.

Control operations (``control`` protocol), besides ``shutdown``:

* ``status``: pid, ports, this node's address (to give its peers), the peers online;
* ``peers``: ``{"peers": {peer id hex: address}}`` replaces the directory of where peers listen;
* ``op``: ``{"name": ..., "args": {...}}`` runs the program's operation ``name(core, now, **args)``,
  which returns ``(JSON value, outgoing)``; the outgoing messages are sent;
* ``metrics``: every metric sample; ``transport``: the endpoint's and driver's counters.

Leaving closes every connection with a reason, stops every task and closes every socket.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from implementations.transport import tls
from implementations.transport.control import serve_control
from implementations.transport.driver import NS_PER_SECOND, CoreDriver
from implementations.transport.endpoint import PeerAddress, open_endpoint
from implementations.transport.identity import Ed25519Identity, Identity
from implementations.transport.metrics import NodeMetrics
from implementations.transport.process import watch_parent


@dataclass
class NodeProgram:
    """What a node program plugs into ``run_node``."""

    make_core: Callable[[Identity, Path], Any]
    operations: dict[str, Callable[..., tuple[Any, list]]] = field(default_factory=dict)
    tick_period_ns: int = NS_PER_SECOND
    #: The node identity kept in the data directory (the node core's own, e.g. ML-DSA-65, fits).
    load_identity: Callable[[Path], Identity] = Ed25519Identity.load_or_create
    #: The identity public key of a peer as the core names it (identity: the core names peers by key).
    public_key_of: Callable[[Any], bytes] = lambda peer: peer
    #: Called once with ``(core, driver)`` before the node serves: a core that keeps its peers'
    #: addresses and keys in its own files hands them to the driver here (e.g. after a restart).
    attach: Callable[[Any, CoreDriver], None] | None = None


async def run_node(program: NodeProgram, data_dir: Path, port: int = 0, ready=sys.stdout) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    identity = program.load_identity(data_dir)
    certificate = tls.load_or_create(data_dir)
    metrics = NodeMetrics()
    with metrics.serve() as metrics_port:
        async with open_endpoint(identity, certificate, port=port) as endpoint, trio.open_nursery() as nursery:
            core = program.make_core(identity, data_dir)
            driver = CoreDriver(
                core, endpoint, tick_period_ns=program.tick_period_ns, public_key_of=program.public_key_of, metrics=metrics
            )
            if program.attach is not None:
                program.attach(core, driver)

            def status() -> dict:
                return {
                    "pid": os.getpid(),
                    "quic": endpoint.address[1],
                    "metrics": metrics_port,
                    "address": endpoint.peer_address().to_json(),
                    "peers_online": sorted(key.hex() for key in endpoint.peers()),
                }

            def peers(peers: dict) -> int:
                if not isinstance(peers, dict):  # (an AttributeError would get past the control endpoint's refusals)
                    raise TypeError(f"peers is an object of peer id hex -> address, got {type(peers).__name__}")
                directory = {bytes.fromhex(key): PeerAddress.from_json(value) for key, value in peers.items()}
                driver.directory = directory
                return len(directory)

            def op(name: str, args: dict | None = None) -> Any:
                operation = program.operations.get(name)
                if operation is None:
                    raise KeyError(f"no operation {name!r}; known: {sorted(program.operations)}")
                return driver.apply(lambda core, now: operation(core, now, **(args or {})))

            handlers = {
                "status": status,
                "peers": peers,
                "op": op,
                "metrics": metrics.snapshot,
                "transport": lambda: {**endpoint.stats, **{f"driver_{k}": v for k, v in driver.stats.items()}},
            }
            nursery.start_soon(driver.run)
            control_port = await nursery.start(serve_control, handlers, nursery.cancel_scope.cancel)
            nursery.start_soon(watch_parent, nursery.cancel_scope)
            if threading.current_thread() is threading.main_thread():  # signals reach the main thread only:
                nursery.start_soon(_stop_on_signal, nursery.cancel_scope)  # a node run in another stops by shutdown
            print(json.dumps({"ready": True, **status(), "control": control_port}), file=ready, flush=True)


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


def main(program: NodeProgram, argv: list[str] | None = None, prog: str = "node") -> int:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--data", required=True, type=Path, help="the node's directory (identity, certificate, files)")
    parser.add_argument("--port", type=int, default=0, help="QUIC port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args(argv)
    trio.run(run_node, program, args.data, args.port)
    return 0
