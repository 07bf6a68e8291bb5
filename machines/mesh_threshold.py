"""Threshold signing over the network: the threshold machine with its envelopes on the mesh.

Everything of ``machines.threshold`` (``models.threshold`` and ``models.policy`` against the
signer and coordinator cores, events, funds, forged answers, core crashes and restarts,
clock advances across UTC midnight), except the network: every envelope a coordinator
proposes or a signer answers travels inside a node message (``node.igra``) from the
member's node to the recipient's, on the simulated network of ``harness.network``, which
delivers, reorders, drops, duplicates, delays and partitions it (also one way). A node
hands an envelope to its core only after the node's own checks (signature, membership,
freshness, replay), so a duplicated datagram is refused by the node and never reaches the
core, and one delayed past the 300 s replay TTL is stale: for the model both are a lost
message. The threshold machine's invariants hold after every step; every message a node
handles gets the verdict ``models.gossip`` gives it.

Rules of the threshold machine that act on its in-memory network (``deliver_many``, ``settle``,
``redeliver``, ``tamper``, ``spoil``) are replaced by the network's; the attacks on the mesh are the
adversary machine's.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness.network import network_machine_test
from implementations.node import NodeConfig
from implementations.wire import DecodeError
from machines.adapters.threshold_sansio import SansIoBackend
from machines.mesh import OUTSIDER, MeshMachine
from machines.threshold import INDEX, Message, ThresholdMachine

CONFIG = NodeConfig(beacons=False, adverts=False)
#: Rules of either parent that make no sense here (see the module docstring).
REPLACED = frozenset({"deliver_many", "settle", "redeliver", "tamper", "crash", "quiesce", "tick", "interleave", "lie", "spoil"})


class Outlet:
    """Where the threshold machine puts the envelopes its cores send: collected, then
    carried by the sender's node. Empty to the machine's own network rules."""

    def __init__(self) -> None:
        self.pending: list[Message] = []

    def append(self, message: Message) -> None:
        self.pending.append(message)

    def drain(self) -> list[Message]:
        pending, self.pending = self.pending, []
        return pending

    def __bool__(self) -> bool:
        return False

    def __len__(self) -> int:
        return 0


class MeshThresholdMachine(MeshMachine, ThresholdMachine):
    name = "mesh_threshold"
    min_nodes, max_nodes = 1, 5
    node_config: ClassVar[NodeConfig] = CONFIG
    #: Each class's least share of the steps under ci: about half the least share measured against
    #: any implementation (harness.balance; the coverage table prints them): shares move when a
    #: merge reshuffles the derandomized search, or a test runs the machine with fewer examples.
    #: The adversary's share moves most: forge needs a request still alive, which its guard finds in
    #: about one draw in ten (2.2% of the steps after the threshold search's contention rules, 8.2%
    #: before): its floor is half the least measured. Keeping requests alive longer would lift it.
    class_floors: ClassVar[dict[str, float]] = {
        "operations": 0.08, "delivery": 0.05, "faults": 0.04, "time": 0.06, "adversary": 0.01, "crash": 0.08}

    # the threshold machine's own time and core restarts; its in-memory network rules go
    advance_clock = ThresholdMachine.advance_clock
    step_advance_clock = ThresholdMachine.step_advance_clock
    # (and the storage-seam faults and well-formed lies, which the threshold machine sends past the network)
    deliver_many = settle = redeliver = tamper = drop = duplicate = crash = quiesce = tick = interleave = lie = spoil = None
    # (they wait for a coordinator down since its decision: the crash rule's, not here)
    come_back_late = come_back_late_2 = come_back_late_3 = None
    # (an answer of the in-memory network at its request's expiry: here answers ride the mesh)
    deliver_at_expiry = None

    @rule(node=INDEX, role=st.sampled_from(["signer", "coordinator"]))
    def restart(self, node, role):
        """A core's process restarts (the threshold machine's crashes inside an operation are not sent here)."""
        self.do("restart", node=self._node(node), role=role)

    def step_restart(self, node: int, role: str) -> None:
        """The object is closed and a new one opened on the same file when next needed."""
        self.require(0 <= node < len(self.signers) and role in ("signer", "coordinator"), f"no {role} {node}")
        cores = self.signers if role == "signer" else self.coordinators
        if cores[node] is not None:
            cores[node].close()
            cores[node] = None  # the new object is built on the same file when next needed

    @classmethod
    def rule_names(cls) -> tuple[str, ...]:
        return tuple(name for name in super().rule_names() if name not in REPLACED)

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.outlet = Outlet()

    def step_start(self, group: str, fee_mode: str, order_seed: int) -> None:
        ThresholdMachine.step_start(self, group, fee_mode, order_seed)
        self.backend = SansIoBackend()  # the real signer and coordinator cores; the mesh is the implementation here
        self.in_flight = self.outlet
        self.start_mesh(len(self.signers), [0] * len(self.signers))
        self.check_misaddressed_envelopes()

    def check_misaddressed_envelopes(self) -> None:
        """An envelope for no member, or for a role no core has, is a caller's mistake: ``send_envelope``
        refuses it with a ``ValueError`` naming the role and the peer (its first 16 hex digits), and sends nothing."""
        node, now = self.nodes[0], self.local_now(0)
        for to, role in ((OUTSIDER, "signer"), (self.members[0], "auditor"), (OUTSIDER, "auditor")):
            want = f"an envelope goes to a member's signer or coordinator, not {role!r} of {to.hex()[:16]}"
            try:
                sent = node.send_envelope(to, role, b"envelope", now)
            except ValueError as error:
                assert str(error) == want, (
                    f"node 0 refused an envelope for {role!r} of {to.hex()[:16]} with {error}, not {want!r}")
            else:
                raise AssertionError(f"node 0 sent an envelope for {role!r} of {to.hex()[:16]}: {len(sent)} datagrams")

    def node_options(self, index: int) -> dict[str, Any]:
        return {"config": self.node_config, "envelope_sink": lambda role, data, now: self.sink(index, role, data, now)}

    def sink(self, index: int, role: str, data: bytes, now: int) -> list[tuple[bytes, str, bytes]]:
        """Node ``index`` hands its core an envelope, with the time it took it (its own clock's): the threshold
        machine's delivery, and what it sends."""
        assert now == self.local_now(index), (
            f"node {index} handed its {role} an envelope at {now!r}; the node's clock says {self.local_now(index)}")
        try:
            self._deliver(Message(role, index, data), data, expect=None)
        except DecodeError as error:  # the core refused an envelope the model expects it to take
            raise AssertionError(f"{role} {index} refused an envelope the model accepts: {error}") from None
        return [(self.members[m.target], m.role, m.data) for m in self.outlet.drain()]

    def _submit(self, node: int, event) -> None:
        super()._submit(node, event)
        for message in self.outlet.drain():
            self.send_all(node, self.nodes[node].send_envelope(self.members[message.target], message.role, message.data,
                                                               self.local_now(node)))

    def local_now(self, index: int) -> int:
        return self.clock.now()

    def teardown(self) -> None:
        MeshMachine.teardown(self)
        ThresholdMachine.teardown(self)


#: ci budget: 100 runs of 50 steps (a step may open SQLite files and sign envelopes twice).
test_mesh_threshold_machine = network_machine_test(MeshThresholdMachine, examples=100, steps=50)
