"""Node programs as a node process runs them (``implementations.transport.node_host.run_node``), driven
through their control endpoints as an operator or realnet drives them: in process, on a mock clock.

Why a machine of its own: ``node_host`` is what turns a core into a node (its identity and certificate
kept in the data directory, the QUIC endpoint, the metrics server, the control endpoint and its
operations ``status``, ``peers``, ``op``, ``metrics``, ``transport`` and ``shutdown``), and realnet,
which runs it in node processes, asks it only what its scenarios need, at minutes a mutant.

**Set-up.** Three nodes ``a``, ``b``, ``c`` of the toy counter program
(``implementations.transport.toy``: each counts its own increments, gossips its counts to its peers
when they change and at every 200 ms tick, and keeps them in a SQLite file), each on a data directory
of the example's, run in one trio loop on a mock clock (``machines.adapters.node_host_loop``).

**Rules.** ``introduce``: a node is given 0-2 peers, their addresses by ``peers`` and their keys by the
program's ``set_peers`` operation. ``increment``: the ``increment`` operation, by 1, 2 or 5.
``advance``: the clock moves 0.25 s or 1 s (every node ticks at least once). ``restart``: a node is
asked to ``shutdown`` and started again on its data directory and QUIC port. ``mistake``: a request
no node takes (``MISTAKES``: an operation it does not have, an increment of nothing, of a boolean or
of a string, peers that are no mapping, a key that is no hex, an address whose port is a string, args
that are no object), answered with an error naming it.

**The model** (this module's bookkeeping; it imports nothing of the transport but names):

* each node knows a count per node (its own, and the greatest it heard of each other's); a change
  (an increment, new peers) sends the changer's counts to its running peers at once, and every tick
  sends a node's counts to its running peers again; a receiver keeps the greater of each;
* so right after a change every node knows at least what those sends gave it, and after the clock
  has moved a tick or more, exactly the closure: what any running chain of peers brings it;
* a node's value is the sum of the counts it knows; ``increment`` answers the value after it;
* a restart keeps the counts (the SQLite file) and the identity and certificate (the data directory),
  so the node has the same key and address; it forgets its peers until it is introduced again;
* ``status`` names the node's pid, its QUIC and metrics ports, its address (127.0.0.1, its port, its
  key) and the peers it has an open connection with: those it exchanged counts with since both last
  started; ``transport`` counts no message for an unknown peer and none refused; ``metrics`` counts
  no refusal, and gossip handled exactly when a peer's counts reached the node since it started (the
  program's core reports to the node's sink);
* a mistake is answered ``ok: false`` with an error naming it, and changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, guard
from harness.machine import Observation
from harness.network import network_machine_test
from implementations.transport.control import ControlClient, ControlError

NODES = ("a", "b", "c")
BYS = (1, 2, 5)
ADVANCES = (0.25, 1.0)
#: A request no node takes, with words its error must hold.
MISTAKES = {
    "unknown-op": ({"name": "explode"}, "op", "no operation 'explode'; known: ['increment', 'set_peers', 'value']"),
    "increment-by-zero": ({"name": "increment", "args": {"by": 0}}, "op", "increment by 0: must be a positive int"),
    "increment-by-a-bool": ({"name": "increment", "args": {"by": True}}, "op", "increment by True: must be a positive int"),
    "increment-by-a-string": ({"name": "increment", "args": {"by": "2"}}, "op", "increment by '2': must be a positive int"),
    "op-args-not-an-object": ({"name": "value", "args": [1]}, "op", "op: TypeError"),
    "peers-not-a-mapping": ({"peers": [["00", {}]]}, "peers",
                            "peers: TypeError: peers is an object of peer id hex -> address, got list"),
    "peers-key-not-hex": ({"peers": {"zz": {}}}, "peers", "peers: ValueError"),
    "peers-port-a-string": (None, "peers", "peers: ValueError: not a peer address"),
}


def merge(into: dict, counts: dict) -> bool:
    """``into`` keeps the greater count of each node of ``counts`` (a receiver's merge); whether it grew."""
    grew = False
    for node, count in counts.items():
        if count > into.get(node, 0):
            into[node], grew = count, True
    return grew


@attrs.define
class Node:
    data: Path
    running: bool = True
    port: int = 0  # its QUIC port, kept across restarts
    key: str = ""
    address: dict = attrs.Factory(dict)
    peers: set = attrs.Factory(set)
    knows: dict = attrs.Factory(dict)  # node -> the greatest count of it this node knows
    heard: bool = False  # a peer's counts reached it since it started (its gossip metric counts them)
    client: ControlClient | None = None


class NodeHostMachine(TracedMachine):
    name = "node_host"
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", "introduce": "operations", "increment": "operations",
                                              "advance": "time", "restart": "crash", "mistake": "adversary"}
    class_floors: ClassVar[dict[str, float]] = {"time": 0.1, "operations": 0.25}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.loop = None
        self.directory: tempfile.TemporaryDirectory | None = None
        self.nodes: dict[str, Node] = {}
        self.connected: set[frozenset] = set()
        self.settled = True  # the clock has moved a tick since the last change

    def teardown(self) -> None:
        for node in self.nodes.values():
            if node.client is not None:
                node.client.close()
        if self.loop is not None:
            self.loop.stop()
        if self.directory is not None:
            self.directory.cleanup()
        self.loop = self.directory = None

    # --- set-up -------------------------------------------------------------------------------

    @initialize()
    def start(self):
        self.do("start")

    def step_start(self) -> None:
        self.require(self.loop is None, "started already")
        self.directory = tempfile.TemporaryDirectory(prefix="mbt-node-host-")
        self.loop = self.implementation.make_replica(0, None).open()
        for name in NODES:
            self.nodes[name] = Node(Path(self.directory.name) / name)
            self.run(name)
        self.loop.settle("starting the nodes")

    def run(self, name: str) -> None:
        """Start ``name``'s node on its data directory (and its QUIC port, after the first start)."""
        node = self.nodes[name]
        ready = self.loop.start(name, node.data, node.port)
        assert set(ready) == {"ready", "pid", "quic", "metrics", "address", "peers_online", "control"} and ready[
            "ready"] is True, f"{name}'s ready line is {ready}"
        address = ready["address"]
        assert address["host"] == "127.0.0.1" and address["port"] == ready["quic"], (
            f"{name}'s ready line gives the address {address} for QUIC port {ready['quic']}")
        if node.key:
            assert address["public_key"] == node.key, f"{name} restarted on its data directory with another key"
            assert ready["quic"] == node.port, f"{name} restarted on another QUIC port than the one it was given"
            assert address["certificate"] == node.address["certificate"], f"{name} restarted with another certificate"
        node.key, node.port, node.address, node.running = address["public_key"], ready["quic"], address, True
        node.heard = False  # its metrics are its process's, made at each start
        assert ready["peers_online"] == [], f"{name} starts with peers online: {ready['peers_online']}"
        node.client = ControlClient(ready["control"])
        node.knows.setdefault(name, 0)

    # --- the model's gossip ---------------------------------------------------------------------

    def send(self, name: str) -> None:
        """``name`` sends its counts to its running peers (an exchange: the two are connected)."""
        node = self.nodes[name]
        for peer in node.peers:
            other = self.nodes[peer]
            if other.running:
                merge(other.knows, node.knows)
                other.heard = True
                self.connected.add(frozenset((name, peer)))

    def closed_knows(self) -> dict[str, dict]:
        """What each node knows once every running node has sent to its running peers until nothing changes."""
        knows = {name: dict(node.knows) for name, node in self.nodes.items()}
        changed = True
        while changed:
            changed = False
            for name, node in self.nodes.items():
                for peer in node.peers:
                    if node.running and self.nodes[peer].running:
                        changed |= merge(knows[peer], knows[name])
        return knows

    def closure(self) -> None:
        """What ticks do when the clock moves: every running node sends to its running peers, until
        nothing changes."""
        for name, node in self.nodes.items():
            if node.running:
                self.send(name)
        for name, knows in self.closed_knows().items():
            self.nodes[name].knows = knows

    def op(self, name: str, operation: str, **args):
        node = self.nodes[name]
        assert node.client is not None
        return node.client.call("op", name=operation, args=args)

    # --- rules --------------------------------------------------------------------------------

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from(NODES), peers=st.sets(st.sampled_from(NODES), max_size=2))
    def introduce(self, node, peers):
        self.do("introduce", node=node, peers=sorted(peers - {node}))

    def step_introduce(self, node: str, peers: list[str]) -> None:
        self.require(node in NODES and set(peers) <= set(NODES) - {node} and self.nodes[node].running,
                     f"introduce {peers} to {node}")
        target = self.nodes[node]
        directory = {self.nodes[p].key: self.nodes[p].address for p in peers}
        assert target.client.call("peers", peers=directory) == len(peers), f"{node}'s peers answered otherwise"
        assert self.op(node, "set_peers", keys=[self.nodes[p].key for p in peers]) == len(peers)
        target.peers = set(peers)
        self.send(node)
        self.settled = False
        self.loop.settle(f"{node} introduced to {peers}")

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from(NODES), by=st.sampled_from(BYS))
    def increment(self, node, by):
        self.do("increment", node=node, by=by)

    def step_increment(self, node: str, by: int) -> None:
        self.require(node in NODES and by in BYS and self.nodes[node].running, f"increment {node} by {by}")
        target = self.nodes[node]
        lower = sum(target.knows.values()) + by
        target.knows[node] += by
        got = self.op(node, "increment", by=by)
        self.send(node)
        self.settled = False
        self.loop.settle(f"{node}'s increment")
        upper = self.closure_value(node)
        assert lower <= got <= upper, f"{node}'s increment by {by} answered {got}; the model says {lower} to {upper}"

    def closure_value(self, name: str) -> int:
        """The most ``name`` can know now: its counts once every running node has sent until nothing changes."""
        return sum(self.closed_knows()[name].values())

    @guard(lambda self: self.loop is not None)
    @rule(seconds=st.sampled_from(ADVANCES))
    def advance(self, seconds):
        self.do("advance", seconds=seconds)

    def step_advance(self, seconds: float) -> None:
        self.require(seconds in ADVANCES, f"advance {seconds}")
        self.loop.advance(seconds, f"the clock moving {seconds} s")
        self.closure()
        self.settled = True

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from(NODES))
    def restart(self, node):
        self.do("restart", node=node)

    def step_restart(self, node: str) -> None:
        self.require(node in NODES and self.nodes[node].running, f"restart {node}")
        target = self.nodes[node]
        assert target.client.call("shutdown") == "shutting down", f"{node}'s shutdown answered otherwise"
        target.client.close()
        target.running, target.client = False, None
        self.loop.settle(f"{node} shutting down")
        assert self.loop.ended.get(node) == "shutdown", f"{node}'s node ended with {self.loop.ended.get(node)!r}"
        self.connected = {pair for pair in self.connected if node not in pair}
        target.peers = set()
        self.run(node)
        self.settled = False
        self.loop.settle(f"{node} started again")

    @guard(lambda self: self.loop is not None)
    @rule(node=st.sampled_from(NODES), how=st.sampled_from(sorted(MISTAKES)))
    def mistake(self, node, how):
        self.do("mistake", node=node, how=how)

    def step_mistake(self, node: str, how: str) -> None:
        self.require(node in NODES and how in MISTAKES and self.nodes[node].running, f"mistake {how} on {node}")
        args, op, words = MISTAKES[how]
        if args is None:  # an address whose port is a string
            other = next(p for p in NODES if p != node)
            args = {"peers": {self.nodes[other].key: {**self.nodes[other].address, "port": str(self.nodes[other].port)}}}
        try:
            got = self.nodes[node].client.call(op, **args)
        except ControlError as error:
            assert words in str(error), f"{how} on {node}: refused with {str(error)!r}, not naming {words!r}"
        else:
            raise AssertionError(f"{how} on {node}: taken, answered {got!r}")
        self.loop.settle(f"{how} on {node}")

    # --- what must hold -------------------------------------------------------------------------

    def check(self) -> None:
        if self.loop is None:
            return
        for name, node in self.nodes.items():
            assert (name in self.loop.running) == node.running, (
                f"{name}'s node {'runs' if name in self.loop.running else 'ended: ' + str(self.loop.ended.get(name))}; "
                f"the model says it {'runs' if node.running else 'is down'}")
            if not node.running:
                continue
            value = self.op(name, "value")
            lower, upper = sum(node.knows.values()), self.closure_value(name)
            if self.settled:
                assert value == upper, f"{name}'s value is {value}; the model says {upper}"
            else:
                assert lower <= value <= upper, f"{name}'s value is {value}; the model says {lower} to {upper}"
            self.check_status(name, node)

    def check_status(self, name: str, node: Node) -> None:
        status = node.client.call("status")
        assert status["pid"] == os.getpid() and status["quic"] == node.port and status["address"] == node.address, (
            f"{name}'s status is {status}")
        online = set(status["peers_online"])
        keys = {self.nodes[p].key: p for p in NODES}
        expected = {p for p in NODES if frozenset((name, p)) in self.connected}
        got = {keys.get(key, key[:16]) for key in online}
        if self.settled:
            assert got == expected, f"{name} has peers online {sorted(got)}; the model says {sorted(expected)}"
        else:
            edges = {p for p in NODES if self.nodes[p].running and (p in node.peers or name in self.nodes[p].peers)}
            assert got <= expected | edges, f"{name} has peers online {sorted(got)}; the model says {sorted(expected)}"
        transport = node.client.call("transport")
        assert transport.get("driver_unknown_peer", 0) == 0 and transport.get("driver_refused", 0) == 0, (
            f"{name}'s transport counts {transport}")
        metrics = node.client.call("metrics")
        assert metrics.get("mbt_messages_refused_total") == 0, f"{name}'s metrics count refusals: {metrics}"
        gossip = metrics.get("mbt_gossip_messages_total{kind=counts}", 0)
        if node.heard or self.settled:  # (before the clock moves, a tick may have come early)
            assert (gossip > 0) == node.heard, (
                f"{name}'s mbt_gossip_messages_total{{kind=counts}} is {gossip}; the model says it "
                f"{'heard' if node.heard else 'did not hear'} a peer's counts since it started")

    def observe(self) -> list[Observation]:
        if self.loop is None:
            return []
        out = []
        for name, node in self.nodes.items():
            if node.running and node.client is not None:
                try:
                    got = self.op(name, "value")
                except ControlError as error:
                    got = str(error)
                out.append(Observation(f"{name}'s value", self.closure_value(name) if self.settled else
                                       f"{sum(node.knows.values())}..{self.closure_value(name)}", got,
                                       acceptable=None if self.settled else isinstance(got, int)))
        return out


test_node_host_machine = network_machine_test(NodeHostMachine, examples=25, steps=20)
