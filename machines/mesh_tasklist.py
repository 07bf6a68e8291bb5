"""The task-list network: ``models.tasklist`` over every operation issued, against gossiping nodes.

3 to 10 nodes (``implementations.node.Node``) each carry one replica of one task list
(the x0x ``TaskList``) on one logged topic. Agents on any node add, claim, complete,
edit, move and remove tasks while the simulated network (``harness.network``) delivers,
drops, duplicates, delays and reorders datagrams, partitions the nodes into any groups or
one way only, heals, crashes nodes and restarts them from their stores, and the clock
moves (sometimes past the 300 s replay TTL, so delayed pushes go stale and only repairs
can bring them).

The machine computes each operation with the model on the history the node holds (the
parts of every operation in the node's log), checks the refusals and the task ids, and
records the operation once ``publish`` acknowledges it. After every step:

* every message a node handled got the verdict ``models.gossip`` gives it;
* every node's value equals the model's value over the operations it holds;
* a restarted node holds every operation it acknowledged before it went down.

``quiesce`` heals the network, restarts every node and runs rounds of ticks (haves, pulls,
anti-entropy): then
every node holds every acknowledged operation and its value equals the model's value over
all of them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import blake3
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import guard
from harness.machine import Observation
from harness.network import INDEX, network_machine_test
from implementations.node import NodeConfig
from machines.adapters.node_mesh import TaskListApp
from machines.adapters.tasklist_x0x import LIST_ID, agent_key
from machines.contracts import Refused
from machines.mesh import MeshMachine
from machines.replicated import SKEWS
from machines.tasklist import DESCRIPTIONS, TITLES, short
from models import tasklist
from models.clock import NS_PER_MS, NS_PER_SECOND, OffsetClock, to_millis

TOPIC = "tasklist/" + LIST_ID.hex()
CONFIG = NodeConfig(beacons=False, adverts=False, repair_batch=2)  # repairs in rounds within a few steps
#: A run's repair batch: mostly 2 (a pull wants one seq a tick), sometimes 3, so that a pull that
#: splits a gap of several ranges takes more than one of them at a tick.
REPAIR_BATCHES = (2, 2, 3)
TASK = st.integers(0, 7)


class MeshTaskListMachine(MeshMachine):
    name = "mesh_tasklist"
    rule_classes: ClassVar[dict[str, str]] = {
        step: "operations" for step in ("add_task", "claim", "complete", "remove_task", "set_field", "move")}
    #: Each class's least share of the steps under ci: about half the least share measured against
    #: any implementation (harness.balance; the coverage table prints them): shares move when a
    #: merge reshuffles the derandomized search, or a test runs the machine with fewer examples.
    #: sync: 6.0% when this machine's test runs alone, 2.4% (178 examples) in a worker of the whole
    #: suite (Hypothesis mines literals from every loaded module: the realnet impostor's and the
    #: mesh machines' new ones moved it).
    class_floors: ClassVar[dict[str, float]] = {
        "operations": 0.24, "delivery": 0.025, "sync": 0.012, "faults": 0.05, "time": 0.10, "crash": 0.04}
    min_nodes, max_nodes = 3, 10
    node_config = CONFIG
    advances = (0, NS_PER_MS, NS_PER_SECOND, 5 * NS_PER_SECOND, 30 * NS_PER_SECOND, 301 * NS_PER_SECOND)

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.replicas: list[Any] = []
        self.parts: dict[tuple[int, int], tuple] = {}  # (origin node, seq) -> the model's parts of that operation
        self.acked: list[set[int]] = []
        self.tasks: list[bytes] = []
        self.model_values: dict[frozenset, tuple] = {}

    # ----- set-up ----------------------------------------------------------------------

    @initialize(count=st.sampled_from([3, 3, 4, 5, 10]), skews=st.lists(SKEWS, min_size=10, max_size=10),
                batch=st.sampled_from(REPAIR_BATCHES))
    def start(self, count: int, skews: list[int], batch: int) -> None:
        self.do("start", nodes=count, skews_ns=skews[:count], repair_batch=batch)

    def step_start(self, nodes: int, skews_ns: list[int], repair_batch: int = 2) -> None:
        """``nodes`` nodes, with their clocks' skews, each sending repairs of ``repair_batch`` operations
        (2 in traces from before the batch was drawn)."""
        self.require(repair_batch in REPAIR_BATCHES, f"repair_batch={repair_batch} is not one of {sorted(set(REPAIR_BATCHES))}")
        self.node_config = replace(CONFIG, repair_batch=repair_batch)
        self.replicas = [None] * nodes
        self.acked = [set() for _ in range(nodes)]
        self.start_mesh(nodes, skews_ns)

    def node_options(self, index: int) -> dict[str, Any]:
        replica = self.mesh_backend.tasklist(index, OffsetClock(self.clock, self.skews[index]))
        self.replicas[index] = replica
        return {"config": self.node_config, "apps": {TOPIC: TaskListApp(replica)}}

    def make_node(self, index: int) -> Any:
        node = super().make_node(index)
        held = self.held(index, node)
        lost = sorted(seq for seq in self.acked[index] if (index, seq) not in held)
        assert not lost, f"node {index} restarted without the operations it acknowledged: seqs {lost}"
        return node

    def discard_node(self, index: int) -> None:
        self.replicas[index] = None

    # ----- what a node holds, in the model's terms -----------------------------------------

    def held(self, index: int, node: Any = None) -> set[tuple[int, int]]:
        node = node or self.nodes[index]
        out = set()
        for origin, ranges in node.holds(TOPIC).items():
            for lo, hi in ranges:
                out.update((self.peer_index[origin], seq) for seq in range(lo, hi + 1))
        return out

    def history(self, index: int) -> frozenset:
        parts: set = set()
        for op in self.held(index):
            assert op in self.parts, f"node {index} holds operation {op}, which no node acknowledged"
            parts.update(self.parts[op])
        return frozenset(parts)

    def model_value(self, history: frozenset) -> tuple:
        known = self.model_values.get(history)
        if known is None:
            known = self.model_values[history] = tasklist.value(history)
        return known

    def observe(self) -> list[Observation]:
        observations = []
        for i in self.up():
            model, actual = self.model_value(self.history(i)), self.replicas[i].value()
            observations.append(Observation(f"node {i}", short(model), short(actual), model == actual))
        return observations

    def check(self) -> None:
        for observation in self.observe():
            assert observation.agrees, f"{observation.label} has {observation.implementation}, the model says {observation.model}"
        for i in self.up():
            self.check_logs(i)

    def converged(self) -> bool:
        everything = set(self.parts)
        return all(node is not None and self.held(i) == everything for i, node in enumerate(self.nodes))

    def check_quiet(self) -> None:
        everything = set(self.parts)
        expected = self.model_value(frozenset(p for parts in self.parts.values() for p in parts))
        for i in range(len(self.nodes)):
            self.check_logs(i, messages=True)
            missing = sorted(everything - self.held(i))
            assert not missing, f"after quiescence node {i} lacks acknowledged operations {missing}"
            actual = self.replicas[i].value()
            assert actual == expected, f"after quiescence node {i} has {short(actual)}, the model says {short(expected)}"

    # ----- operations --------------------------------------------------------------------

    def _up(self, raw: int) -> int:
        up = self.up()
        return up[self.pick(raw, up)]

    def choose_task(self, index: int, raw: int) -> str:
        held = tasklist.order(self.history(index))
        pool = held if raw and held else self.tasks
        return pool[self.pick(raw, pool)].hex()

    def task_arg(self, task: str) -> bytes:
        try:
            value = bytes.fromhex(task)
        except (TypeError, ValueError):
            value = b""
        self.require(value in self.tasks, f"task {task!r} was never added")
        return value

    def operate(self, node: int, operation: str, outcome: Any, call) -> None:
        """Run ``call`` on node ``node``'s replica (its refusal must be the model's), then publish."""
        if isinstance(outcome, tasklist.Refusal):
            try:
                call()
            except Refused as refusal:
                assert refusal.kind == outcome.kind, (
                    f"node {node}: {operation} refused as {refusal.kind!r}, the model refuses it as {outcome.kind!r}")
                return
            raise AssertionError(f"node {node}: {operation} was accepted, the model refuses it ({outcome.kind})")
        try:
            call()
        except Refused as refusal:
            raise AssertionError(f"node {node}: {operation} refused ({refusal}), the model accepts it") from None
        deltas = self.replicas[node].take_deltas()
        assert len(deltas) == 1, f"node {node}: {operation} made {len(deltas)} deltas"
        published = self.nodes[node].publish(TOPIC, deltas[0], self.local_now(node))
        assert (node, published.seq) not in self.parts, f"node {node} reused seq {published.seq}"
        self.parts[(node, published.seq)] = tuple(outcome)
        self.acked[node].add(published.seq)
        self.send_all(node, published.outgoing)
        self.published(node, published)

    @guard(lambda self: bool(self.up()))
    @rule(node=INDEX, title=st.sampled_from(TITLES), description=st.sampled_from(DESCRIPTIONS))
    def add_task(self, node: int, title: str, description: str) -> None:
        self.do("add_task", node=self._up(node), title=title, description=description)

    def step_add_task(self, node: int, title: str, description: str) -> None:
        self.require_node(node, up=True)
        now = self.local_now(node)
        replica = self.replicas[node]
        task = blake3.blake3(title.encode() + replica.agent_id + to_millis(now).to_bytes(8, "little")).digest()
        parts = tasklist.add_task(self.history(node), node, task, title, description, now)
        made: list[bytes] = []
        self.operate(node, "add_task", parts, lambda: made.append(replica.add_task(title, description)))
        assert made == [task], f"node {node}: add_task returned {made[0].hex()}, BLAKE3 per SPEC is {task.hex()}"
        if task not in self.tasks:
            self.tasks.append(task)

    @guard(lambda self: len(self.up()) > 1)
    @rule(nodes=st.lists(INDEX, min_size=2, max_size=4), title=st.sampled_from(TITLES))
    def add_concurrently(self, nodes: list[int], title: str) -> None:
        """Agents on several nodes add a task with the same title at the same instant."""
        for index in dict.fromkeys(self._up(raw) for raw in nodes):
            self.do("add_task", node=index, title=title, description="")

    @guard(lambda self: bool(self.tasks and self.up()))
    @rule(node=INDEX, task=TASK, action=st.sampled_from(["claim", "complete", "remove_task"]))
    def act(self, node: int, task: int, action: str) -> None:
        index = self._up(node)
        self.do(action, node=index, task=self.choose_task(index, task))

    @guard(lambda self: bool(self.tasks and self.up()))
    @rule(nodes=st.lists(INDEX, min_size=2, max_size=4), task=TASK, complete=st.booleans())
    def race(self, nodes: list[int], task: int, complete: bool) -> None:
        """Agents on several nodes claim (or complete) one task at the same instant."""
        indices = list(dict.fromkeys(self._up(raw) for raw in nodes))
        chosen = self.choose_task(indices[0], task)
        for index in indices:
            self.do("complete" if complete else "claim", node=index, task=chosen)

    def step_claim(self, node: int, task: str) -> None:
        self.checkbox_step("claim", node, task)

    def step_complete(self, node: int, task: str) -> None:
        self.checkbox_step("complete", node, task)

    def checkbox_step(self, action: str, node: int, task: str) -> None:
        self.require_node(node, up=True)
        task_id = self.task_arg(task)
        replica = self.replicas[node]
        ts_ms = to_millis(self.local_now(node))
        outcome = getattr(tasklist, action)(self.history(node), node, task_id, replica.agent_id, ts_ms)
        self.operate(node, action, outcome, lambda: getattr(replica, action)(task_id))

    def step_remove_task(self, node: int, task: str) -> None:
        self.require_node(node, up=True)
        task_id = self.task_arg(task)
        outcome = tasklist.remove_task(self.history(node), node, task_id)
        self.operate(node, "remove_task", outcome, lambda: self.replicas[node].remove_task(task_id))

    @guard(lambda self: bool(self.tasks and self.up()))
    @rule(node=INDEX, task=TASK, field=st.sampled_from(["title", "priority", "assignee"]), raw=st.integers(0, 255))
    def set_field(self, node: int, task: int, field: str, raw: int) -> None:
        index = self._up(node)
        value = {"title": f"title {raw % 3}", "priority": raw, "assignee": None if raw % 4 == 0 else raw % len(self.nodes)}
        self.do("set_field", node=index, task=self.choose_task(index, task), field=field, value=value[field])

    def step_set_field(self, node: int, task: str, field: str, value: Any) -> None:
        self.require_node(node, up=True)
        task_id = self.task_arg(task)
        self.require(field in tasklist.FIELDS, f"unknown field {field!r}")
        if field == "assignee" and value is not None:
            self.require_node(value)
            value = blake3.blake3(bytes(agent_key(value).verify_key)).digest()
        outcome = tasklist.set_field(self.history(node), node, task_id, field, value, self.local_now(node))
        self.operate(node, f"set_field {field}", outcome, lambda: self.replicas[node].set_field(task_id, field, value))

    @guard(lambda self: bool(self.tasks and self.up()))
    @rule(node=INDEX, task=TASK, position=st.integers(0, 4))
    def move(self, node: int, task: int, position: int) -> None:
        index = self._up(node)
        self.do("move", node=index, task=self.choose_task(index, task), index=position)

    def step_move(self, node: int, task: str, index: int) -> None:
        self.require_node(node, up=True)
        task_id = self.task_arg(task)
        self.require(index >= 0, f"move to a negative index {index}")
        outcome = tasklist.move(self.history(node), node, task_id, index)
        self.operate(node, "move", outcome, lambda: self.replicas[node].move(task_id, index))


#: ci budget: 40 runs of 40 steps (a step costs signatures, SQLite commits and a model
#: evaluation per node; see the README's table of machine budgets).
test_mesh_tasklist_machine = network_machine_test(MeshTaskListMachine, examples=150, steps=50)
