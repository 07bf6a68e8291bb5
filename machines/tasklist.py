"""The task-list machine: ``models.tasklist`` against every registered ``tasklist`` implementation.

Agents (one per replica, 2 to 5, clocks equal or skewed) share one list with few tasks
(two titles, so tasks are often the same task, and an agent adding the same title twice in
one millisecond makes the same id), and keep claiming, completing, editing, moving and
removing them while the faulty network of ``ReplicatedMachine`` delays, drops, duplicates
and re-delivers their deltas: conflicting claims and completions are the common case, not
the exception (``race``: several agents at the same instant). ``partition`` cuts a group of
one or two replicas off (messages and syncs across the cut are lost) until the next
``sync_all`` repairs the network, so partitions and repairs come in cycles.

A lying peer (``hostile``, ``machines.replicated.HostilePeers``) also sends messages that are
not canonical (``not_canonical``: each spoiling of the crafter's, such as a record of 168
bytes, fields out of order, a priority of 256, more field writes than ``MAX_TASKS`` allows):
each must be refused naming the kind of message and the part that is wrong, and so must
every other lie told as refused (the limit it passes, the dot, field or part it spoils).

A caller's mistakes (``caller_mistake``, for an implementation whose crafter says it refuses
them; a committed trace takes each, no rule draws them): a task whose title or description is
not text, a field no task has, a value its field cannot hold, a move to a negative index: each
must be refused (``TypeError`` or ``ValueError``) naming what is wrong, and change nothing.

``inject_forged`` delivers, to any replica, a checkbox state whose attestation does not
verify (``machines.contracts.FORGERIES``), as a delta or a full state; the model is told it
is not authentic, so it must change nothing.

The machine computes every task id itself (``BLAKE3(title || agent id || created_at_ms
LE)``, from the replica's clock) and compares it with the implementation's. A refusal must
match the model's exactly: the model refuses, the implementation must raise ``Refused``
with the same kind; the model accepts, the implementation must not refuse.

Trace arguments: task ids as hex, assignees as replica indices (or null).
"""

from __future__ import annotations

from typing import Any, ClassVar

import blake3
from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import guard, machine_test
from harness.hostile import far_counters
from harness.machine import Observation
from implementations.limits import MAX_CLOCK_AHEAD_NS, MAX_COUNTER_GAP, U64_MAX
from machines.contracts import FORGERIES, Refused
from machines.replicated import INDEX, START_NS, HostilePeers, ReplicatedMachine, SendsDeltas
from models import orset as orset_model
from models import tasklist
from models.clock import OffsetClock, to_millis

TITLES = ("write spec", "ship it")
DESCRIPTIONS = ("", "soon")
#: The forger's pseudo-replica in the model (its tags never meet a real replica's).
FORGER = 1_000
#: A forged state's time: earlier than any genuine state, so it would win if it were kept.
FORGED_TS_MS = to_millis(START_NS) - 60_000
#: The stranger's pseudo-replica in the model: an agent no replica is, whose signed states are genuine.
STRANGER = 1_001
#: The checkbox variants a replica keeps one of per task, in the order it lists them.
VARIANTS = ((tasklist.Done, "done"), (tasklist.Claimed, "claimed"))
#: A caller's mistakes (``caller_mistake``: committed traces only), told only to an implementation
#: whose crafter says it refuses them (``refuses_caller_mistakes``): the call, its arguments after the task (a
#: ``set_field`` or ``move`` is of a task added before), and what the refusal (``TypeError`` or
#: ``ValueError``) must name; if the crafter has ``caller_mistake_texts``, its words exactly.
CALLER_MISTAKES = {
    "add-title-not-text": ("add_task", (7, "soon"), ("title",)),
    "add-description-not-text": ("add_task", ("ship it", None), ("description",)),
    "set-unknown-field": ("set_field", ("colour", "red"), ("'colour'",)),
    "set-title-not-text": ("set_field", ("title", 7), ("title", "7")),
    "set-assignee-not-an-agent": ("set_field", ("assignee", bytes(31)), ("assignee",)),
    "set-priority-past-u8": ("set_field", ("priority", 256), ("priority", "256")),
    "set-priority-negative": ("set_field", ("priority", -1), ("priority", "-1")),
    "set-priority-bool": ("set_field", ("priority", True), ("priority", "True")),
    "move-negative": ("move", (-1,), ("-1",)),
}
#: Raw draws for a task: 0 picks among every task ever added, anything else among the
#: tasks the replica holds (when it holds any), so most operations find their task.
TASK = st.integers(0, 7)


def short_state(state: tasklist.State) -> str:
    if isinstance(state, tasklist.Empty):
        return "empty"
    return f"{type(state).__name__.lower()}({state.agent.hex()[:8]}@{state.ts_ms})"


def short(views: tuple) -> tuple[str, ...]:
    """Task views as short text for reports: ``id8 'title' 'description' @assignee8 p128 claimed(agent8@ts)``."""
    def hex8(value: Any) -> str:
        return value.hex()[:8] if isinstance(value, bytes) else repr(value)

    out = []
    for view in views:
        box = short_state(view.checkbox)
        out.append(f"{hex8(view.id)} {view.title!r} {view.description!r} @{hex8(view.assignee)} p{view.priority} {box}")
    return tuple(out)


def ahead(new: tasklist.State, old: tasklist.State) -> bool:
    """Whether the resolution order puts checkbox state ``new`` ahead of ``old``: Done over
    Claimed over Empty; within a variant, the earlier ``ts_ms``, then the smaller agent id."""
    def level(state: tasklist.State) -> int:
        return {tasklist.Empty: 0, tasklist.Claimed: 1, tasklist.Done: 2}[type(state)]

    if level(new) != level(old):
        return level(new) > level(old)
    return not isinstance(new, tasklist.Empty) and (new.ts_ms, new.agent) < (old.ts_ms, old.agent)


class TaskListMachine(SendsDeltas, HostilePeers, ReplicatedMachine):
    name = "tasklist"
    rule_classes: ClassVar[dict[str, str]] = {
        "partition": "faults", "inject_forged": "adversary",
        **{step: "operations" for step in ("add_task", "remove_task", "claim", "complete", "race", "edit", "set_field", "move")}}
    #: Each class's least share of the steps under ci: about half the least share measured against
    #: any implementation (harness.balance; the coverage table prints them): shares move when a
    #: merge reshuffles the derandomized search, or a test runs the machine with fewer examples.
    class_floors: ClassVar[dict[str, float]] = {
        "operations": 0.10, "delivery": 0.12, "sync": 0.055, "faults": 0.05, "time": 0.07, "adversary": 0.06}

    #: ``caller_mistake``: a committed trace takes it (``tasklist-caller-mistakes``) and no rule
    #: draws it: a rule for it slowed the search for the catalogue's bugs (one of them needed a
    #: median of 250 examples against 44), and what it checks does not hang on the state.
    trace_only_steps: ClassVar[tuple[str, ...]] = ("caller_mistake",)

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.clocks: list[OffsetClock] = []
        self.tasks: list[bytes] = []  # every task id ever added, in order
        self.cut: frozenset[int] = frozenset()  # replicas partitioned from the others
        self.model_values: dict[frozenset, tuple] = {}
        self.model_helds: dict[frozenset, dict] = {}
        self.shown: dict[tuple[int, bytes], tasklist.State] = {}  # (replica, task) -> its checkbox last shown
        self.stranger_made = 0  # the stranger agent's signed states so far (their model tags)
        self.spoiled = 0  # not_canonical lies told

    def model_value(self, history: frozenset) -> tuple:
        """``models.tasklist.value``, remembered per history (most steps leave most replicas alone)."""
        known = self.model_values.get(history)
        if known is None:
            known = self.model_values[history] = tasklist.value(history)
        return known

    def observe(self) -> list[Observation]:
        """Each replica beside the model, compared whole, shown short (ids as 8 hex digits)."""
        observations = []
        for i, (history, replica) in enumerate(zip(self.history, self.replicas, strict=True)):
            model, actual = self.model_value(frozenset(history)), self.replica_value(replica)
            observations.append(Observation(f"replica {i}", short(model), short(actual), model == actual))
        return observations

    def step_start(self, replicas: int, skews_ns: list[int]) -> None:
        super().step_start(replicas, skews_ns)
        self.clocks = [OffsetClock(self.clock, skew) for skew in skews_ns]

    def check(self) -> None:
        super().check()
        self.check_checkbox_displacement()
        self.check_held_states()

    def check_held_states(self) -> None:
        """Where the crafter can read them (``held``): the checkbox states a replica keeps of each
        task are the model's smallest authentic Done and smallest authentic Claimed, those there
        are, Done first (a Claimed under a Done is kept too, though no value shows it)."""
        held = getattr(self.crafter, "held", None)
        for index in range(len(self.replicas) if held and self.tasks else 0):
            expected = self.model_held(frozenset(self.history[index]))
            for task in self.tasks:
                actual = [tuple(state) for state in held(self.raw(index), task)]
                assert actual == expected.get(task, []), (
                    f"replica {index} keeps the checkbox states {actual} of task {task.hex()[:8]}, "
                    f"the model's smallest Done and Claimed are {expected.get(task, [])}")

    def model_held(self, history: frozenset) -> dict[bytes, list[tuple[str, bytes, int]]]:
        """Per task, the smallest authentic Done and Claimed of ``history``, Done first, as
        ``(state, agent id, ts_ms)`` (remembered per history)."""
        known = self.model_helds.get(history)
        if known is None:
            smallest: dict[tuple[bytes, type], tasklist.Claimed | tasklist.Done] = {}
            for part in history:
                if isinstance(part, tasklist.Checkbox) and part.op.element.authentic:
                    task, state = part.op.element.task, part.op.element.state
                    current = smallest.get((task, type(state)))
                    if current is None or (state.ts_ms, state.agent) < (current.ts_ms, current.agent):
                        smallest[(task, type(state))] = state
            known = {}
            for task in {task for task, _ in smallest}:
                kept = [(name, smallest.get((task, variant))) for variant, name in VARIANTS]
                known[task] = [(name, state.agent, state.ts_ms) for name, state in kept if state is not None]
            self.model_helds[history] = known
        return known

    def check_checkbox_displacement(self) -> None:
        """A task's checkbox state, as a replica shows it, is only ever displaced by one the
        resolution order puts ahead of it: never erased or pushed back by a message."""
        for index, replica in enumerate(self.replicas):
            for view in self.replica_value(replica):
                key = (index, view.id)
                before = self.shown.get(key)
                if before is not None and view.checkbox != before:
                    assert ahead(view.checkbox, before), (
                        f"replica {index}: the checkbox of task {view.id.hex()[:8]} went from {short_state(before)} "
                        f"to {short_state(view.checkbox)}, which the resolution order does not put ahead of it")
                self.shown[key] = view.checkbox

    # ----- helpers ---------------------------------------------------------------------

    def choose_task(self, replica: int, raw: int, state: type | None = None) -> str:
        """A task id (hex) from a raw draw; with ``state``, preferably one in that checkbox state."""
        held = tasklist.order(self.history[replica])
        if state is not None and raw % 2:
            held = [task for task in held if isinstance(tasklist.checkbox(self.history[replica], task), state)] or held
        pool = held if raw and held else self.tasks
        return pool[self.pick(raw, pool)].hex()

    def task_arg(self, task: str) -> bytes:
        try:
            value = bytes.fromhex(task)
        except (TypeError, ValueError):
            value = b""
        self.require(value in self.tasks, f"task {task!r} was never added")
        return value

    # ----- the report: tasks and agents by name, never raw ids ----------------------------

    def task_name(self, task: bytes | str) -> str:
        """``T1``, ``T2``...: tasks in the order they were first added (a stranger's: ``T?``)."""
        task = bytes.fromhex(task) if isinstance(task, str) else task
        return f"T{self.tasks.index(task) + 1}" if task in self.tasks else "T?"

    def agent_name(self, agent: bytes) -> str:
        agents = [self.agent(i) for i in range(len(self.replicas))]
        return f"agent {agents.index(agent)}" if agent in agents else "a stranger"

    def describe_state(self, state: Any) -> str:
        if isinstance(state, tasklist.Empty):
            return "empty"
        kind = "claimed" if isinstance(state, tasklist.Claimed) else "done"
        return f"{kind} by {self.agent_name(state.agent)} at {state.ts_ms} ms"

    def describe_op(self, op: Any) -> str:
        if isinstance(op, tasklist.Member):
            verb = "added" if isinstance(op.op, orset_model.Add) else "removed"
            return f"{self.task_name(op.op.element)} {verb}"
        if isinstance(op, tasklist.Field):
            written = op.write.value  # an assignee is an agent's id: named, never its bytes
            shown = self.agent_name(written) if isinstance(written, bytes) else repr(written)
            return f"{self.task_name(op.task)}.{op.name} = {shown} (by replica {op.write.writer})"
        if isinstance(op, tasklist.Checkbox):
            attested = op.op.element
            forged = "" if attested.authentic else " (forged)"
            return f"{self.task_name(attested.task)} {self.describe_state(attested.state)}{forged}"
        if isinstance(op, tasklist.Order):
            return "a move in the list order"
        return type(op).__name__

    def describe_step(self, step) -> str:
        a = step.args
        try:
            if step.rule == "add_task":
                return f"replica {a['replica']} (agent {a['replica']}) adds task {a['title']!r}"
            if step.rule in ("remove_task", "claim", "complete"):
                verb = {"remove_task": "removes", "claim": "claims", "complete": "completes"}[step.rule]
                return f"replica {a['replica']} (agent {a['replica']}) {verb} {self.task_name(a['task'])}"
            if step.rule == "race":
                racers = ", ".join(map(str, a["replicas"]))
                return f"replicas {racers} each {a['action']} {self.task_name(a['task'])} before hearing of the others"
            if step.rule == "edit":
                changes = ", ".join(f"{field} = {value!r}" for field, value in a["changes"])
                return f"replica {a['replica']} edits {self.task_name(a['task'])}: {changes}"
            if step.rule == "set_field":
                return f"replica {a['replica']} sets {self.task_name(a['task'])}.{a['field']} = {a['value']!r}"
            if step.rule == "move":
                return f"replica {a['replica']} moves {self.task_name(a['task'])} to position {a['index']}"
            if step.rule == "partition":
                return f"replicas {', '.join(map(str, a['group']))} are cut off from the others"
            if step.rule == "inject_forged":
                how = str(a["how"]).replace("_", " ")
                shape = "a whole state" if a["whole_state"] else "a delta"
                return (f"replica {a['target']} receives a forged {a['state']} of {self.task_name(a['task'])} in agent "
                        f"{a['agent']}'s name at {a['ts_ms']} ms ({how}, as {shape})")
            if step.rule == "caller_mistake":
                call, args, _ = CALLER_MISTAKES[a["how"]]
                of = f" of {self.task_name(a['task'])}" if "task" in a else ""
                shown = ", ".join(f"{len(v)} bytes" if isinstance(v, bytes) else repr(v) for v in args)
                return (f"a caller of replica {a['replica']} calls {call}{of} with {shown} "
                        f"({str(a['how']).replace('-', ' ')}): it must be refused, changing nothing")
            if step.rule == "hostile" and "spoiling" in a:
                shape = "a whole state" if a["whole_state"] else "a delta"
                return (f"a lying peer sends replica {a['target']} {shape} that is not canonical: "
                        f"{str(a['spoiling']).replace('_', ' ')}")
        except (IndexError, KeyError, TypeError, ValueError, AttributeError):
            pass
        return super().describe_step(step)

    def agent(self, replica: int) -> bytes:
        return self.replicas[replica].agent_id

    def apply(self, replica: int, operation: str, task: bytes, outcome: Any, call) -> None:
        """Run ``call`` on the implementation; its refusal must be the model's ``outcome``, and
        name the task (its id in hex, at least the first 16 digits)."""
        if isinstance(outcome, tasklist.Refusal):
            try:
                call()
            except Refused as refusal:
                assert refusal.kind == outcome.kind, (
                    f"replica {replica}: {operation} refused as {refusal.kind!r}, the model refuses it as {outcome.kind!r}")
                assert task.hex()[:16] in str(refusal), (
                    f"replica {replica}: {operation} refused ({outcome.kind}) without naming task {task.hex()[:16]}: {refusal}")
                return
            raise AssertionError(f"replica {replica}: {operation} was accepted, the model refuses it ({outcome.kind})")
        try:
            call()
        except Refused as refusal:
            raise AssertionError(f"replica {replica}: {operation} refused ({refusal}), the model accepts it") from None
        for part in outcome:
            self.record_local(replica, part)

    # ----- replication: the base's rule, biased towards replicas with something to send ----

    quiet_when_idle = frozenset({"x0x"})  # ``implementations.tasklist``'s take_deltas sends nothing when nothing is pending

    @rule(source=INDEX)
    def broadcast(self, source: int) -> None:
        """Three times in four, a replica with unsent operations (when there is one)."""
        pending = [i for i, unsent in enumerate(self.unsent) if unsent]
        pool = pending if pending and source % 4 else list(range(len(self.replicas)))
        self.do("broadcast", source=pool[self.pick(source, pool)])

    # ----- partitions: a group cut off until the next sync_all repairs the network ---------

    @rule(first=INDEX, second=INDEX)
    def partition(self, first: int, second: int) -> None:
        group = sorted({self.pick(first, self.replicas), self.pick(second, self.replicas)})
        self.do("partition", group=group)

    def step_partition(self, group: list[int]) -> None:
        self.require(bool(self.replicas), "the machine has not started")
        self.require(all(0 <= i < len(self.replicas) for i in group), f"no replicas {group}")
        self.cut = frozenset(group)

    def crosses(self, source: int, target: int) -> bool:
        return (source in self.cut) != (target in self.cut)

    def _deliver(self, message) -> None:
        if not self.crosses(message.source, message.target):  # else lost in the partition
            super()._deliver(message)

    def step_sync_full(self, source: int, target: int) -> None:
        if not self.crosses(source, target):
            super().step_sync_full(source, target)

    @guard(lambda self: any(history != self.history[0] for history in self.history))
    @rule()
    def sync_all(self) -> None:
        """Only when some replicas have seen different operations (else it proves nothing)."""
        self.do("sync_all")

    def step_sync_all(self) -> None:
        self.cut = frozenset()  # the network is repaired, then anti-entropy runs everywhere
        super().step_sync_all()

    # ----- operations ------------------------------------------------------------------

    @rule(replica=INDEX, title=st.sampled_from(TITLES), description=st.sampled_from(DESCRIPTIONS))
    def add_task(self, replica: int, title: str, description: str) -> None:
        self.do("add_task", replica=self.pick(replica, self.replicas), title=title, description=description)

    def step_add_task(self, replica: int, title: str, description: str) -> None:
        self.require_replica(replica)
        now_ns = self.clocks[replica].now()
        expected = blake3.blake3(title.encode() + self.agent(replica) + to_millis(now_ns).to_bytes(8, "little")).digest()
        task = self.replicas[replica].add_task(title, description)
        assert task == expected, f"replica {replica}: add_task returned id {task.hex()}, BLAKE3 per SPEC is {expected.hex()}"
        if task not in self.tasks:
            self.tasks.append(task)
        for part in tasklist.add_task(self.history[replica], replica, task, title, description, now_ns):
            self.record_local(replica, part)

    @guard(lambda self: bool(self.tasks))
    @rule(replica=INDEX, task=TASK)
    def remove_task(self, replica: int, task: int) -> None:
        index = self.pick(replica, self.replicas)
        self.do("remove_task", replica=index, task=self.choose_task(index, task))

    def step_remove_task(self, replica: int, task: str) -> None:
        self.require_replica(replica)
        task_id = self.task_arg(task)
        outcome = tasklist.remove_task(self.history[replica], replica, task_id)
        self.apply(replica, "remove_task", task_id, outcome, lambda: self.replicas[replica].remove_task(task_id))

    @guard(lambda self: bool(self.tasks))
    @rule(replica=INDEX, task=TASK)
    def claim(self, replica: int, task: int) -> None:
        index = self.pick(replica, self.replicas)
        self.do("claim", replica=index, task=self.choose_task(index, task))

    def step_claim(self, replica: int, task: str) -> None:
        self.checkbox_step("claim", replica, task)

    @guard(lambda self: bool(self.tasks))
    @rule(replica=INDEX, task=TASK)
    def complete(self, replica: int, task: int) -> None:
        index = self.pick(replica, self.replicas)
        self.do("complete", replica=index, task=self.choose_task(index, task, tasklist.Claimed))

    def step_complete(self, replica: int, task: str) -> None:
        self.checkbox_step("complete", replica, task)

    def checkbox_step(self, action: str, replica: int, task: str) -> None:
        self.require_replica(replica)
        self.require(action in ("claim", "complete"), f"unknown checkbox action {action!r}")
        task_id = self.task_arg(task)
        ts_ms = to_millis(self.clocks[replica].now())
        outcome = getattr(tasklist, action)(self.history[replica], replica, task_id, self.agent(replica), ts_ms)
        self.apply(replica, action, task_id, outcome, lambda: getattr(self.replicas[replica], action)(task_id))

    @guard(lambda self: bool(self.tasks))
    @rule(first=INDEX, others=st.lists(INDEX, min_size=1, max_size=3), task=TASK, complete=st.integers(0, 1))
    def race(self, first: int, others: list[int], task: int, complete: int) -> None:
        """Several agents claim (or, half the time, complete) the same task at the same instant."""
        replicas = list(dict.fromkeys(self.pick(raw, self.replicas) for raw in [first, *others]))
        action = "complete" if complete == 0 else "claim"
        wanted = tasklist.Claimed if action == "complete" else tasklist.Empty
        self.do("race", replicas=replicas, task=self.choose_task(replicas[0], task, wanted), action=action)

    def step_race(self, replicas: list[int], task: str, action: str) -> None:
        for replica in replicas:
            self.checkbox_step(action, replica, task)

    def field_value(self, field: str, raw: int) -> Any:
        """A value for ``field`` in trace terms (an assignee is a replica index, or None)."""
        return {
            "title": f"title {raw % 3}",
            "description": f"note {raw % 2}",
            "assignee": None if raw % 4 == 0 else self.pick(raw, self.replicas),
            "priority": (0, 128, 255, raw)[raw % 4],
        }[field]

    @guard(lambda self: bool(self.tasks))
    @rule(replica=INDEX, task=TASK, field=st.sampled_from(tasklist.FIELDS), raw=st.integers(0, 255))
    def set_field(self, replica: int, task: int, field: str, raw: int) -> None:
        index = self.pick(replica, self.replicas)
        self.do("set_field", replica=index, task=self.choose_task(index, task), field=field, value=self.field_value(field, raw))

    @guard(lambda self: bool(self.tasks))
    @rule(replica=INDEX, task=TASK, fields=st.lists(st.sampled_from(tasklist.FIELDS), min_size=2, max_size=4, unique=True),
          raw=st.integers(0, 255))
    def edit(self, replica: int, task: int, fields: list[str], raw: int) -> None:
        """One agent updates several fields of a task at one instant (one write each, in order)."""
        index = self.pick(replica, self.replicas)
        changes = [[field, self.field_value(field, raw + n)] for n, field in enumerate(fields)]
        self.do("edit", replica=index, task=self.choose_task(index, task), changes=changes)

    def step_edit(self, replica: int, task: str, changes: list) -> None:
        self.require(all(isinstance(change, list) and len(change) == 2 for change in changes), f"bad changes {changes!r}")
        for field, value in changes:
            self.step_set_field(replica, task, field, value)

    def step_set_field(self, replica: int, task: str, field: str, value: Any) -> None:
        self.require_replica(replica)
        task_id = self.task_arg(task)
        self.require(field in tasklist.FIELDS, f"unknown field {field!r}")
        if field == "assignee" and value is not None:
            self.require_replica(value)
            value = self.agent(value)
        now_ns = self.clocks[replica].now()
        outcome = tasklist.set_field(self.history[replica], replica, task_id, field, value, now_ns)
        self.apply(replica, f"set_field {field}", task_id, outcome,
                   lambda: self.replicas[replica].set_field(task_id, field, value))

    @guard(lambda self: bool(self.tasks))
    @rule(replica=INDEX, task=TASK, position=st.integers(0, 4))
    def move(self, replica: int, task: int, position: int) -> None:
        index = self.pick(replica, self.replicas)
        self.do("move", replica=index, task=self.choose_task(index, task), index=position)

    def step_move(self, replica: int, task: str, index: int) -> None:
        self.require_replica(replica)
        task_id = self.task_arg(task)
        self.require(index >= 0, f"move to a negative index {index}")
        outcome = tasklist.move(self.history[replica], replica, task_id, index)
        self.apply(replica, "move", task_id, outcome, lambda: self.replicas[replica].move(task_id, index))

    def step_caller_mistake(self, how: str, replica: int, task: str | None = None) -> None:
        """A caller's programming error (``CALLER_MISTAKES``): a task whose title or description is
        not text, a field no task has, a value its field cannot hold (a priority past a byte, below
        zero or a bool, an assignee that is no agent id), a move to a negative index: refused with a
        ``TypeError`` or ``ValueError`` naming what is wrong, and the replica changes nothing."""
        self.require(getattr(self.crafter, "refuses_caller_mistakes", False), "this implementation takes any call")
        self.require(how in CALLER_MISTAKES, f"{how!r} is not one of {sorted(CALLER_MISTAKES)}")
        self.require_replica(replica)
        call, args, named = CALLER_MISTAKES[how]
        if call != "add_task":
            self.require(task is not None, f"a caller's {how} is of a task")
            args = (self.task_arg(task), *args)
        holder = self.replicas[replica]
        before = (holder.state(), self.replica_value(holder))
        try:
            getattr(holder, call)(*args)
        except (TypeError, ValueError) as error:
            text, exact = str(error), getattr(self.crafter, "caller_mistake_texts", {}).get(how)
            assert exact is None or text == exact, f"a caller's {how}: refused as {text!r}, not {exact!r}"
            missing = [part for part in named if part not in text]
            assert not missing, f"a caller's {how}: refused with {error!r}, which does not name {missing}"
        else:
            raise AssertionError(f"a caller's {how}: {call} took it, it must refuse it naming {list(named)}")
        after = (holder.state(), self.replica_value(holder))
        assert after == before, f"a caller's {how} changed replica {replica}: {short(before[1])} -> {short(after[1])}"

    @guard(lambda self: bool(self.tasks))
    @rule(to=INDEX, task=TASK, done=st.booleans(), agent=INDEX, how=st.sampled_from(FORGERIES), whole=st.booleans(),
          race=st.booleans())
    def inject_forged(self, to: int, task: int, done: bool, agent: int, how: str, whole: bool, race: bool) -> None:
        """A tampered copy is of a state its agent made, preferably where it has not arrived yet.
        With ``race``, whenever some replica lacks a state another agent made, the forgery is a
        tampered copy of such a state, sent to such a replica: the copy that arrives before the
        genuine state. (Without it, a tampered copy was one forgery in seven, aimed at a random
        replica: ``tasklist-tampered-copy-shadows-genuine`` was found under 5 of 10 seeds within
        500 examples; with it, under 10 of 10, median 210. Most states have reached every
        replica before a forgery is drawn.)"""
        index = self.pick(to, self.replicas)
        chosen, named = self.choose_task(index, task), self.pick(agent, self.replicas)
        made = sorted({(j, p) for j, history in enumerate(self.history) for p in history
                       if isinstance(p, tasklist.Checkbox) and p.op.tag[0] == j}, key=lambda made: (made[0], repr(made[1])))
        lacking = [(i, j, p.op.element.task.hex()) for j, p in made for i in range(len(self.replicas))
                   if p not in self.history[i]]
        if race and lacking:
            how = "tampered_copy"
            index, named, chosen = lacking[self.pick(agent, lacking)]
        elif how == "tampered_copy":  # a state some agent made itself, preferably one the target lacks
            pool = [(j, lacked) for i, j, lacked in lacking if i == index] or [(j, p.op.element.task.hex()) for j, p in made]
            if pool:
                named, chosen = pool[self.pick(agent, pool)]
        self.do("inject_forged", target=index, task=chosen, state="done" if done else "claimed",
                agent=named, ts_ms=FORGED_TS_MS, how=how, whole_state=whole)

    def step_inject_forged(self, target: int, task: str, state: str, agent: int, ts_ms: int, how: str,
                           whole_state: bool) -> None:
        self.require_replica(target)
        self.require_replica(agent)
        task_id = self.task_arg(task)
        self.require(state in ("claimed", "done"), f"unknown state {state!r}")
        self.require(how in FORGERIES, f"unknown forgery {how!r}")
        self.require(ts_ms >= 0, f"negative ts_ms {ts_ms}")
        message = self.replicas[agent].forge(task_id, state, agent, ts_ms, how, whole_state)
        self.check_verified(target, task_id, message, whole_state)
        receiver = self.replicas[target]
        (receiver.merge if whole_state else receiver.apply_delta)(message)
        forged_state = (tasklist.Done if state == "done" else tasklist.Claimed)(self.agent(agent), ts_ms)
        self.arrive(target, [tasklist.forged(self.history[target], task_id, forged_state, FORGER)])

    def check_verified(self, target: int, task: bytes, forged: bytes, whole_state: bool) -> None:
        """Where the crafter can tell (``verified``): a replica verifies a forged state only if it
        would change a winner, one of its variant ahead of the one the replica keeps (so it counts
        it dropped), and leaves the others unverified (a forger's flood costs it no signature check)."""
        verified = getattr(self.crafter, "verified", None)
        if verified is None:
            return
        carried, dropped = verified(self.raw(target), forged, whole_state)
        held = self.model_held(frozenset(self.history[target])).get(task, [])
        ahead = [(state, agent, ts_ms) for state, agent, ts_ms in carried
                 if not any(kept == state and (kept_ts, kept_agent) <= (ts_ms, agent) for kept, kept_agent, kept_ts in held)]
        assert dropped == len(ahead), (
            f"replica {target} verified and dropped {dropped} forged record(s) of task {task.hex()[:8]}; of "
            f"{len(carried)} carried, {len(ahead)} would change a winner (it keeps {[(s, t) for s, _, t in held]})")

    # ----- the adversary (machines.replicated.HostilePeers) ------------------------------
    #
    # A crafter for the ``tasklist`` machine offers ``lies`` and, each rendering a
    # ``tasklist.state`` (if ``whole_state``) or ``tasklist.delta`` message for the list:
    #
    # * ``erase(holder, task, whole_state)``: a message without the checkbox states of ``task``
    #   that ``holder`` (the target replica's adapter) holds, claiming, in whatever context
    #   the format has, to have seen them removed;
    # * ``claim_dots(whole_state, peer, counter, bad_record)``: a context claiming the dot
    #   ``(peer, counter)``, with no entries, and with ``bad_record`` a checkbox record that
    #   does not verify (one the receiver must drop);
    # * ``claim_own_ahead(holder, whole_state, ahead)``: a context claiming the dot ``ahead``
    #   beyond the last membership dot of its own ``holder`` (the target's adapter) has seen;
    # * ``stranger_state(whole_state, task, state, ts_ms, serial)``: a genuine ``"claimed"`` or
    #   ``"done"`` state signed by the stranger agent (``stranger_agent``, its id), its
    #   ``serial``-th;
    # * ``relay(source, task, agent, state, ts_ms, whole_state)``: the genuine record with these
    #   fields that replica ``source`` (its adapter) holds, replayed by someone else;
    # * ``field_write(whole_state, task, field, wall_ns, counter, writer, value)``: one field write;
    # * ``tamper(genuine, whole_state, how, peer, counter)``: the genuine message with one
    #   field wrong: ``how`` is ``"list_id"``, ``"field_clock"``, ``"field_counter"`` or
    #   ``"member_claim"`` (its membership context also claims ``(peer, counter)``).

    # * ``kind(whole_state)``, ``spoilings``, ``spoil(whole_state, spoiling)`` and ``spoiling(spoiling)``
    #   (optional): messages that decode as MessagePack of their kind but are not canonical
    #   (``not_canonical``), the part of one a refusal names after the kind, and the limit it
    #   passes (or None); ``tampered(genuine, how)``: the same of ``tamper``'s message.

    lie_weights: ClassVar[dict[str, int]] = {"context_erases_state": 3, "dots_far_ahead": 2, "own_dots_ahead": 2,
                                             "counter_at_max": 1, "stranger_ops": 3, "relayed_record": 2,
                                             "clock_ahead": 1, "one_field_wrong": 3, "not_canonical": 3}
    #: The limit a refusal of each lie told as refused names (``one_field_wrong``: the crafter says).
    limit_passed: ClassVar[dict[str, str]] = {"dots_far_ahead": "MAX_COUNTER_GAP", "counter_at_max": "MAX_COUNTER_GAP",
                                              "clock_ahead": "MAX_CLOCK_AHEAD_NS"}

    def lie_table(self) -> list[str]:
        table = super().lie_table()
        return table if self.own_checkbox_parts() else [lie for lie in table if lie != "relayed_record"]

    def check_refusal(self, target: int, lie: str, whole_state: bool, refusal: Exception, **args: Any) -> None:
        """A refusal names what is wrong: the limit the lie passed (``OverLimit.limit``, None if none)
        and, after the kind of message, the part of it that is wrong: the dot past the gap, the
        field and task whose write is ahead, the part a spoiling or a tampering spoiled."""
        crafter, text, limit = self.crafter, str(refusal), getattr(refusal, "limit", None)
        kind = getattr(crafter, "kind", None)
        if kind is None:
            return
        if lie == "not_canonical":
            where, passed = crafter.spoiling(args["spoiling"])
        elif lie == "one_field_wrong":
            where, passed = crafter.tampered(self.genuine(whole_state, args.get("message"), args.get("source")), args["how"])
        elif lie == "clock_ahead":
            where = f"field {args['field']} of task {args['task'][:16]}…: wall time {args['wall_ns']} "
            passed = "MAX_CLOCK_AHEAD_NS"
        else:
            where, passed = f"members claims dot ({args['peer']}, {args['counter']})", self.limit_passed[lie]
        assert limit == passed, f"{lie}: the refusal names the limit {limit}, not {passed}: {text}"
        named = f"{kind(whole_state)}: {where}"
        assert named in text, f"{lie}: the refusal does not name {named!r}, what is wrong: {text}"

    def require_far(self, target: int, peer: int, counter: int) -> None:
        """``counter`` is past the counter gap from ``peer``'s dots the target knows (``hostile_args``
        draws it further still)."""
        self.require(counter > self.known_counter(target, peer) + MAX_COUNTER_GAP, f"{counter} is not far ahead")

    def known_counter(self, target: int, replica: int) -> int:
        """The greatest tag of ``replica`` in the target's membership or checkbox operations."""
        counters = [0]
        for part in self.history[target]:
            if isinstance(part, (tasklist.Member, tasklist.Checkbox)):
                tags = [part.op.tag] if isinstance(part.op, orset_model.Add) else part.op.observed
                counters.extend(seq for origin, seq in tags if origin == replica)
        return max(counters)

    def own_checkbox_parts(self) -> list[tuple[int, tasklist.Checkbox]]:
        """Every genuine checkbox state an agent made, with the replica that made it, in a stable order."""
        parts = [(j, p) for j, history in enumerate(self.history) for p in history
                 if isinstance(p, tasklist.Checkbox) and p.op.tag[0] == j]
        return sorted(parts, key=lambda jp: (jp[0], jp[1].op.tag))

    def hostile_args(self, lie: str, target: int, draw: int) -> dict[str, Any]:
        task = self.choose_task(target, draw % 8) if self.tasks else bytes(32).hex()
        peers = list(range(len(self.replicas)))
        other = [i for i in peers if i != target] or peers
        if lie == "context_erases_state":
            return {"task": task}
        if lie == "own_dots_ahead":
            return {"ahead": 1 + draw % 2}
        if lie in ("dots_far_ahead", "counter_at_max"):
            peer = other[draw % len(other)]
            known = self.known_counter(target, peer)
            # Accepted claims of a replica's own dots are not in the model: each moves what the
            # implementation knows by at most 2, so 'far' keeps a margin far beyond any run's drift.
            counters = far_counters(known + 2**16) if lie == "dots_far_ahead" else [U64_MAX - 1, U64_MAX]
            return {"peer": peer, "counter": counters[draw % len(counters)], "bad_record": bool(draw & 16)}
        if lie == "stranger_ops":
            ts_ms = (0, to_millis(self.clocks[target].now()), U64_MAX)[draw % 3]
            return {"task": task, "state": ("claimed", "done")[(draw >> 2) % 2], "ts_ms": ts_ms}
        if lie == "relayed_record":
            parts = self.own_checkbox_parts()
            source, part = parts[draw % len(parts)]
            state = part.op.element.state
            return {"source": source, "task": part.op.element.task.hex(), "agent": source,
                    "state": "done" if isinstance(state, tasklist.Done) else "claimed", "ts_ms": state.ts_ms}
        if lie == "clock_ahead":
            now = self.clocks[target].now()
            wall = (now + MAX_CLOCK_AHEAD_NS + 1, U64_MAX)[draw % 2]
            return {"task": task, "field": tasklist.FIELDS[draw % 2], "wall_ns": wall, "counter": (0, U64_MAX)[(draw >> 1) % 2]}
        if lie == "not_canonical":
            # The search's draws cluster (small numbers, edges): alone, some remainders would never come up.
            spoilings, self.spoiled = self.crafter.spoilings, self.spoiled + 1
            return {"spoiling": spoilings[(draw + self.spoiled * 7) % len(spoilings)]}
        how = ("list_id", "field_clock", "field_counter", "member_claim")[draw % 4]
        far = far_counters(self.known_counter(target, target) + 2**16)
        counter = far[draw % len(far)]
        messages = [i for i, m in enumerate(self.in_flight) if m.target == target and m.deltas]
        if messages and draw & 8:
            return {"message": messages[draw % len(messages)], "how": how, "peer": target, "counter": counter,
                    "whole_state": False}
        return {"source": draw % len(self.replicas), "how": how, "peer": target, "counter": counter, "whole_state": True}

    def tell(self, target: int, lie: str, whole_state: bool, **args: Any) -> tuple[bytes, str, frozenset]:
        crafter = self.crafter
        if lie == "context_erases_state":
            task = bytes.fromhex(args["task"])
            return crafter.erase(self.raw(target), task, whole_state), "harmless", frozenset()
        if lie == "own_dots_ahead":  # within the gap: the target's next dots skip past it
            self.require(args["ahead"] in (1, 2), f"ahead={args['ahead']!r}")
            return crafter.claim_own_ahead(self.raw(target), whole_state, args["ahead"]), "harmless", frozenset()
        if lie in ("dots_far_ahead", "counter_at_max"):
            # A lie told as refused must be one (a trace edited by hand or by the minimizer may
            # have made it an honest claim, which a correct replica rightly accepts).
            if lie == "dots_far_ahead":
                self.require_far(target, args["peer"], args["counter"])
            else:
                self.require(args["counter"] >= U64_MAX - 1, f"{args['counter']} is not at the maximum")
            return crafter.claim_dots(whole_state, args["peer"], args["counter"], args["bad_record"]), "refused", frozenset()
        if lie == "stranger_ops":
            task = bytes.fromhex(args["task"])
            ts_ms, state = args["ts_ms"], args["state"]
            self.require(state in ("claimed", "done") and 0 <= ts_ms <= U64_MAX, f"bad stranger state {state} at {ts_ms}")
            self.stranger_made += 1
            message = crafter.stranger_state(whole_state, task, state, ts_ms, self.stranger_made)
            attested = tasklist.Attested(task, (tasklist.Done if state == "done" else tasklist.Claimed)(
                crafter.stranger_agent, ts_ms), True)
            return message, "accepted", frozenset({tasklist.Checkbox(orset_model.Add(attested, (STRANGER, self.stranger_made)))})
        if lie == "relayed_record":
            self.require_replica(args["source"])
            task = bytes.fromhex(args["task"])
            kind = tasklist.Done if args["state"] == "done" else tasklist.Claimed
            wanted = tasklist.Attested(task, kind(self.agent(args["agent"]), args["ts_ms"]), True)
            parts = frozenset(p for p in self.history[args["source"]]
                              if isinstance(p, tasklist.Checkbox) and p.op.element == wanted)
            self.require(bool(parts), f"replica {args['source']} holds no such state")
            message = crafter.relay(self.raw(args["source"]), task, self.agent(args["agent"]),
                                    args["state"], args["ts_ms"], whole_state)
            return message, "accepted", parts
        if lie == "clock_ahead":
            task = bytes.fromhex(args["task"])
            self.require(args["wall_ns"] > self.clocks[target].now() + MAX_CLOCK_AHEAD_NS, f"{args['wall_ns']} is not ahead")
            message = crafter.field_write(whole_state, task, args["field"], args["wall_ns"], args["counter"], STRANGER, "")
            return message, "refused", frozenset()
        if lie == "not_canonical":
            self.require(args.get("spoiling") in getattr(crafter, "spoilings", ()), f"no spoiling {args.get('spoiling')!r}")
            return crafter.spoil(whole_state, args["spoiling"]), "refused", frozenset()
        genuine = self.genuine(whole_state, args.get("message"), args.get("source"))
        self.require(args["how"] in ("list_id", "field_clock", "field_counter", "member_claim"), f"unknown {args['how']!r}")
        self.require_far(target, args["peer"], args["counter"])
        return crafter.tamper(genuine, whole_state, args["how"], args["peer"], args["counter"]), "refused", frozenset()

test_tasklist_machine = machine_test(TaskListMachine)
