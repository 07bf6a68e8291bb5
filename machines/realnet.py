"""The real network: node processes over QUIC behind a fault proxy, checked against the same models.

3 to 5 mesh node processes (``implementations.transport.mesh_node``: the node core of
``mesh_tasklist``, a task list on it, a signer and a coordinator of one signing group, a
ledger file shared by the group) reach each other only through a fault proxy process
(``implementations.transport.proxy``). Rules: task-list operations on any node, signing
sessions (new events, and old events again at another coordinator), faucet coins, and
faults: drop, duplicate, reorder and delay datagrams on one link or all, partitions into
groups and one way, heal, SIGKILL of a node or its clean shutdown and its restart on its files, real time
passing, and an impostor: a peer outside the mesh that dials a node over QUIC and breaks the
transport's rules (a proof of a member's key signed by another key, a frame header over
``MAX_FRAME_BYTES``, data on a second stream), which the node must refuse, naming what is
wrong. ``quiesce`` clears every fault, restarts every node that is down and waits, each wait
bounded, until the mesh is quiet.

Two backends give the machine its mesh: ``processes`` (``machines.adapters.node_processes``: the nodes and
the proxy as OS processes on the real clock, what an operator runs) and ``in-process``
(``machines.adapters.mesh_in_process``: the same programs, ``node_host.run_node`` of ``mesh_node`` and
``proxy.serve``, in one trio loop of the test process on a mock clock: time passes only when the machine
lets it, a kill cancels the node's tasks, every node is this process; a run costs a second of CPU, and a
mutation run's mutants of the node program are active in it). The backend runs what must happen where the
nodes live (``run``: a wait, an impostor's dial).

Real time and real sockets decide what a node has seen when it acts, so the machine checks
each node against the model on *the history that node held*, which every answer reports
(Jepsen's way: record what happened, then check it), and checks only what is deterministic
for a correct node:

* every task-list operation's outcome (a refusal's kind, the task id) is the model's on the
  operations the node held when it acted; an acknowledged operation is recorded with the
  model's parts;
* after every step, every node's value equals the model's value over the operations it holds;
  a node asked to shut down exits by itself with status 0; a restarted node holds every operation it
  acknowledged before it was killed or stopped;
* after ``quiesce``, every node holds every acknowledged operation and shows the model's
  value over all of them; every signing session has ended, and its end is one
  ``models.threshold`` allows for the answers its coordinator recorded: finalized only when
  every input had ``m`` counting member keys, with the first ``m`` of them in group key order;
  rejected only after more than ``n - m`` refusals; expired only when it never was ready, and (on a
  backend whose clock moves only when the machine lets it: ``timely``) never when it was opened with every
  member up and every link clear and nothing was disturbed until it ended (every member answers then:
  on such a backend, by the end of the step that opened it, checked then); the
  ledger holds exactly the finalized requests' transactions, and no event is paid twice
  (``models.threshold_requests.pay``); no signer signed two templates for one event, every template a
  signer signed is the one its coordinator proposed, no signer gave back (as expired) the
  reservation of a request the group paid, and no signer holds reservations above the daily
  limit on any day (paid requests it approved keep theirs);
* after ``quiesce``, every node's Prometheus page, scraped over HTTP from the port its ready line
  names and read with ``prometheus_client``'s text parser (as an operator's scraper reads it),
  agrees with what the machine knows, counted per node *process* (a restarted node's counters
  start at zero; a pooled process counts from earlier runs, so the machine counts from the
  run's start): ``mbt_sessions_total{outcome}`` is, per end state, the requests the node
  coordinated that ended in that process (exactly, for a process that has run since the
  start; for a restarted one, at least those it opened or found alive and at most those plus
  the ones alive before its kill and ended when the machine first looked after the restart);
  the duration histogram counts as many; ``mbt_partial_signatures_total`` is the valid member
  signatures its requests hold (a restarted process: those its requests gained since it
  started, at least those gained since the machine first looked after the restart, at most
  those since it last looked before the kill); ``mbt_gossip_messages_total`` counts at least every other
  node's operation it holds (``op``) and every answer and proposal it took (``igra``); its
  resident-memory gauge is the process collector's reading of the same quantity, within a
  quarter; no counter decreases between two scrapes of one process; the control channel's ``status``
  names the process the machine started, and its ``metrics`` the same sessions, with no more
  replays refused than messages refused; and every node comes to hold a proven connection to
  every other, its ``mbt_peers_online`` gauge to count them.

An operator's mistakes (inside the adversary rule) are refused naming what is wrong and change nothing:
every join with one setting spoiled (the settings file unchanged), malformed operations, and the cluster's
own (no nodes or more than 64, a mesh past its pool, clock skews not one per node: the cluster as it was,
every node still in its mesh).

Each node's clock has its own skew (some by more than a session lasts): the nodes' clocks
disagree as real machines' do, and every check above still holds. The world the machine asks for is
checked to be the one it gets: at the start every node reaches every other through the proxy's link named
for the pair (so the faults happen), each clock is at its skew (in process, where it can be read exactly),
and a node that is down keeps its QUIC port until it restarts there.

Task and event arguments are indices (the k-th task added, the k-th event), never ids, which
depend on the clock: a trace replays against other timings and still applies.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

import attrs
import blake3
import pytest
import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule
from prometheus_client.parser import text_string_to_metric_families

from harness import faults, guard, profiles
from harness.machine import Observation, TracedMachine
from harness.network import INDEX
from harness.registry import implementations
from harness.runner import run_machine
from implementations import limits, pskt
from implementations.transport import tls
from implementations.transport.cluster import FUNDS, SIGNING_DEFAULTS
from implementations.transport.control import ControlError
from implementations.transport.endpoint import MESSAGE_STREAM, PeerAddress, TransportError, open_endpoint
from implementations.transport.framing import HEADER
from implementations.transport.identity import Ed25519Identity
from implementations.transport.process import bound_sockets, socket_inodes
from machines.tasklist import DESCRIPTIONS, TITLES, short
from models import tasklist
from models import threshold as model
from models import threshold_requests as lifecycle
from models.clock import to_millis

ACTIONS = ("add_task", "add_task", "claim", "claim", "complete", "remove_task", "set_field", "move")
AMOUNTS = (50, 100, 200, 300, 500)
#: Clock skews of nodes, ms: most agree; some are a little off, some by more than a signing session lasts.
SKEWS_MS = st.sampled_from([0, 0, 0, 20, -20, 1_500, -1_500])
#: Real time a ``wait`` lets pass (a committed trace may wait longer, up to 10 s: a partition
#: that outlasts ``UNANSWERED_SECONDS`` drops connections, so only anti-entropy repairs it).
WAITS_MS = (10, 50, 200, 1_000)
FAULTS = {"drop": {"drop": 0.3}, "duplicate": {"duplicate": 0.3}, "reorder": {"reorder": 0.5},
          "delay": {"delay": [0.005, 0.05]}, "calm": {}}
#: How far apart two node processes' clocks may be beyond their skews, ms (each reads the wall clock once when it
#: starts, then runs on its monotonic clock).
SKEW_SLACK_MS = 5
#: Bounds of the waits of ``quiesce``: every operation everywhere, every session ended.
QUIET_SECONDS = 30.0
#: Steps between two ``quiesce`` (each waits for the mesh, about a second): most steps run on a busy mesh.
QUIESCE_EVERY = 6
EVENT_START_NS = 1_700_000_000 * 1_000_000_000
#: How an impostor breaks the transport's rules, and what the node's refusal must name.
IMPOSTURES = {
    "forged_proof": "signature does not verify",  # claims a member's key, proves with its own
    "oversized_frame": "exceeds MAX_FRAME_BYTES",  # a proven stranger announces a frame over the limit
    "second_stream": "a connection carries one stream",  # a proven stranger writes on another stream
}
#: A join a node already in a mesh must refuse: ``(setting path, the value put there, its refusal)``. The value
#: may be a function of the settings the node joined with (of the whole settings, with the empty path); the
#: refusal is the error's whole text after ``op: ValueError: `` (``{n}``: the number of members), or its
#: beginning if it ends with ``*``, or a function of the spoiled settings giving the whole text. A value inside a
#: setting's range is refused too, for another reason
#: (``ANOTHER``: only the directory may change): each range is probed on both sides.
ANOTHER = "join: this node has joined another mesh (only the directory may change)"
MEMBERS = "join: members is a list of 1 to 256 Ed25519 keys in hex"
SESSION_TIMEOUT = "join: group.session_timeout_ms is 1 to 3,600,000"
LEDGER = "join: group.ledger is an existing ledger file"
JOIN_MISTAKES: dict[str, tuple[tuple, Any, Any]] = {
    "an-unknown-setting": (("colour",), 1, "join: unknown settings ['colour']"),
    "record-arrivals": (("record_arrivals",), True, ANOTHER),
    "members-not-a-list": (("members",), lambda s: ",".join(s["members"]), MEMBERS),
    "no-members": (("members",), [], MEMBERS),
    "one-member": ((), lambda s: {**s, "members": [own_key(s)], "directory": {}}, "join: group.m is 1 to 1"),
    "members-past-the-limit": (("members",), lambda s: s["members"] + stranger_keys(257 - len(s["members"])), MEMBERS),
    "members-at-the-limit": (("members",), lambda s: s["members"] + stranger_keys(256 - len(s["members"])), ANOTHER),
    "a-member-key-short": (("members",), lambda s: [*s["members"][:-1], s["members"][-1][:62]], MEMBERS),
    "a-member-key-not-hex": (("members",), lambda s: [*s["members"][:-1], "zz" * 32], MEMBERS),
    "a-member-key-a-number": (("members",), lambda s: [*s["members"][:-1], 7], MEMBERS),
    "a-member-twice": (("members",), lambda s: [*s["members"], s["members"][0]], "join: the members' keys must be distinct"),
    "directory-not-an-object": (("directory",), [], "join: directory maps members' keys to addresses"),
    "directory-of-a-stranger": (("directory",), lambda s: {**s["directory"], stranger_keys(1)[0]: {}},
                                "join: directory maps members' keys to addresses"),
    "directory-port-a-string": (("directory",), lambda s: {k: {**a, "port": str(a["port"])} for k, a in s["directory"].items()},
                                lambda s: port_refused(s["directory"])),
    "list-id-short": (("list_id",), lambda s: s["list_id"][:62], "join: list_id is 32 bytes in hex"),
    "list-id-another": (("list_id",), "22" * 32, ANOTHER),
    "anti-entropy-below": (("anti_entropy_ms",), 9, "join: anti_entropy_ms is 10 to 3,600,000"),
    "anti-entropy-lowest": (("anti_entropy_ms",), 10, ANOTHER),
    "anti-entropy-highest": (("anti_entropy_ms",), 3_600_000, ANOTHER),
    "anti-entropy-above": (("anti_entropy_ms",), 3_600_001, "join: anti_entropy_ms is 10 to 3,600,000"),
    "anti-entropy-a-bool": (("anti_entropy_ms",), True, "join: anti_entropy_ms is 10 to 3,600,000"),
    "no-skew": ((), lambda s: {k: v for k, v in s.items() if k != "clock_skew_ms"}, ANOTHER),
    "skew-an-hour-behind": (("clock_skew_ms",), -3_600_000, ANOTHER),
    "skew-past-an-hour-behind": (("clock_skew_ms",), -3_600_001, "join: clock_skew_ms is within an hour"),
    "skew-an-hour-ahead": (("clock_skew_ms",), 3_600_000, ANOTHER),
    "skew-past-an-hour-ahead": (("clock_skew_ms",), 3_600_001, "join: clock_skew_ms is within an hour"),
    "group-not-an-object": (("group",), [], "join: group is an object"),
    "group-m-zero": (("group", "m"), 0, "join: group.m is 1 to {n}"),
    "group-m-one": (("group", "m"), 1, ANOTHER),
    "group-m-all": (("group", "m"), lambda s: len(s["members"]), ANOTHER),
    "group-m-past-all": (("group", "m"), lambda s: len(s["members"]) + 1, "join: group.m is 1 to {n}"),
    "fee-negative": (("group", "fee"), -1, "join: fee, daily_limit"),
    "fee-zero": (("group", "fee"), 0, ANOTHER),
    "fee-i64-max": (("group", "fee"), 2**63 - 1, ANOTHER),
    "fee-past-i64": (("group", "fee"), 2**63, "join: fee, daily_limit"),
    "limit-negative": (("group", "daily_limit"), -1, "join: fee, daily_limit"),
    "limit-zero": (("group", "daily_limit"), 0, ANOTHER),
    "limit-u64-max": (("group", "daily_limit"), 2**64 - 1, ANOTHER),
    "limit-past-u64": (("group", "daily_limit"), 2**64, "join: fee, daily_limit"),
    "fee-mode-unknown": (("group", "fee_mode"), "both", "join: group.fee_mode is one of ['recipient', 'signers', 'split']"),
    "session-timeout-zero": (("group", "session_timeout_ms"), 0, SESSION_TIMEOUT),
    "session-timeout-one": (("group", "session_timeout_ms"), 1, ANOTHER),
    "session-timeout-an-hour": (("group", "session_timeout_ms"), 3_600_000, ANOTHER),
    "session-timeout-past-an-hour": (("group", "session_timeout_ms"), 3_600_001, SESSION_TIMEOUT),
    "ledger-missing": (("group", "ledger"), lambda s: s["group"]["ledger"] + ".gone", LEDGER),
    "ledger-not-a-path": (("group", "ledger"), 5, LEDGER),
    "group-id-short": (("group", "group_id"), lambda s: s["group"]["group_id"][:62], "join: group.group_id is 32 bytes in hex"),
    "group-id-none": (("group", "group_id"), None, ANOTHER),
    "not-a-member": (("members",), lambda s: [k for k in s["members"] if k in s["directory"]],
                     "join: this node's key is not among the members"),
}
#: Operations a node must refuse, with the error's whole text (or its beginning, ending with ``*``).
OP_MISTAKES: dict[str, tuple[str, dict, str]] = {
    "unknown-operation": ("explode", {}, "op: KeyError: \"no operation 'explode'; known: *"),
    "task-not-hex": ("claim", {"task": "zz"}, "op: ValueError: claim: task must be a task id in hex, got 'zz'"),
    "task-a-number": ("complete", {"task": 7}, "op: ValueError: complete: task must be a task id in hex, got 7"),
    "an-unknown-argument": ("add_task", {"title": "t", "description": "d", "colour": 1},
                            "op: TypeError: add_task: unknown arguments ['colour']; expected ['title', 'description']"),
    "an-assignee-not-hex": ("set_field", {"task": "00" * 32, "field": "assignee", "value": "zz"},
                            "op: ValueError: set_field: assignee must be an agent id in hex, got 'zz'"),
    "an-assignee-a-number": ("set_field", {"task": "00" * 32, "field": "assignee", "value": 5},
                             "op: ValueError: set_field: assignee must be an agent id in hex, got 5"),
    "an-index-not-a-number": ("move", {"task": "00" * 32, "index": "2"}, "op: ValueError: move: index must be an int, got '2'"),
    "an-event-amount-a-string": ("submit_event", {"external_id": "e", "destination": "kaspatest:x", "amount": "10"},
                                 "op: ValueError: event amount must be an integer in [0, 18446744073709551615], got '10'"),
}

#: What the cluster itself (``implementations.transport.cluster``: ``mbt cluster``, and the pool of node processes
#: realnet's processes backend resets for each run) must refuse, naming it, before it starts, restarts, resets or
#: joins anything: ``(a call on the running cluster, its refusal)``, both functions of the cluster. A cluster of 1
#: or 64 nodes is taken (constructed, not started: nothing runs until ``with``).
CLUSTER_MISTAKES: dict[str, tuple[Any, Any]] = {
    "no-nodes": (lambda c: type(c)(c.directory / "never", 0), lambda c: "a cluster has 1 to 64 nodes, not 0"),
    "nodes-past-64": (lambda c: type(c)(c.directory / "never", 65), lambda c: "a cluster has 1 to 64 nodes, not 65"),
    "an-empty-mesh": (lambda c: c.reset(0), lambda c: f"a mesh of 0 nodes from a pool of {len(c.pool)}"),
    "a-mesh-past-the-pool": (lambda c: c.reset(len(c.pool) + 1),
                             lambda c: f"a mesh of {len(c.pool) + 1} nodes from a pool of {len(c.pool)}"),
    "reset-skews-one-short": (lambda c: c.reset(c.size, [0] * (c.size - 1)),
                              lambda c: f"{c.size - 1} clock skews for {c.size} nodes"),
    "cluster-skews-one-short": (lambda c: type(c)(c.directory / "never", 3, skews_ms=[0, 0]),
                                lambda c: "2 clock skews for 3 nodes"),
    "join-skews-one-over": (lambda c: c.join([0] * (c.size + 1)), lambda c: f"{c.size + 1} clock skews for {c.size} nodes"),
}


def own_key(settings: dict) -> str:
    """The key of the node these join settings are for: the member its directory does not name."""
    return next(key for key in settings["members"] if key not in settings["directory"])


def port_refused(directory: dict) -> str:
    """A join's refusal of a directory whose first address has its port as a string."""
    key, address = next(iter(directory.items()))
    port = address["port"]
    return (f"join: directory: not a peer address: ValueError(\"a peer address's port is an integer from 1 to 65535, "
            f"got {port!r}\") (member {key[:16]})")


def refused_as(text: str, expected: str) -> bool:
    """Whether a refusal's ``text`` is ``expected``, or begins with it when it ends with ``*``."""
    return text.startswith(expected[:-1]) if expected.endswith("*") else text == expected


def data_directory(process) -> Path:
    """The data directory a node (a process or the in-process backend's node) was started on: its ``--data``."""
    return Path(process.args[process.args.index("--data") + 1])


def stranger_keys(count: int) -> list[str]:
    """``count`` distinct Ed25519-sized keys in hex that no node has."""
    return [blake3.blake3(b"stranger %d" % k).hexdigest() for k in range(count)]


def spoiled(settings: dict, path: tuple, value: Any) -> dict:
    """A copy of ``settings`` with ``value`` (or ``value(settings)``) at ``path``."""
    copy = json.loads(json.dumps(settings))
    new = value(copy) if callable(value) else value
    if not path:
        return new
    where = copy
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = new
    return copy


#: How long an impostor's connection may stay open before the node is taken to have accepted it.
#: A node refuses within milliseconds on loopback (15 to 71 ms over the three impostures, 5 dials
#: each, at a load average of 4.5 on 2 cores): 3 s leaves room for a loaded machine, and is what
#: every replay of a catalogued realnet bug waits (10 s before; nine such replays in the suite).
IMPOSTOR_WAIT_SECONDS = 3
#: The impostor's own key: fixed, so a trace replays alike.
IMPOSTOR_SEED = blake3.blake3(b"realnet impostor").digest()
LIMIT = SIGNING_DEFAULTS["daily_limit"]
#: The ends of a signing session (``models.threshold``), as a node's ``mbt_sessions_total`` labels them.
OUTCOMES = tuple(state.lower() for state in (model.FINALIZED, model.REJECTED, model.EXPIRED, model.ABORTED))
#: How long after quiescence every node may take to hold a proven connection to every other: each
#: sends a digest to one peer in turn every ``ANTI_ENTROPY_MS`` (0.5 s), dialing it if need be.
PEERS_SECONDS = 10.0
#: How long a node's ``mbt_peers_online`` (set at each tick, every 0.1 s) may lag its endpoint.
GAUGE_SECONDS = 2.0
SCRAPE_TIMEOUT_SECONDS = 5.0
#: The families a node's page serves (``implementations.transport.metrics``), with their types.
FAMILIES = {"mbt_sessions": "counter", "mbt_partial_signatures": "counter", "mbt_session_duration_seconds": "histogram",
            "mbt_gossip_messages": "counter", "mbt_replays_refused": "counter", "mbt_messages_refused": "counter",
            "mbt_peers_online": "gauge", "mbt_resident_memory_bytes": "gauge", "process_resident_memory_bytes": "gauge",
            "process_cpu_seconds": "counter", "process_start_time_seconds": "gauge"}
#: ``mbt_resident_memory_bytes`` (``/proc/self/statm``) and ``process_resident_memory_bytes``
#: (``/proc/self/stat``) read one quantity microseconds apart: they agree within this share.
RSS_TOLERANCE = 0.25


def sample_key(name: str, labels: dict[str, str]) -> str:
    """A sample as a Prometheus page writes it: ``name{label="value",...}``, labels sorted."""
    inside = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{name}{{{inside}}}" if inside else name


def scrape(port: int) -> tuple[dict[str, float], set[str], dict[str, str]]:
    """A node's ``/metrics`` over HTTP, parsed by ``prometheus_client``'s text parser: every sample by
    ``sample_key``, the keys of those that never decrease within a process (counters, histograms), and
    the type of every family."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS) as response:
        page = response.read().decode()
    samples: dict[str, float] = {}
    monotonic: set[str] = set()
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(page):
        types[family.name] = family.type
        for sample in family.samples:
            key = sample_key(sample.name, sample.labels)
            samples[key] = sample.value
            if family.type in ("counter", "histogram"):
                monotonic.add(key)
    return samples, monotonic, types


def labelled(samples: dict[str, float], name: str, label: str) -> dict[str, float]:
    """The samples of ``name`` by the value of their one label ``label``."""
    prefix = f'{name}{{{label}="'
    return {key[len(prefix):-2]: value for key, value in samples.items() if key.startswith(prefix)}


@attrs.define
class NodeProcess:
    """What the machine knows of one node process, whose counters start at zero when it starts."""

    pid: int
    #: The samples when the machine started (a pooled process counts from earlier runs); none for a restarted one.
    baseline: dict[str, float]
    #: Whether it has run since the machine started: every request of the run at the node is its own.
    whole_run: bool
    #: The last scrape of it, and which of its samples never decrease.
    last: dict[str, float] = attrs.field(factory=dict)
    monotonic: set[str] = attrs.field(factory=set)
    #: Requests it opened (``submit_event``), and those alive in its files when it started (it counts both as they end).
    opened: set[str] = attrs.field(factory=set)
    inherited: set[str] = attrs.field(factory=set)
    #: Alive before the kill, ended when the machine first looked after the restart: counted by it or by the last.
    unsure: set[str] = attrs.field(factory=set)
    #: Answers its signer held when the machine first looked (the ones after are its own).
    answers_before: int = 0
    #: Valid member signatures its coordinator's requests held when the machine last looked before the kill
    #: and first looked after the restart: those it kept itself are between the total now less the second
    #: and the total now less the first.
    signatures_at_kill: int = 0
    signatures_at_restart: int = 0

    def counted(self, samples: dict[str, float], key: str) -> float:
        """What this process counted of ``key`` since the machine knows it."""
        return samples.get(key, 0.0) - self.baseline.get(key, 0.0)


def signatures_held(requests: list[dict]) -> int:
    """The valid member signatures a node's ``signing`` answer says its requests hold."""
    return sum(len(r["signatures"]) for r in requests)


def task_view(item: list) -> tasklist.TaskView:
    """A node's JSON task (``mesh_node.tasks_json``) as the model's ``TaskView``."""
    task, title, description, assignee, priority, (state, *who) = item
    checkbox = tasklist.Empty() if state == "empty" else {"claimed": tasklist.Claimed, "done": tasklist.Done}[state](
        bytes.fromhex(who[0]), who[1])
    return tasklist.TaskView(bytes.fromhex(task), title, description, bytes.fromhex(assignee) if assignee else None, priority,
                             checkbox)


class RealNetMachine(TracedMachine):
    name = "realnet"
    real_time = True
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", **{step: "operations" for step in (
        "add_task", "claim", "complete", "remove_task", "set_field", "move", "new_event", "resubmit", "fund")},
        "faults": "faults", "partition": "faults", "cut_one_way": "faults", "heal": "faults", "kill": "crash", "stop": "crash",
        "restart": "crash", "wait": "time", "quiesce": "sync", "impostor": "adversary", "mistakes": "adversary"}
    #: Each class's least share of the steps under ci: about half the least share measured against
    #: any implementation (harness.balance; the coverage table prints them): shares move when a
    #: merge reshuffles the derandomized search, or a test runs the machine with fewer examples.
    class_floors: ClassVar[dict[str, float]] = {"operations": 0.20, "sync": 0.03, "faults": 0.06, "time": 0.15, "crash": 0.02,
                                                "adversary": 0.02}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.cluster: Any = None
        self.directory: str | None = None
        self.agents: list[bytes] = []  # per node: its agent id = its PeerId
        self.peer_index: dict[bytes, int] = {}
        self.parts: dict[tuple[int, int], tuple] = {}  # (origin node, seq) -> the model's parts
        self.acked: list[set[int]] = []
        self.tasks: list[bytes] = []
        self.events: list[dict] = []
        self.event_index: dict[str, int] = {}  # event hash -> k (the k-th event)
        self.down: set[int] = set()
        self.blocked = False
        self.faulty: set[tuple[int, int]] = set()  # directed links with a fault on them (not ``calm``)
        # on a ``timely`` backend: (step, the backend's time) of every fault, partition, heal, kill, stop and restart,
        # and request id -> (step, time) of every request opened with every node up and every link clear
        self.disturbances: list[tuple[int, float]] = []
        self.calm_requests: dict[str, tuple[int, float]] = {}
        self.model_values: dict[frozenset, tuple] = {}
        self.quiet_at = 0  # the step of the last quiesce
        self.submitted_at: dict[tuple[int, int], int] = {}  # (node, event) -> the step it was first submitted there
        self.killed_at: dict[int, list[int]] = {}  # node -> the steps that killed it
        self.processes: dict[int, NodeProcess] = {}  # node -> what the machine knows of its process
        self.alive_before_kill: dict[int, set[str]] = {}  # node -> its requests alive just before its kill
        self.signatures_before_kill: dict[int, int] = {}  # node -> the signatures its requests held then

    # ----- set-up ---------------------------------------------------------------------------

    @initialize(nodes=st.sampled_from([3, 3, 4, 5]), seed=st.integers(0, 3), skews=st.lists(SKEWS_MS, min_size=5, max_size=5))
    def start(self, nodes: int, seed: int, skews: list[int]) -> None:
        self.do("start", nodes=nodes, seed=seed, skews_ms=skews[:nodes])

    def step_start(self, nodes: int, seed: int, skews_ms: list[int]) -> None:
        self.require(self.cluster is None, "already started")
        self.require(3 <= nodes <= 5, f"nodes={nodes} outside 3..5")
        self.require(len(skews_ms) == nodes and all(abs(s) <= 10_000 for s in skews_ms),
                     f"skews {skews_ms}: one per node, ±10 s at most")
        self.directory = tempfile.mkdtemp(prefix="mbt-realnet-", dir=faults.store_directory())
        self.backend = self.implementation.make_replica(0, None)
        self.cluster = self.backend.cluster(self.directory, nodes, seed, skews_ms)
        self.agents = [blake3.blake3(bytes.fromhex(key)).digest() for key in self.cluster.keys]
        for i, process in enumerate(self.cluster.nodes):  # a node's identity seed is its own: no one else reads it
            seed = data_directory(process) / Ed25519Identity.SEED_FILE
            mode = seed.stat().st_mode & 0o777
            assert mode == 0o600, f"node {i}'s identity seed {seed.name} has mode {mode:o}, not 600"
        self.peer_index = {agent: i for i, agent in enumerate(self.agents)}
        self.acked = [set() for _ in range(nodes)]
        for i in range(nodes):
            self.processes[i] = NodeProcess(self.status(i)["pid"], {}, whole_run=True)
            self.processes[i].baseline = self.look(i)
        self.check_loopback_only(range(nodes))
        self.check_links()
        self.check_skews(skews_ms)

    def check_links(self) -> None:
        """Every node reaches every other through the proxy (so that the faults the machine asks for happen): the
        port node i's directory gives for node j is the proxy's link named ``n{i}``, ``n{j}``; and no link is blocked
        (a pooled cluster's proxy is cleared between runs)."""
        described = self.cluster.proxy.call("stats")
        assert not described["blocked"], f"a new mesh starts with links blocked: {described['blocked']}"
        links = described["links"]
        keys, names = self.cluster.keys, self.cluster.names
        for i, joined in enumerate(self.cluster.joined):
            for j, key in enumerate(keys):
                if i != j:
                    port = joined["directory"][key]["port"]
                    assert links.get(str(port)) == [names[i], names[j]], (
                        f"node {i} reaches node {j} at port {port}, not through the proxy's link from {names[i]} to {names[j]}")

    def check_skews(self, skews_ms: list[int]) -> None:
        """Each node's clock is node 0's offset by the difference of their skews. On a ``timely`` backend exactly
        (within 1 ms: no time passes between reading the backend's clock and the node reading its own); on another,
        node ``i``'s clock, less its skew, read between two readings of node 0's, less its skew, lies between them
        (within ``SKEW_SLACK_MS``: node processes each read the wall clock once when they start)."""
        if self.backend.timely:
            offsets = []
            for i in range(len(skews_ms)):
                before = round(self.backend.now() * 1_000_000_000)
                offsets.append(self.cluster.op(i, "info")["now"] - before)
            for i, skew in enumerate(skews_ms):
                apart = (offsets[i] - offsets[0]) / 1_000_000
                assert abs(apart - (skew - skews_ms[0])) < 1, (
                    f"node {i}'s clock is {apart} ms from node 0's; their skews {skew} and {skews_ms[0]} ms say "
                    f"{skew - skews_ms[0]}")
            return

        def unskewed(i: int) -> int:
            return self.cluster.op(i, "info")["now"] - skews_ms[i] * 1_000_000

        slack = SKEW_SLACK_MS * 1_000_000
        for i in range(1, len(skews_ms)):
            before, mine, after = unskewed(0), unskewed(i), unskewed(0)
            assert before - slack <= mine <= after + slack, (
                f"node {i}'s clock, less its skew {skews_ms[i]} ms, is not between two readings of node 0's less its "
                f"skew {skews_ms[0]} ms: {(mine - before) / 1e6:+.1f} ms from the first, {(mine - after) / 1e6:+.1f} ms from "
                f"the second")

    def teardown(self) -> None:
        if self.cluster is not None:
            self.backend.release(self.cluster)
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _started(self) -> bool:
        return self.cluster is not None

    def up(self) -> list[int]:
        return [i for i in range(len(self.acked)) if i not in self.down]

    def _up(self, raw: int) -> int:
        up = self.up()
        return up[raw % len(up)]

    def require_up(self, node: int) -> None:
        self.require(self._started(), "the machine has not started")
        self.require(0 <= node < len(self.acked) and node not in self.down, f"node {node} is not up")

    # ----- histories, in the model's terms ----------------------------------------------------

    def history(self, node: int, holds: dict[str, list]) -> frozenset:
        parts: set = set()
        for origin, ranges in holds.items():
            index = self.peer_index.get(bytes.fromhex(origin))
            assert index is not None, f"node {node} holds operations of {origin[:16]}, which is no member"
            for lo, hi in ranges:
                for seq in range(lo, hi + 1):
                    assert (index, seq) in self.parts, f"node {node} holds operation {(index, seq)}, which no node acknowledged"
                    parts.update(self.parts[(index, seq)])
        return frozenset(parts)

    def model_value(self, history: frozenset) -> tuple:
        known = self.model_values.get(history)
        if known is None:
            known = self.model_values[history] = tasklist.value(history)
        return known

    def snapshots(self) -> dict[int, dict]:
        return {i: self.cluster.op(i, "snapshot") for i in self.up()}

    def observe(self) -> list[Observation]:
        if not self._started():
            return []
        observations = []
        for i, snap in self.snapshots().items():
            model_view, actual = self.model_value(self.history(i, snap["holds"])), tuple(map(task_view, snap["tasks"]))
            observations.append(Observation(f"node {i}", short(model_view), short(actual), model_view == actual))
        return observations

    def check(self) -> None:
        for observation in self.observe():
            assert observation.agrees, f"{observation.label} has {observation.implementation}, the model says {observation.model}"

    # ----- task-list operations -------------------------------------------------------------------

    def operate(self, node: int, operation: str, args: dict, model_outcome) -> dict:
        """Run ``operation`` on node ``node``; its outcome must be the model's on the history it held."""
        answer = self.cluster.op(node, operation, **args)
        outcome = model_outcome(self.history(node, answer["holds"]), answer["now"])
        if isinstance(outcome, tasklist.Refusal):
            assert answer["outcome"] == outcome.kind, (
                f"node {node}: {operation} {answer['outcome']!r}, the model refuses it as {outcome.kind!r}")
            return answer
        assert answer["outcome"] == "ok", f"node {node}: {operation} refused as {answer['outcome']!r}, the model accepts it"
        key = (node, answer["seq"])
        assert key not in self.parts and answer["seq"] not in self.acked[node], f"node {node} reused seq {answer['seq']}"
        self.parts[key] = tuple(outcome)
        self.acked[node].add(answer["seq"])
        return answer

    def _task(self, task: int) -> bytes:
        self.require(0 <= task < len(self.tasks), f"no task {task} (there are {len(self.tasks)})")
        return self.tasks[task]

    def step_add_task(self, node: int, title: str, description: str) -> None:
        self.require_up(node)
        made = []

        def model_outcome(history, now):
            task = blake3.blake3(title.encode() + self.agents[node] + to_millis(now).to_bytes(8, "little")).digest()
            made.append(task)
            return tasklist.add_task(history, node, task, title, description, now)

        answer = self.operate(node, "add_task", {"title": title, "description": description}, model_outcome)
        assert answer["task"] == made[0].hex(), (
            f"node {node}: add_task made {answer['task'][:16]}, BLAKE3 per SPEC is {made[0].hex()[:16]}")
        if made[0] not in self.tasks:
            self.tasks.append(made[0])

    @guard(lambda self: self._started())
    @rule(node=INDEX, task=INDEX, action=st.sampled_from(ACTIONS), title=st.sampled_from(TITLES),
          field=st.sampled_from(["title", "priority", "assignee"]), raw=st.integers(0, 255))
    def act(self, node: int, task: int, action: str, title: str, field: str, raw: int) -> None:
        """An agent on a node adds a task or acts on one (which the node may not hold yet: then the model says "not_found")."""
        node = self._up(node)
        if action == "add_task" or not self.tasks:
            self.do("add_task", node=node, title=title, description=DESCRIPTIONS[raw % len(DESCRIPTIONS)])
            return
        task = task % len(self.tasks)
        if action == "set_field":
            value = {"title": f"title {raw % 3}", "priority": raw, "assignee": None if raw % 4 == 0 else raw % len(self.acked)}
            self.do("set_field", node=node, task=task, field=field, value=value[field])
        elif action == "move":
            self.do("move", node=node, task=task, index=raw % 5)
        else:
            self.do(action, node=node, task=task)

    def step_claim(self, node: int, task: int) -> None:
        self.checkbox_step("claim", node, task)

    def step_complete(self, node: int, task: int) -> None:
        self.checkbox_step("complete", node, task)

    def checkbox_step(self, action: str, node: int, task: int) -> None:
        self.require_up(node)
        task_id = self._task(task)
        self.operate(node, action, {"task": task_id.hex()},
                     lambda history, now: getattr(tasklist, action)(history, node, task_id, self.agents[node], to_millis(now)))

    def step_remove_task(self, node: int, task: int) -> None:
        self.require_up(node)
        task_id = self._task(task)
        self.operate(node, "remove_task", {"task": task_id.hex()},
                     lambda history, now: tasklist.remove_task(history, node, task_id))

    def step_set_field(self, node: int, task: int, field: str, value: Any) -> None:
        self.require_up(node)
        task_id = self._task(task)
        self.require(field in tasklist.FIELDS, f"unknown field {field!r}")
        if field == "assignee" and value is not None:
            self.require(0 <= value < len(self.agents), f"no node {value} to assign")
            value = self.agents[value]
        wire_value = value.hex() if isinstance(value, bytes) else value
        self.operate(node, "set_field", {"task": task_id.hex(), "field": field, "value": wire_value},
                     lambda history, now: tasklist.set_field(history, node, task_id, field, value, now))

    def step_move(self, node: int, task: int, index: int) -> None:
        self.require_up(node)
        task_id = self._task(task)
        self.require(index >= 0, f"move to a negative index {index}")
        self.operate(node, "move", {"task": task_id.hex(), "index": index},
                     lambda history, now: tasklist.move(history, node, task_id, index))

    # ----- signing sessions ---------------------------------------------------------------------

    @guard(lambda self: self._started())
    @rule(node=INDEX, kind=st.sampled_from(["new_event", "new_event", "resubmit", "fund"]), amount=st.sampled_from(AMOUNTS),
          event=INDEX)
    def sign(self, node: int, kind: str, amount: int, event: int) -> None:
        """A signing session for a new event, an old event at a coordinator again, or a new coin for the group."""
        if kind == "new_event" or not self.events:
            self.do("new_event", node=self._up(node), amount=amount)
        elif kind == "resubmit":
            self.do("resubmit", node=self._up(node), event=event % len(self.events))
        else:
            self.do("fund", amount=FUNDS[event % len(FUNDS)])

    def step_new_event(self, node: int, amount: int) -> None:
        self.require_up(node)
        self.require(amount > 0, f"amount {amount}: an event pays at least 1 sompi")
        k = len(self.events)
        self.events.append({"external_id": f"ext-{k}", "destination": f"kaspatest:dest{k % 3}", "amount": amount,
                            "reason": "bridge", "timestamp": EVENT_START_NS + k})
        event = pskt.Event("hyperlane", f"ext-{k}", f"kaspatest:dest{k % 3}", amount, (("reason", "bridge"),), EVENT_START_NS + k)
        self.event_index[pskt.event_hash(event).hex()] = k
        self.submit(node, k)

    def step_resubmit(self, node: int, event: int) -> None:
        """The same event at a coordinator again (maybe another): the group must never pay it twice."""
        self.require_up(node)
        self.require(0 <= event < len(self.events), f"no event {event}")
        self.submit(node, event)

    def submit(self, node: int, event: int) -> None:
        answer = self.cluster.op(node, "submit_event", **self.events[event])
        self.submitted_at.setdefault((node, event), len(self.steps))
        if "request_id" in answer:  # not refused: the node's process opened a request
            self.processes[node].opened.add(answer["request_id"])
            if self.backend.timely and not (self.down or self.blocked or self.faulty):
                self.calm_requests[answer["request_id"]] = (len(self.steps), self.backend.now())
                self.check_answered(answer["request_id"], event)

    def check_answered(self, request_id: str, event: int) -> None:
        """On a ``timely`` backend, a request opened with every node up and every link clear has been answered by
        every member's signer when the step that opened it ends: the step ends with what it sent delivered."""
        silent = [i for i in range(len(self.acked))
                  if request_id not in {a["request_id"] for a in self.cluster.op(i, "signing")["answers"]}]
        assert not silent, (f"the request for event {event}, opened with every node up and every link clear, was not "
                            f"answered by members {silent} when the step that opened it ended")

    def step_fund(self, amount: int) -> None:
        self.require(self._started() and amount > 0, "a coin of at least 1 sompi, once started")
        self.cluster.ledger.fund(amount)

    # ----- faults -----------------------------------------------------------------------------

    def _links(self, raw: int, everywhere: bool) -> list[list[int]]:
        n = len(self.acked)
        pairs = [[a, b] for a in range(n) for b in range(n) if a != b]
        return pairs if everywhere else [pairs[raw % len(pairs)]]

    @guard(lambda self: self._started())
    @rule(kind=st.sampled_from([*sorted(FAULTS), "partition", "partition", "cut_one_way"]), link=INDEX, everywhere=st.booleans(),
          groups=st.lists(st.integers(0, 2), min_size=5, max_size=5), sources=st.lists(INDEX, min_size=1, max_size=2),
          receivers=st.lists(INDEX, min_size=1, max_size=2))
    def network(self, kind: str, link: int, everywhere: bool, groups: list, sources: list, receivers: list) -> None:
        """A fault on the proxy: datagrams dropped, duplicated, reordered or delayed (one link or all), a partition
        into groups or one way (``receivers``: ``targets`` is reserved by ``@rule``); once blocked, a partition heals."""
        n = len(self.acked)
        if kind in FAULTS:
            self.do("faults", kind=kind, links=self._links(link, everywhere))
        elif self.blocked:
            self.do("heal")
        elif kind == "partition":
            labels = groups[:n]
            parts = [[i for i, g in enumerate(labels) if g == label] for label in sorted(set(labels))]
            if len(parts) == 1:  # everyone in one group: the first node alone
                parts = [[0], list(range(1, n))]
            self.do("partition", groups=parts)
        else:
            a = sorted({x % n for x in sources})
            b = sorted({x % n for x in receivers} - set(a)) or sorted(set(range(n)) - set(a))
            self.do("cut_one_way", sources=a, targets=b)

    def step_faults(self, kind: str, links: list[list[int]]) -> None:
        """Datagrams on these directed links are dropped, duplicated, reordered or delayed from now on (``calm``: none)."""
        self.require(self._started() and kind in FAULTS, f"unknown fault {kind!r}")
        names = self.cluster.names
        for src, dst in links:
            self.require(0 <= src < len(names) and 0 <= dst < len(names) and src != dst, f"no link {src} -> {dst}")
        self.disturbed()
        for src, dst in links:
            self.cluster.proxy.call("faults", src=names[src], dst=names[dst], **FAULTS[kind])
            (self.faulty.discard if kind == "calm" else self.faulty.add)((src, dst))

    def disturbed(self) -> None:
        """A fault, partition, heal, kill, stop or restart: sessions open now are no longer owed an end in time."""
        if self.backend.timely:
            self.disturbances.append((len(self.steps), self.backend.now()))

    def calm(self, request_id: str) -> bool:
        """Whether the request was opened with every node up and every link clear, and nothing was disturbed
        before it expired (``session_timeout_ms`` of the backend's clock after)."""
        if request_id not in self.calm_requests:
            return False
        step, opened = self.calm_requests[request_id]
        expiry = opened + self.cluster.group_settings["session_timeout_ms"] / 1_000
        return not any(at > step and time <= expiry for at, time in self.disturbances)

    def step_partition(self, groups: list[list[int]]) -> None:
        self.require(self._started(), "the machine has not started")
        members = [i for group in groups for i in group]
        self.require(len(members) == len(set(members)) and all(0 <= i < len(self.acked) for i in members),
                     f"groups {groups} are not disjoint groups of nodes")
        self.disturbed()
        self.cluster.proxy.call("partition", groups=[[self.cluster.names[i] for i in group] for group in groups])
        self.blocked = True

    def step_cut_one_way(self, sources: list[int], targets: list[int]) -> None:
        """What ``sources`` send ``targets`` is lost; the other way still works (until ``heal``)."""
        self.require(self._started(), "the machine has not started")
        self.require(all(0 <= i < len(self.acked) for i in sources + targets), f"no nodes {sources} {targets}")
        self.disturbed()
        for src in sources:
            for dst in targets:
                if src != dst:
                    self.cluster.proxy.call("block", src=self.cluster.names[src], dst=self.cluster.names[dst])
        self.blocked = True

    def step_heal(self) -> None:
        self.require(self._started(), "the machine has not started")
        self.disturbed()
        self.cluster.proxy.call("heal")
        self.blocked = False

    @guard(lambda self: self._started())
    @rule(node=INDEX, restart=st.booleans(), coordinator=st.booleans(), graceful=st.booleans())
    def crash(self, node: int, restart: bool, coordinator: bool, graceful: bool) -> None:
        """SIGKILL a node or ask it to shut down (``graceful``), or start one that is down again on
        its files. Half the nodes taken down (``coordinator``) are picked among those that
        coordinate a signing session, when there are any: a coordinator that goes down with
        sessions in its files is where recovery goes wrong (what it counted before, what it takes
        for alive), and any node is one only as often as the sessions happened to be opened there."""
        down = sorted(self.down)
        if down and (restart or len(self.up()) == 1):
            self.do("restart", node=down[node % len(down)])
        elif len(self.up()) > 1:
            busy = [i for i in self.up() if self.processes[i].opened or self.processes[i].inherited]
            self.do("stop" if graceful else "kill", node=busy[node % len(busy)] if coordinator and busy else self._up(node))

    def step_kill(self, node: int) -> None:
        """SIGKILL: a crash; nothing the node held in memory survives."""
        self._take_down(node, lambda: self.cluster.kill(node))

    def step_stop(self, node: int) -> None:
        """A clean shutdown, asked over the node's control channel (an operator's restart): the node
        must exit by itself, with status 0, within ``process.STOP_TIMEOUT_SECONDS`` (else it is SIGKILLed:
        status -9). What it acknowledged must be on its files after, as after a kill."""
        def stop() -> None:
            code = self.cluster.stop(node)
            assert code == 0, f"node {node}, asked to shut down, exited with status {code}, not 0"
        self._take_down(node, stop)

    def _take_down(self, node: int, how) -> None:
        self.require_up(node)
        self.require(len(self.up()) > 1, "the last node up stays up")
        self.look(node)  # its counters' last scrape
        requests = self.cluster.op(node, "signing")["requests"]
        self.alive_before_kill[node] = {r["request_id"] for r in requests if r["state"] in model.ALIVE}
        self.signatures_before_kill[node] = signatures_held(requests)
        self.disturbed()
        how()
        self.down.add(node)
        port = self.cluster.nodes[node].ready["quic"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:  # its port kept for it until it restarts
            try:
                other.bind(("127.0.0.1", port))
            except OSError:
                pass
            else:
                raise AssertionError(f"node {node}'s QUIC port {port} is free while it is down: another socket could take "
                                     f"it before the node restarts there")
        self.killed_at.setdefault(node, []).append(len(self.steps))

    def step_restart(self, node: int) -> None:
        self.require(node in self.down, f"node {node} is not down")
        self.disturbed()
        self.cluster.restart(node)
        self.down.discard(node)
        own = self.cluster.op(node, "snapshot")["holds"].get(self.agents[node].hex(), [])
        held = {seq for lo, hi in own for seq in range(lo, hi + 1)}
        lost = sorted(self.acked[node] - held)
        assert not lost, f"node {node} restarted without the operations it acknowledged: seqs {lost}"
        record = self.cluster.op(node, "signing")
        alive = {r["request_id"] for r in record["requests"] if r["state"] in model.ALIVE}
        ended = {r["request_id"] for r in record["requests"]} - alive
        self.processes[node] = NodeProcess(self.status(node)["pid"], {}, whole_run=False, inherited=alive,
                                           unsure=self.alive_before_kill.pop(node, set()) & ended,
                                           answers_before=len(record["answers"]),
                                           signatures_at_kill=self.signatures_before_kill.pop(node, 0),
                                           signatures_at_restart=signatures_held(record["requests"]))
        self.check_loopback_only([node])

    def check_loopback_only(self, nodes) -> None:
        """Every socket these nodes' processes have bound is on the loopback interface (a node's QUIC
        socket, its control and metrics listeners): one bound to every interface would serve the
        node's control channel, which takes ``shutdown`` from anyone, to the network. One read of the
        socket tables for all of them."""
        owner = {inode: node for node in nodes for inode in socket_inodes({self.processes[node].pid})}
        beyond = sorted((owner[inode], protocol, address, port) for inode, protocol, address, port in bound_sockets(set(owner))
                        if not loopback(address))
        assert not beyond, ("node processes have sockets bound beyond the loopback interface "
                            f"(node, protocol, address, port): {beyond}")

    # ----- an impostor on the transport ----------------------------------------------------------

    @guard(lambda self: self._started())
    @rule(node=INDEX, how=st.sampled_from([*sorted(IMPOSTURES), "mistakes"]), claimed=INDEX)
    def impostor(self, node: int, how: str, claimed: int) -> None:
        """Someone who should not be heard: an impostor on the transport, or (``mistakes``) an operator whose
        requests are malformed. (One rule for both: a rule more moves the whole derandomized search.)"""
        node = self._up(node)
        if how == "mistakes":
            self.do("mistakes", node=node)
            return
        self.do("impostor", node=node, how=how, claimed=(node + 1 + claimed % (len(self.acked) - 1)) % len(self.acked))

    def step_impostor(self, node: int, how: str, claimed: int) -> None:
        """A peer outside the mesh dials node ``node`` directly (not through the proxy) and breaks
        the transport's rules as ``how`` says (``IMPOSTURES``; ``forged_proof`` claims member
        ``claimed``'s key). The node must close the connection with a reason naming what is wrong
        (the dialer is done before the node checks its proof, so a forged proof's close follows
        the dial; a connection still open after ``IMPOSTOR_WAIT_SECONDS`` was taken)."""
        self.require_up(node)
        self.require(how in IMPOSTURES, f"no imposture {how!r} (there are {sorted(IMPOSTURES)})")
        self.require(0 <= claimed < len(self.acked) and claimed != node, f"claimed={claimed}: another member's index")
        address = PeerAddress.from_json(self.cluster.nodes[node].ready["address"])
        claimed_key = bytes.fromhex(self.cluster.keys[claimed])
        where = Path(self.directory) / "impostor"
        reason = self.backend.run(_impersonate, address, how, claimed_key, where)
        assert reason is not None, f"node {node} accepted an impostor's {how}: its connection stayed open"
        assert IMPOSTURES[how] in reason, (
            f"node {node} closed the impostor's {how} with {reason!r}, not naming {IMPOSTURES[how]!r}")

    def step_mistakes(self, node: int) -> None:
        """An operator's mistakes on node ``node``: every join of ``JOIN_MISTAKES`` (its own settings with
        one spoiled) and every operation of ``OP_MISTAKES``, each refused with an error naming what is
        wrong; its settings file is the same after. Then the cluster's own (``CLUSTER_MISTAKES``)."""
        self.require_up(node)
        settings_file = data_directory(self.cluster.nodes[node]) / "mesh.json"
        before = settings_file.read_bytes()
        joined = self.cluster.joined[node]
        members = len(joined["members"])
        wrong = []
        for how, (path, value, words) in JOIN_MISTAKES.items():
            settings = spoiled(joined, path, value)
            expected = words(settings) if callable(words) else words.format(n=members)
            wrong.append((f"join {how}", "join", settings, "op: ValueError: " + expected))
        wrong += [(how, operation, args, words) for how, (operation, args, words) in OP_MISTAKES.items()]
        for how, operation, args, words in wrong:
            try:
                answer = self.cluster.op(node, operation, **args)
            except ControlError as error:
                assert refused_as(str(error), words), f"node {node}: {how} refused with {str(error)!r:.300}, not {words!r}"
            else:
                raise AssertionError(f"node {node}: {how} taken, answered {answer!r:.200}")
        assert settings_file.read_bytes() == before, f"node {node}'s {settings_file.name} changed under refused joins"
        self.cluster_mistakes()

    def cluster_mistakes(self) -> None:
        """Every call of ``CLUSTER_MISTAKES`` refused with its words, the cluster as it was after (its mesh's size,
        its nodes up, each one's join, every node up still in the mesh); clusters of 1 and 64 nodes taken."""
        cluster = self.cluster
        size, up, joined = cluster.size, cluster.up(), json.dumps(cluster.joined, sort_keys=True)
        for how, (call, words) in CLUSTER_MISTAKES.items():
            expected = words(cluster)
            with pytest.raises(ValueError) as refused:
                call(cluster)
            assert str(refused.value) == expected, f"the cluster refused {how} with {str(refused.value)!r}, not {expected!r}"
            assert (cluster.size, cluster.up()) == (size, up), (
                f"the cluster changed under a refused {how}: a mesh of {cluster.size} with {cluster.up()} up, "
                f"not of {size} with {up} up")
            assert json.dumps(cluster.joined, sort_keys=True) == joined, f"the nodes' joins changed under a refused {how}"
        for nodes in (1, 64):
            type(cluster)(cluster.directory / "never", nodes)  # taken: nothing starts before ``with``
        for i in cluster.up():
            cluster.op(i, "info")  # a node that left the mesh refuses: "this node has not joined a mesh yet"

    @guard(lambda self: self._started())
    @rule(ms=st.sampled_from(WAITS_MS))
    def wait(self, ms: int) -> None:
        self.do("wait", ms=ms)

    def step_wait(self, ms: int) -> None:
        """Real time passes: gossip, anti-entropy, retransmissions, timeouts, session expiry."""
        self.require(0 <= ms <= 10_000, f"wait {ms} ms: at most 10 s")
        self.backend.run(trio.sleep, ms / 1000)  # the nodes' time: the real clock's, or the loop's of in-process ones

    # ----- quiescence ---------------------------------------------------------------------------

    @guard(lambda self: self._started() and len(self.steps) - self.quiet_at >= QUIESCE_EVERY)
    @rule()
    def quiesce(self) -> None:
        self.do("quiesce")

    def step_quiesce(self) -> None:
        """Clear every fault, restart every node that is down, wait (bounded) until all is quiet, then check."""
        self.require(self._started(), "the machine has not started")
        self.quiet_at = len(self.steps)
        self.cluster.proxy.call("clear")
        if self.blocked or self.faulty:
            self.disturbed()
        self.blocked, self.faulty = False, set()
        for node in sorted(self.down):
            self.step_restart(node)
        everything = set(self.parts)

        def holds_everything(i: int) -> bool:
            return self.held(i, self.cluster.op(i, "snapshot")["holds"]) == everything

        nodes = range(len(self.acked))
        try:
            self.cluster.wait_until(lambda: all(holds_everything(i) for i in nodes), QUIET_SECONDS, "anti-entropy")
            self.cluster.wait_until(lambda: all(self.cluster.op(i, "info")["live_sessions"] == 0 for i in nodes),
                                    QUIET_SECONDS, "every signing session ending")
        except TimeoutError as error:
            missing = {i: sorted(everything - self.held(i, self.cluster.op(i, "snapshot")["holds"])) for i in nodes}
            raise AssertionError(f"not quiet: {error}; missing operations per node: {missing}") from None
        expected = self.model_value(frozenset(p for parts in self.parts.values() for p in parts))
        for i, snap in self.snapshots().items():
            actual = tuple(map(task_view, snap["tasks"]))
            assert actual == expected, f"after quiescence node {i} has {short(actual)}, the model says {short(expected)}"
        records = self.check_signing()
        self.check_metrics(records)

    def held(self, node: int, holds: dict[str, list]) -> set[tuple[int, int]]:
        return {(self.peer_index[bytes.fromhex(origin)], seq)
                for origin, ranges in holds.items() for lo, hi in ranges for seq in range(lo, hi + 1)}

    def check_signing(self) -> dict[int, dict]:
        """Every session ended as ``models.threshold`` allows for what its coordinator recorded; the ledger and
        the signers agree (see the module docstring). Returns what each node's ``signing`` answered."""
        keys = self.cluster.keys
        group = model.Group(tuple(keys), len(keys) // 2 + 1)  # the seed's group: a majority of the members signs
        records = {i: self.cluster.op(i, "signing") for i in range(len(keys))}
        requests = {r["request_id"]: {**r, "owner": i} for i, record in records.items() for r in record["requests"]}

        def named(rid: str) -> str:  # ids hold the coordinator's key, which differs from run to run: reports use indices
            r = requests[rid]
            return f"the request for event {self.event_index.get(r['event'], '?')} at coordinator {r['owner']}"

        for rid, r in requests.items():
            sigs = [model.PartialSignature(i, key, valid) for i, key, valid in r["signatures"]]
            ready = model.ready_to_finalize(group, r["n_inputs"], sigs)
            refusals = {member for member, accept in r["acks"] if not accept and member in group.keys}
            state = r["state"]
            assert state not in model.ALIVE, f"{named(rid)} is still {state} after quiescence, past its expiry"
            if state == model.FINALIZED:
                assert ready, f"{named(rid)} was finalized without m counting keys on every input: {r['signatures']}"
                chosen = [list(k) for k in model.chosen_keys(group, r["n_inputs"], sigs)]
                assert r["final_signers"] == chosen, (
                    f"{named(rid)} carries signatures of {r['final_signers']}, the model chooses {chosen}")
            elif state == model.REJECTED:
                assert len(refusals) > group.n - group.m, f"{named(rid)} was rejected after {len(refusals)} refusals"
            elif state == model.EXPIRED:
                # models.threshold_requests: a coordinator restarted after deciding submits then "unless expired";
                # so a ready request expires only if its coordinator was killed after the event reached it
                since = self.submitted_at.get((r["owner"], self.event_index.get(r["event"])))
                killed = since is not None and any(at > since for at in self.killed_at.get(r["owner"], ()))
                assert not ready or killed, (
                    f"{named(rid)} expired although every input had m counting keys and its coordinator never crashed")
                # every member up, every link clear from its opening on: each answers within milliseconds, and
                # n answers make a request ready (m accept) or rejected (n - m + 1 refuse) within its second
                assert not self.calm(rid), (
                    f"{named(rid)} expired although it was opened with every member up and every link clear, "
                    f"and nothing was disturbed before it ended: {len(r['acks'])} of {group.n} members answered")
            elif state == model.ABORTED:
                assert ready, f"{named(rid)} was aborted (submitted) without m counting keys on every input"
        accepted = [txid.hex() for txid in self.cluster.ledger.accepted]
        position = {txid: n for n, txid in enumerate(accepted)}
        finalized = sorted((r for r in requests.values() if r["state"] == model.FINALIZED),
                           key=lambda r: position.get(r["template"], -1))
        assert sorted(r["template"] for r in finalized) == sorted(accepted), (
            f"the ledger accepted {len(accepted)} transactions; {len(finalized)} requests are finalized")
        ledger = lifecycle.Ledger()
        for r in finalized:
            inputs = [tuple(outpoint) for outpoint in r["inputs"]]
            assert lifecycle.ledger_accepts(ledger, inputs), f"{named(r['request_id'])} spent coins spent before it"
            ledger = lifecycle.pay(ledger, r["event"], inputs)  # raises "event E paid twice"
        for i, record in records.items():
            signed: dict[str, str] = {}
            for answer in record["answers"]:
                if not answer["accept"]:
                    continue
                # models.threshold: "A signer never signs two different templates for one event"
                assert signed.get(answer["event"], answer["template"]) == answer["template"], (
                    f"signer {i} signed two templates for event {self.event_index.get(answer['event'], '?')}")
                signed[answer["event"]] = answer["template"]
                proposed = requests[answer["request_id"]]["template"]
                assert answer["template"] == proposed, (
                    f"signer {i} signed a template other than the one proposed for {named(answer['request_id'])}")
            reserved: dict[int, int] = {}
            for request_id, day, amount, state in record["reservations"]:
                if state in ("approved", "finalized"):  # a reservation held (denied and rejected ones never counted)
                    reserved[day] = reserved.get(day, 0) + int(amount)
                if requests[request_id]["state"] == model.FINALIZED:
                    assert state != "expired", (
                        f"signer {i} gave back the reservation of {named(request_id)} as expired; the group paid it")
            for total in reserved.values():
                assert total <= LIMIT, f"signer {i} holds reservations of {total} on one day, above the limit {LIMIT}"
        return records

    # ----- metrics, as an operator reads them ---------------------------------------------------

    def status(self, node: int) -> dict:
        """Node ``node``'s control ``status``: it must name the process the machine started, and its metrics port."""
        process, status = self.cluster.nodes[node], self.cluster.nodes[node].call("status")
        assert status["pid"] == process.pid, f"node {node}'s status names pid {status['pid']}; its process is {process.pid}"
        assert status["metrics"] == process.ready["metrics"], (
            f"node {node}'s status names metrics port {status['metrics']}; its ready line {process.ready['metrics']}")
        return status

    def look(self, node: int) -> dict[str, float]:
        """Scrape node ``node``'s ``/metrics``: every family it documents, of its type; no counter of its process
        decreased since the last scrape."""
        samples, monotonic, types = scrape(self.cluster.nodes[node].ready["metrics"])
        for family, kind in FAMILIES.items():
            assert types.get(family) == kind, f"node {node} serves {family} as {types.get(family, 'nothing')}, not a {kind}"
        process = self.processes[node]
        for key in sorted(process.monotonic & monotonic):
            assert samples[key] >= process.last[key], (
                f"node {node} serves {key} = {samples[key]:g}, down from {process.last[key]:g} in the same process")
        process.last, process.monotonic = samples, monotonic
        return samples

    def check_metrics(self, records: dict[int, dict]) -> None:
        """After quiescence: every node's metrics against what the machine knows (the module docstring)."""
        observations = []
        for i in range(len(self.acked)):
            observations += self.metric_observations(i, records[i])
        observations += self.peer_observations()
        wrong = [f"{o.label}: the node serves {o.implementation}, the machine expects {o.model}"
                 for o in observations if not o.agrees]
        assert not wrong, "\n".join(wrong)

    def metric_observations(self, i: int, record: dict) -> list[Observation]:
        process = self.processes[i]
        samples = self.look(i)
        mine = record["requests"]  # the requests node i coordinated, every one ended
        if process.whole_run:
            certain, maybe, opened = mine, [], mine
        else:
            certain = [r for r in mine if r["request_id"] in process.opened | process.inherited]
            maybe = [r for r in mine if r["request_id"] in process.unsure]
            opened = [r for r in mine if r["request_id"] in process.opened]
        where = f"node {i}{' (restarted)' if not process.whole_run else ''}"

        def between(label: str, value: float, lo: int, hi: int | None) -> Observation:
            """``value`` in ``lo..hi`` (``hi`` None: at least ``lo``). Worded by the check, not by its
            numbers ("1 to 1", not "1"): two replays whose timings give other bounds fail in the same
            words, which ``Failure.signature`` compares modulo numbers."""
            expected = f"at least {lo}" if hi is None else f"{lo} to {hi}"
            return Observation(f"{where} {label}", expected, f"{value:g}", lo <= value and (hi is None or value <= hi))

        observations = []
        sessions = {o: process.counted(samples, f'mbt_sessions_total{{outcome="{o}"}}')
                    for o in sorted({*OUTCOMES, *labelled(samples, "mbt_sessions_total", "outcome")})}
        for outcome, value in sessions.items():
            lo = sum(r["state"].lower() == outcome for r in certain)
            observations.append(between(f'mbt_sessions_total{{outcome="{outcome}"}} (the sessions it coordinated that '
                                        f'ended {outcome} in this process)', value, lo,
                                        lo + sum(r["state"].lower() == outcome for r in maybe)))
        ended = sum(sessions.values())
        observations.append(between("mbt_session_duration_seconds_count (one per session ended)",
                                    process.counted(samples, "mbt_session_duration_seconds_count"), int(ended), int(ended)))
        buckets = sorted((float(le), value) for le, value in labelled(samples, "mbt_session_duration_seconds_bucket",
                                                                      "le").items())
        cumulative = all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))
        observations.append(Observation(f'{where} mbt_session_duration_seconds_bucket (cumulative, le="+Inf" its _count)',
                                        f'{samples.get("mbt_session_duration_seconds_count", 0.0):g}, cumulative',
                                        f"{buckets[-1][1] if buckets else 0:g}{', cumulative' if cumulative else ''}"))
        signatures = signatures_held(mine)
        observations.append(between("mbt_partial_signatures_total (the valid member signatures its requests hold "
                                    "that this process kept)", process.counted(samples, "mbt_partial_signatures_total"),
                                    signatures - process.signatures_at_restart, signatures - process.signatures_at_kill))
        others = sum(origin != i for origin, _ in self.parts)  # a new process holds its own operations only
        observations.append(between('mbt_gossip_messages_total{kind="op"} (the other nodes\' operations it holds)',
                                    process.counted(samples, 'mbt_gossip_messages_total{kind="op"}'), others, None))
        took = sum(len(r["acks"]) for r in opened) + len(record["answers"]) - process.answers_before
        observations.append(between('mbt_gossip_messages_total{kind="igra"} (the answers and proposals it took)',
                                    process.counted(samples, 'mbt_gossip_messages_total{kind="igra"}'), took, None))
        rss, collected = samples.get("mbt_resident_memory_bytes", 0.0), samples.get("process_resident_memory_bytes", 0.0)
        observations.append(Observation(f"{where} mbt_resident_memory_bytes (process_resident_memory_bytes, within "
                                        f"{RSS_TOLERANCE:.0%})", f"{collected:g}", f"{rss:g}",
                                        abs(rss - collected) <= RSS_TOLERANCE * collected))
        control = self.cluster.metrics(i)  # the control channel's answer: one instant of the node's loop
        for outcome in sessions:
            key = f'mbt_sessions_total{{outcome="{outcome}"}}'
            observations.append(Observation(f"{where} control metrics mbt_sessions_total{{outcome={outcome}}} (its page's)",
                                            f"{samples.get(key, 0.0):g}",
                                            f"{control.get(f'mbt_sessions_total{{outcome={outcome}}}', 0.0):g}"))
        observations.append(Observation(f"{where} control metrics mbt_session_duration_seconds_count (its page's)",
                                        f'{samples.get("mbt_session_duration_seconds_count", 0.0):g}',
                                        f'{control.get("mbt_session_duration_seconds_count", 0.0):g}'))
        replays, refused = control.get("mbt_replays_refused_total", 0.0), control.get("mbt_messages_refused_total", 0.0)
        observations.append(between("control metrics mbt_replays_refused_total (at most mbt_messages_refused_total)",
                                    replays, 0, int(refused)))
        return observations

    def peer_observations(self) -> list[Observation]:
        """Every node comes to hold a proven connection to every other member (the control ``status``), and its
        ``mbt_peers_online`` gauge to count the peers its endpoint has."""
        nodes = range(len(self.acked))
        members = self.cluster.keys
        try:
            self.cluster.wait_until(lambda: all(set(members) - {members[i]} <= set(self.status(i)["peers_online"])
                                                for i in nodes), PEERS_SECONDS, "every node connected to every other")
        except TimeoutError:
            return [Observation(f"node {i} status peers_online (the other members, {PEERS_SECONDS:g} s after quiescence)",
                                len(members) - 1, len(set(members) - {members[i]} & set(status["peers_online"])))
                    for i in nodes for status in [self.status(i)]]
        observed: dict[int, tuple[int, float]] = {}

        def counted(i: int) -> bool:
            online = len(self.status(i)["peers_online"])
            observed[i] = (online, scrape(self.cluster.nodes[i].ready["metrics"])[0].get("mbt_peers_online", -1.0))
            return observed[i][1] == observed[i][0]

        with contextlib.suppress(TimeoutError):  # what it saw last is reported
            self.cluster.wait_until(lambda: all([counted(i) for i in nodes]), GAUGE_SECONDS, "every peers gauge")
        return [Observation(f"node {i} mbt_peers_online (the peers its status names online)", online, f"{gauge:g}",
                            gauge == online) for i, (online, gauge) in sorted(observed.items())]


class _ClaimsAnotherKey:
    """An identity that claims ``public_key`` and signs with its own key: its proofs do not verify."""

    def __init__(self, own: Ed25519Identity, public_key: bytes) -> None:
        self.own, self.public_key = own, public_key

    def sign(self, message: bytes) -> bytes:
        return self.own.sign(message)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return self.own.verify(public_key, message, signature)


async def _impersonate(address: PeerAddress, how: str, claimed_key: bytes, where: Path) -> str | None:
    """Dial ``address`` as an impostor and break the rules as ``how`` says; the reason the node
    gave for closing the connection, or None if it was still open after the wait (every wait
    bounded: the proof by ``AUTH_TIMEOUT_SECONDS``, the close by ``IMPOSTOR_WAIT_SECONDS``)."""
    own = Ed25519Identity(IMPOSTOR_SEED)
    identity = _ClaimsAnotherKey(own, claimed_key) if how == "forged_proof" else own
    with trio.fail_after(limits.AUTH_TIMEOUT_SECONDS + IMPOSTOR_WAIT_SECONDS + 5):
        async with open_endpoint(identity, tls.load_or_create(where)) as endpoint:
            try:
                conn = await endpoint.connect(address)
            except TransportError as refused:
                return str(refused)
            # The dialer is done once the node's proof verifies and its own is sent; the node checks
            # that one after: a forged proof is refused by a close that follows the dial.
            if how == "oversized_frame":
                conn.quic.send_stream_data(MESSAGE_STREAM, HEADER.pack(limits.MAX_FRAME_BYTES + 1))
            elif how == "second_stream":
                conn.quic.send_stream_data(4, b"x")
            conn.flush()
            with trio.move_on_after(IMPOSTOR_WAIT_SECONDS):
                await conn.closed.wait()
            return conn.reason if conn.closed.is_set() else None


def loopback(address: str) -> bool:
    """Whether ``address`` (IPv4 or IPv6, as ``bound_sockets`` gives it) is a loopback address."""
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def realnet_settings() -> settings:
    """A run's budget: under ``nightly``, its profile's (runs of ``profiles.NIGHTLY_STEPS`` steps
    until the wall-clock budget is spent); under any other profile, 8 runs of at most 40 steps
    (most steps cost milliseconds, a ``quiesce`` about a second, the pool starts once: about a
    minute on 2 cores)."""
    if profiles.current_profile() == "nightly":
        return settings()
    return settings(settings(), max_examples=8, stateful_step_count=40)


@pytest.mark.parametrize("implementation", [i for i in implementations("realnet") if i.level == "exact"], ids=lambda i: i.name)
def test_realnet_machine(implementation, tmp_path) -> None:
    """RealNetMachine against every registered realnet implementation, its runs sharing one pool
    of processes, with the budget ``realnet_settings`` gives."""
    with implementation.make_replica(0, None).pooled(tmp_path):
        run_machine(RealNetMachine, implementation, hypothesis_settings=realnet_settings(), in_summary=True)


test_realnet_machine.mbt_settings = realnet_settings  # what a run of this test uses (the bug benchmark asks)
