"""The node core as an OS process: ``python -m implementations.transport.mesh_node --data DIR`` (``mbt node``).

The program runs ``implementations.node.Node`` (gossip, anti-entropy, replay protection)
over QUIC with ``node_host``, carrying one task list (``implementations.tasklist.TaskList``)
on a logged topic and, when the node is a member of a signing group, a threshold signer and
coordinator (``implementations.threshold``) whose envelopes ride on the node. Files in the
data directory: the identity seed and TLS certificate (``node_host``), ``node.db`` (the
node's own operations, its ``Store``), ``signer.db`` and ``coordinator.db`` (the cores'),
and ``mesh.json``, the settings ``join`` gave it. The group's Kaspa node is a ledger file
shared by the group's processes (``implementations.ledger_file``).

**Joining.** A node starts alone and waits for ``join`` (a control operation): the members'
identity keys in order (a node's index in that list is its replica id in the task list),
where each listens (``directory``, a ``PeerAddress`` per key: the cluster gives fault-proxy
ports here), the task list's id, the anti-entropy period, the node's clock skew
(``clock_skew_ms``, default 0: added to the driver's clock) and, optionally, the signing group
(threshold, fee, fee mode, session timeout, daily limit, ledger file). ``join`` writes them
to ``mesh.json`` before it answers, so a node that crashes (SIGKILL) and starts again on the
same directory is at once a member again: its ``Node`` re-applies its own operations from
``node.db`` and learns the rest from its peers by anti-entropy.

**Operations** (control ``op``; every answer is JSON and carries the node's clock ``now``
in ns and, for task-list operations, ``holds``: per origin key, the seq ranges of the
operations the node held *before* it acted, so a checker can run the model on exactly the
history the node saw): ``add_task``, ``claim``, ``complete``, ``remove_task``,
``set_field``, ``move`` (``outcome`` is ``"ok"`` or the refusal's kind; an acknowledged
operation is committed to ``node.db`` before the answer), ``snapshot`` (holds and the task
list's value, read at one instant), ``submit_event`` (a signing session, as coordinator),
``signing`` (the coordinator's requests, the signer's answers and reservations), ``info``,
``reset`` (forget everything but the identity: harnesses reuse processes between runs),
``arrivals`` (with ``record_arrivals`` in ``join``: when this node took each other node's
operation, by operation id, which task-list answers carry as ``op``: propagation latency).

**Metrics** (``metrics.NodeMetrics``): gossip messages by kind and replays refused come from
the node's verdicts (``take_verdicts``); sessions by outcome and their durations from the
coordinator's requests leaving ``Pending``/``Approved``; partial signatures are the valid
member signatures the coordinator accepted.

Datagrams a node addresses to itself (a coordinator proposing to its own signer) are handled
in the process at once, never sent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import blake3

from implementations import pskt
from implementations.ledger_file import SharedLedger
from implementations.limits import MAX_MESH_MEMBERS, MAX_RECORDED_ARRIVALS
from implementations.node import Node, NodeConfig
from implementations.node.identity import ED25519
from implementations.node.identity import peer_id as peer_id_of
from implementations.policy import Policy
from implementations.storage import Store
from implementations.tasklist import TaskList, TaskRefused
from implementations.threshold import Coordinator, EventRefused, GroupConfig, Signer, decode_answer, decode_proposal
from implementations.threshold_envelope import decode_envelope
from implementations.transport.driver import NS_PER_SECOND
from implementations.transport.endpoint import PeerAddress
from implementations.transport.identity import Ed25519Identity

SETTINGS_FILE = "mesh.json"
FEE_MODES = {"recipient": pskt.RecipientPays(), "signers": pskt.SignersPay(), "split": pskt.Split(1, 2)}
ALIVE = ("Pending", "Approved")
#: Self-addressed datagrams handled in one call before the process gives up (a loop is a bug).
MAX_LOCAL_ROUNDS = 64

TICK_PERIOD_NS = 100_000_000
KIND_NAMES = {"node.op": "op", "node.digest": "digest", "node.repair": "repair", "node.beacon": "beacon", "node.igra": "igra"}


def topic_of(list_id: bytes) -> str:
    return "tasklist/" + list_id.hex()


class NodeIdentity(Ed25519Identity):
    """The one Ed25519 key of a node process: its transport identity, its node identity (PeerId),
    its task-list agent key and its signing-group key."""

    scheme = ED25519

    @property
    def peer_id(self) -> bytes:
        return peer_id_of(self.public_key)

    @property
    def signing_key(self):
        return self._key

    @property
    def seed(self) -> bytes:
        return bytes(self._key)


class GivenTime:
    """The ``Clock`` of the task list and the policy: the ``now`` of the call being handled."""

    def __init__(self) -> None:
        self.value = 0

    def now(self) -> int:
        return self.value


class TaskListApp:
    """The task list as the node's application of its topic: an operation's data is a delta."""

    def __init__(self, tasks: TaskList) -> None:
        self.tasks = tasks

    def apply(self, data: bytes) -> None:
        self.tasks.apply_delta(data)


def tasks_json(tasks: TaskList) -> list:
    """The task list's value as JSON: ``[task, title, description, assignee, priority, [state, agent, ts_ms]]``."""
    out = []
    for task, title, description, assignee, priority, (state, *who) in tasks.value():
        checkbox = [state] if state == "empty" else [state, who[0].hex(), who[1]]
        out.append([task.hex(), title, description, assignee.hex() if assignee is not None else None, priority, checkbox])
    return out


def check_settings(settings: dict) -> None:
    """``ValueError`` naming the first setting of a ``join`` that does not fit."""

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise ValueError(f"join: {what}")

    def is_hex(value: Any, size: int | None = None) -> bool:
        try:
            return isinstance(value, str) and (size is None or len(bytes.fromhex(value)) == size)
        except ValueError:
            return False

    def is_int(value: Any, lo: int, hi: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi

    known = {"members", "directory", "list_id", "anti_entropy_ms", "clock_skew_ms", "group", "record_arrivals"}
    need(isinstance(settings, dict) and not set(settings) - known, f"unknown settings {sorted(set(settings) - known)}")
    members = settings.get("members")
    need(isinstance(members, list) and 0 < len(members) <= MAX_MESH_MEMBERS and all(is_hex(k, 32) for k in members),
         f"members is a list of 1 to {MAX_MESH_MEMBERS} Ed25519 keys in hex")
    need(len(set(members)) == len(members), "the members' keys must be distinct")
    directory = settings.get("directory")
    need(isinstance(directory, dict) and set(directory) <= set(members), "directory maps members' keys to addresses")
    for key, address in directory.items():
        try:
            PeerAddress.from_json(address)
        except ValueError as error:  # names what is wrong with the address
            need(False, f"directory: {error} (member {key[:16]})")
    need(is_hex(settings.get("list_id"), 32), "list_id is 32 bytes in hex")
    need(is_int(settings.get("anti_entropy_ms"), 10, 3_600_000), "anti_entropy_ms is 10 to 3,600,000")
    need(is_int(settings.get("clock_skew_ms", 0), -3_600_000, 3_600_000), "clock_skew_ms is within an hour")
    group = settings.get("group")
    if group is not None:
        need(isinstance(group, dict), "group is an object")
        need(is_int(group.get("m"), 1, len(members)), f"group.m is 1 to {len(members)}")
        need(is_int(group.get("fee"), 0, 2**63 - 1) and is_int(group.get("daily_limit"), 0, 2**64 - 1), "fee, daily_limit")
        need(group.get("fee_mode") in FEE_MODES, f"group.fee_mode is one of {sorted(FEE_MODES)}")
        need(is_int(group.get("session_timeout_ms"), 1, 3_600_000), "group.session_timeout_ms is 1 to 3,600,000")
        need(isinstance(group.get("ledger"), str) and Path(group["ledger"]).is_file(), "group.ledger is an existing ledger file")
        need(group.get("group_id") is None or is_hex(group["group_id"], 32), "group.group_id is 32 bytes in hex")


class MeshNodeCore:
    """The sans-I/O core ``node_host`` drives: a ``Node`` once joined, and what rides on it."""

    def __init__(self, identity: NodeIdentity, data_dir: Path) -> None:
        self.identity, self.data_dir = identity, Path(data_dir)
        self.clock = GivenTime()
        self.node: Node | None = None
        self.tasks: TaskList | None = None
        self.signer: Signer | None = None
        self.coordinator: Coordinator | None = None
        self.metrics = None
        self.driver = None
        self.keys: dict[bytes, bytes] = {}  # peer id -> identity key
        self.sessions: dict[str, int] = {}  # live requests of this coordinator -> when they were proposed
        self._counted: dict[str, int] = {}  # request id -> valid partial signatures already counted
        self.arrivals: dict[str, int] | None = None  # with record_arrivals: operation id -> when this node took it
        path = self.data_dir / SETTINGS_FILE
        self.settings: dict | None = json.loads(path.read_text()) if path.exists() else None

    # ----- what node_host plugs in ---------------------------------------------------------

    def attach(self, driver) -> None:
        self.driver = driver
        driver.public_key_of = self.public_key_of
        if self.settings is not None:
            self._set_directory(self.settings["directory"])

    def attach_metrics(self, sink) -> None:
        self.metrics = sink

    def public_key_of(self, peer: bytes) -> bytes:
        return self.keys.get(peer, peer)

    def _set_directory(self, directory: dict) -> None:
        self.keys = {peer_id_of(bytes.fromhex(key)): bytes.fromhex(key) for key in self.settings["members"]}
        if self.driver is not None:
            self.driver.directory = {peer_id_of(bytes.fromhex(key)): PeerAddress.from_json(address)
                                     for key, address in directory.items()}

    # ----- joining ---------------------------------------------------------------------------

    def join(self, now: int, settings: dict) -> None:
        """Check ``settings`` whole (a clear error, nothing written), keep them in ``mesh.json``, build the node."""
        check_settings(settings)
        members = [bytes.fromhex(key) for key in settings["members"]]
        if self.identity.public_key not in members:
            raise ValueError("join: this node's key is not among the members")

        def without_directory(value: dict) -> dict:
            return {k: v for k, v in value.items() if k != "directory"}

        if self.settings is not None and without_directory(self.settings) != without_directory(settings):
            raise ValueError("join: this node has joined another mesh (only the directory may change)")
        tmp = self.data_dir / (SETTINGS_FILE + ".tmp")
        tmp.write_text(json.dumps(settings, sort_keys=True))
        with open(tmp, "rb") as file:
            os.fsync(file.fileno())
        os.replace(tmp, self.data_dir / SETTINGS_FILE)
        self.settings = settings
        self._set_directory(settings["directory"])
        self._ensure(self.local(now))

    def _ensure(self, now: int) -> Node:
        """The node, built at the first call once joined (at start, after a restart)."""
        if self.node is not None:
            return self.node
        if self.settings is None:
            raise ValueError("this node has not joined a mesh yet (control op 'join')")
        s = self.settings
        self.clock.value = now
        members = [bytes.fromhex(key) for key in s["members"]]
        index = members.index(self.identity.public_key)
        self.tasks = TaskList(bytes.fromhex(s["list_id"]), self.identity.signing_key, self.clock, peer_id=index)
        group = s.get("group")
        if group is not None:
            shared = SharedLedger(group["ledger"])
            config = GroupConfig(tuple(members), group["m"], shared.address, group["fee"], FEE_MODES[group["fee_mode"]],
                                 group["session_timeout_ms"] * 1_000_000, bytes.fromhex(group.get("group_id", "")))
            policy = Policy(max_daily_volume=group["daily_limit"])
            view = shared.view(order_seed=index)
            self.signer = Signer(self.identity.seed, config, view, str(self.data_dir / "signer.db"), policy)
            self.coordinator = Coordinator(self.identity.seed, config, view, str(self.data_dir / "coordinator.db"))
            for request_id, expires_at in self.coordinator.store.execute(
                    "SELECT request_id, expires_at FROM requests WHERE state IN ('Pending', 'Approved')"):
                self.sessions[request_id] = expires_at - config.session_timeout_ns
            # Signatures the file already holds were counted by the process that kept them (one killed
            # before this one started): a late answer to one of its requests counts only what it adds.
            self._counted = dict(self.coordinator.store.execute(
                "SELECT request_id, COUNT(*) FROM partial_signatures GROUP BY request_id"))
        self.arrivals = {} if s.get("record_arrivals") else None
        period = s["anti_entropy_ms"] * 1_000_000
        config = NodeConfig(anti_entropy_period_ns=period, gap_pull_ns=period, beacons=False, adverts=False)
        self.node = Node(self.identity, [peer_id_of(m) for m in members], Store(str(self.data_dir / "node.db")), now,
                         config=config, apps={topic_of(bytes.fromhex(s["list_id"])): TaskListApp(self.tasks)},
                         envelope_sink=self._sink if self.signer is not None else None)
        self._account(now)
        return self.node

    def reset(self) -> None:
        """Forget everything but the identity: close and delete this node's files; it waits for ``join`` again.

        For test harnesses that reuse processes: the next mesh must use another task list and
        group id, so that what is still in flight from the last one is refused, not taken."""
        if self.node is not None:
            self.node.store.close()
        for core in (self.signer, self.coordinator):
            if core is not None:
                core.node.shared.close()
                core.close()
        for name in ("node.db", "signer.db", "coordinator.db", SETTINGS_FILE):
            for suffix in ("", "-wal", "-shm"):
                (self.data_dir / (name + suffix)).unlink(missing_ok=True)
        self.node = self.tasks = self.signer = self.coordinator = self.settings = None
        self.keys, self.sessions, self._counted = {}, {}, {}
        if self.driver is not None:
            self.driver.directory = {}

    # ----- the sans-I/O core -------------------------------------------------------------------

    def local(self, now: int) -> int:
        """This node's clock: the driver's, offset by the ``clock_skew_ms`` it joined with (clocks of real
        machines disagree; a harness gives each node its own skew)."""
        return now + (self.settings or {}).get("clock_skew_ms", 0) * 1_000_000

    def handle(self, data: bytes, now: int) -> list:
        now = self.local(now)
        node = self._ensure(now)
        self.clock.value = now
        return self._settle(node.handle(data, now), now)

    def tick(self, now: int) -> list:
        if self.settings is None:
            return []
        now = self.local(now)
        node = self._ensure(now)
        self.clock.value = now
        out = node.tick(now)
        if self.coordinator is not None:
            self.signer.tick(now)
            self.coordinator.tick(now)
        return self._settle(out, now)

    def next_deadline(self, now: int) -> int:
        return now + TICK_PERIOD_NS

    def _settle(self, outgoing: list, now: int) -> list:
        """Handle what the node sent itself; account for every verdict; return what goes out."""
        node = self.node
        out = []
        for _ in range(MAX_LOCAL_ROUNDS):
            local = [data for peer, data in outgoing if peer == node.peer_id]
            out.extend((peer, data) for peer, data in outgoing if peer != node.peer_id)
            if not local:
                break
            outgoing = [pair for data in local for pair in node.handle(data, now)]
        else:
            raise RuntimeError(f"a node kept sending itself datagrams for {MAX_LOCAL_ROUNDS} rounds")
        self._account(now)
        return out

    def _account(self, now: int) -> None:
        verdicts = self.node.take_verdicts()
        if self.arrivals is not None:
            for verdict in verdicts:
                if verdict.kind == "node.op" and verdict.outcome == "accepted":
                    self.arrivals[verdict.msg_id.hex()] = now
            while len(self.arrivals) > MAX_RECORDED_ARRIVALS:
                del self.arrivals[next(iter(self.arrivals))]
        if self.metrics is not None:
            for verdict in verdicts:
                if verdict.outcome in ("accepted", "duplicate"):
                    self.metrics.gossip(KIND_NAMES.get(verdict.kind, verdict.kind or "unknown"))
                elif verdict.outcome == "replayed":
                    self.metrics.replay_refused()
                    self.metrics.message_refused()
                else:
                    self.metrics.message_refused()
        if self.coordinator is not None:
            for request_id, started in list(self.sessions.items()):
                state = self.coordinator.request_state(request_id)
                if state not in ALIVE:
                    del self.sessions[request_id]
                    if self.metrics is not None:
                        self.metrics.session_finished(state.lower(), max(0, now - started) / NS_PER_SECOND)

    def _sink(self, role: str, envelope: bytes, now: int) -> list[tuple[bytes, str, bytes]]:
        """An envelope for this node's signer or coordinator: what the core answers, addressed to members' nodes."""
        if role == "signer":
            answers = self.signer.handle(envelope, now)
            return [(peer_id_of(to), "coordinator", data) for to, data in answers]
        answers = self.coordinator.handle(envelope, now)
        answer = decode_answer(decode_envelope(envelope).payload)
        if answer.accept and self.metrics is not None:
            valid = self.coordinator.store.execute(  # the coordinator keeps valid member signatures only
                "SELECT COUNT(*) FROM partial_signatures WHERE request_id = ?", (answer.request_id,)).fetchone()[0]
            counted = self._counted.get(answer.request_id, 0)
            for _ in range(valid - counted):
                self.metrics.partial_signature()
            self._counted[answer.request_id] = valid
        return [(peer_id_of(to), "signer", data) for to, data in answers]

    # ----- operations ----------------------------------------------------------------------------

    def holds(self) -> dict[str, list]:
        topic = topic_of(self.tasks.list_id)
        return {origin.hex(): ranges for origin, ranges in self.node.holds(topic).items()}

    def publish_tasks(self, now: int) -> tuple[int, list]:
        """Publish the task list's one new delta as the node's next operation (committed first)."""
        deltas = self.tasks.take_deltas()
        if len(deltas) != 1:
            raise RuntimeError(f"a task-list operation made {len(deltas)} deltas, not one")
        published = self.node.publish(topic_of(self.tasks.list_id), deltas[0], now)
        self.last_published = published.msg_id.hex()
        return published.seq, self._settle(published.outgoing, now)

    def task_operation(self, now: int, name: str, *args: Any) -> tuple[dict, list]:
        self._ensure(now)
        self.clock.value = now
        answer: dict[str, Any] = {"now": now, "holds": self.holds()}
        try:
            result = getattr(self.tasks, name)(*args)
        except TaskRefused as refusal:
            answer["outcome"] = refusal.kind
            return answer, []
        answer["outcome"] = "ok"
        if isinstance(result, bytes):
            answer["task"] = result.hex()
        answer["seq"], out = self.publish_tasks(now)
        answer["op"] = self.last_published
        return answer, out

    def snapshot(self, now: int) -> dict:
        self._ensure(now)
        return {"now": now, "holds": self.holds(), "tasks": tasks_json(self.tasks)}

    def submit_event(self, now: int, external_id: str, destination: str, amount: int, reason: str | None,
                     timestamp: int | None) -> tuple[dict, list]:
        """Coordinate a signing session for the event (its ``timestamp``, the sender's claim, defaults to now)."""
        node = self._ensure(now)
        if self.coordinator is None:
            raise ValueError("submit_event: this node is in no signing group")
        metadata = (("reason", reason),) if reason is not None else ()
        event = pskt.Event("hyperlane", external_id, destination, amount, metadata, now if timestamp is None else timestamp)
        try:
            request_id, proposals = self.coordinator.submit_event(event, now)
        except (EventRefused, pskt.TemplateRefused) as refused:
            return {"now": now, "refused": str(refused)}, []
        self.sessions[request_id] = now
        out = []
        for to, data in proposals:
            out += node.send_envelope(peer_id_of(to), "signer", data, now)
        return {"now": now, "request_id": request_id, "event": pskt.event_hash(event).hex()}, self._settle(out, now)

    def signing(self, now: int) -> dict:
        """What this member's coordinator and signer hold, for checkers and operators."""
        self._ensure(now)
        if self.coordinator is None:
            return {"now": now, "requests": [], "answers": [], "reservations": []}
        db = self.coordinator.store
        requests = []
        for request_id, event, proposal, n_inputs, expires_at, state in db.execute(
                "SELECT request_id, event_hash, proposal, n_inputs, expires_at, state FROM requests ORDER BY seq"):
            decoded = decode_proposal(proposal)
            acks = db.execute("SELECT member, accept FROM acks WHERE request_id = ?", (request_id,)).fetchall()
            sigs = db.execute("SELECT input_index, public_key FROM partial_signatures WHERE request_id = ? ORDER BY rowid",
                              (request_id,)).fetchall()
            used = self.coordinator.final_signers(request_id)
            requests.append({
                "request_id": request_id, "event": event.hex(), "template": decoded.template_hash.hex(), "n_inputs": n_inputs,
                "inputs": [[utxo.txid.hex(), utxo.index] for utxo in decoded.template.inputs],
                "amount": decoded.event.amount,
                "expires_at": expires_at, "state": state,
                "acks": [[member.hex(), bool(accept)] for member, accept in acks],
                "signatures": [[i, key.hex(), True] for i, key in sigs],  # stored only when valid
                "final_signers": None if used is None else [[key.hex() for key in keys] for keys in used],
            })
        answers = []
        for request_id, event, template, answer, approved in self.signer.store.execute(
                "SELECT request_id, event_hash, template, answer, approved FROM answers"):
            decoded = decode_answer(answer)
            answers.append({"request_id": request_id, "event": event.hex(), "accept": decoded.accept, "reason": decoded.reason,
                            "template": blake3.blake3(template).hexdigest() if template is not None else None,
                            "approved": bool(approved)})
        reservations = [list(row) for row in self.signer.store.execute("SELECT request_id, day, amount, state FROM reservations")]
        return {"now": now, "requests": requests, "answers": answers, "reservations": reservations}

    def info(self, now: int) -> dict:
        return {"now": now, "public_key": self.identity.public_key.hex(), "peer_id": self.identity.peer_id.hex(),
                "joined": self.settings is not None, "live_sessions": len(self.sessions),
                "counts": dict(self.node.counts) if self.node is not None else {},
                "signatures_verified": self.node.verifier.checked if self.node is not None else 0}

    def take_arrivals(self) -> dict[str, int]:
        """With ``record_arrivals``: when this node took each operation of another node since the last call."""
        arrivals, self.arrivals = self.arrivals or {}, {} if self.arrivals is not None else None
        return arrivals


def _operations() -> dict:
    def join(core: MeshNodeCore, now: int, **settings: Any):
        core.join(now, settings)
        return core.info(core.local(now)), []

    def task(name: str, *fields: str):
        def operation(core: MeshNodeCore, now: int, **args: Any):
            unknown = set(args) - set(fields)
            if unknown:
                raise TypeError(f"{name}: unknown arguments {sorted(unknown)}; expected {list(fields)}")
            values = []
            for field in fields:
                value = args.get(field)
                if field == "task":
                    try:
                        value = bytes.fromhex(value)
                    except (TypeError, ValueError):
                        raise ValueError(f"{name}: task must be a task id in hex, got {value!r:.80}") from None
                if field == "value" and args.get("field") == "assignee" and value is not None:
                    try:
                        value = bytes.fromhex(value)
                    except (TypeError, ValueError):
                        raise ValueError(f"{name}: assignee must be an agent id in hex, got {value!r:.80}") from None
                if field == "index" and type(value) is not int:
                    raise ValueError(f"{name}: index must be an int, got {value!r:.80}")
                values.append(value)
            return core.task_operation(now, name, *values)

        return operation

    def on_local_clock(operation):
        return lambda core, now, **args: operation(core, core.local(now), **args)

    operations = {
        "add_task": task("add_task", "title", "description"),
        "claim": task("claim", "task"),
        "complete": task("complete", "task"),
        "remove_task": task("remove_task", "task"),
        "set_field": task("set_field", "task", "field", "value"),
        "move": task("move", "task", "index"),
        "snapshot": lambda core, now: (core.snapshot(now), []),
        "submit_event": lambda core, now, external_id, destination, amount, reason=None, timestamp=None: core.submit_event(
            now, external_id, destination, amount, reason, timestamp),
        "signing": lambda core, now: (core.signing(now), []),
        "info": lambda core, now: (core.info(now), []),
        "reset": lambda core, now: (core.reset(), []),
        "arrivals": lambda core, now: (core.take_arrivals(), []),
    }
    return {"join": join, **{name: on_local_clock(operation) for name, operation in operations.items()}}


def program():
    """The ``NodeProgram`` of a mesh node."""
    from implementations.transport.node_host import NodeProgram

    def make_core(identity: NodeIdentity, data_dir: Path) -> MeshNodeCore:
        return MeshNodeCore(identity, data_dir)

    return NodeProgram(
        make_core=make_core,
        operations=_operations(),
        tick_period_ns=TICK_PERIOD_NS,
        load_identity=NodeIdentity.load_or_create,
        attach=lambda core, driver: core.attach(driver),
    )


def main(argv: list[str] | None = None) -> int:
    from implementations.transport.node_host import main as host_main

    return host_main(program(), argv, prog="mbt node")


if __name__ == "__main__":
    # Run by ``python -m`` (or a zygote's ``runpy``), this file is ``__main__``: the module imported by
    # its name does the work, so the process runs the functions the project imports (a mutation
    # run's mutants of them too: mutmut activates a mutant only in the module of its name).
    from implementations.transport import mesh_node as named

    raise SystemExit(named.main())
