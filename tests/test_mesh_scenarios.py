"""Seed 000's networked scenarios (tasks 2, 3, 4, 5 and 10), as committed regression traces.

Each scenario drives a mesh machine (so every invariant of the machine is checked after
every step: verdicts by ``models.gossip``, values by the task-list, presence, FOAF and
rendezvous models, convergence after quiescence), then asserts the scenario's own outcome.
The steps are committed as ``regressions/traces/mesh-<name>.json`` with a note naming the
seed task, and replayed forever by ``pytest regressions/``; the tests here check that each
committed trace is still exactly the scenario and replays as ``passed``.

Regenerate the traces after a deliberate change of the machines' steps::

    python -m tests.test_mesh_scenarios
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Trace, load_trace, replay, save_trace
from harness.registry import implementation, machine_class
from machines.mesh_presence import shard_of
from models import foaf, rendezvous
from models.clock import NS_PER_SECOND

TRACES = Path(__file__).resolve().parent.parent / "regressions" / "traces"


def values(m) -> list:
    return [m.replicas[i].value() for i in m.up()]


def task(m, n: int) -> str:
    return m.tasks[n].hex()


# ----- task 2: concurrent operations ------------------------------------------------------


def concurrent_agents(m):
    m.do("start", nodes=10, skews_ns=[0] * 10)
    for i in range(10):
        m.do("add_task", node=i, title=f"task {i}", description="")
    m.do("settle")
    for i in range(10):  # every agent claims the first task at the same instant: the smallest agent id wins
        m.do("claim", node=i, task=task(m, 0))
    for i in range(0, 10, 2):  # concurrent metadata updates: the latest write wins (ties: the writer id)
        m.do("set_field", node=i, task=task(m, 1), field="priority", value=10 + i)
    m.do("settle")
    for i in (3, 5, 7):
        m.do("claim", node=i, task=task(m, 2))
    m.do("settle")
    for i in (3, 5, 7):  # concurrent completions: every agent sees the task done
        m.do("complete", node=i, task=task(m, 2))
    m.do("advance_clock", ns=NS_PER_SECOND)
    m.do("move", node=9, task=task(m, 9), index=0)
    m.do("quiesce")
    first = values(m)[0]
    assert all(v == first for v in values(m)) and len(first) == 10
    assert first[0].id == m.tasks[9]
    assert type(next(v for v in first if v.id == m.tasks[2]).checkbox).__name__ == "Done"


# ----- task 3: partitions -----------------------------------------------------------------


def partition_conflicting_claims(m):
    m.do("start", nodes=6, skews_ns=[0] * 6)
    m.do("add_task", node=0, title="shared", description="")
    m.do("settle")
    m.do("partition", groups=[[0, 1, 2], [3, 4, 5]])
    m.do("add_task", node=2, title="left only", description="")
    m.do("add_task", node=5, title="right only", description="")
    m.do("advance_clock", ns=NS_PER_SECOND)
    m.do("claim", node=4, task=task(m, 0))  # the earlier claim, on the right
    m.do("set_field", node=4, task=task(m, 0), field="title", value="right")
    m.do("advance_clock", ns=NS_PER_SECOND)
    m.do("claim", node=1, task=task(m, 0))  # a later claim, on the left: claims are not locks
    m.do("set_field", node=1, task=task(m, 0), field="title", value="left")  # the later write wins
    m.do("settle")
    assert m.replicas[1].value() != m.replicas[4].value()
    m.do("heal")
    m.do("quiesce")
    agreed = values(m)[0]
    assert all(v == agreed for v in values(m)) and len(agreed) == 3
    shared = next(v for v in agreed if v.id == m.tasks[0])
    assert shared.title == "left" and shared.checkbox.agent == m.replicas[4].agent_id


def asymmetric_partition(m):
    m.do("start", nodes=6, skews_ns=[0] * 6)
    m.do("add_task", node=0, title="before", description="")
    m.do("settle")
    m.do("cut_one_way", sources=[0, 1, 2], targets=[3, 4, 5])
    m.do("add_task", node=1, title="from the left", description="")
    m.do("set_field", node=4, task=task(m, 0), field="priority", value=7)
    m.do("settle")
    for _ in range(3):  # what a broadcast tree lost at the cut, haves, pulls and anti-entropy bring inside each group
        m.do("advance_clock", ns=30 * NS_PER_SECOND)
        tick_all(m, range(6))
    # the left group hears the right one, not the other way round
    assert len(m.replicas[3].value()) == 1 and len(m.replicas[0].value()) == 2
    assert m.replicas[0].value()[0].priority == 7
    m.do("quiesce")
    assert all(len(v) == 2 and v[0].priority == 7 for v in values(m))


def repeated_partition_cycles(m):
    m.do("start", nodes=5, skews_ns=[0, 1_000_000, -1_000_000, 0, 2_000_000])
    cuts = [[[0, 1], [2, 3, 4]], [[0, 2, 4], [1, 3]], [[0], [1], [2, 3, 4]]]
    for cycle, groups in enumerate(cuts):
        m.do("partition", groups=groups)
        for group in groups:
            m.do("add_task", node=group[-1], title=f"cycle {cycle}", description=f"group {group[0]}")
        m.do("settle")
        m.do("crash", node=groups[0][0])
        m.do("advance_clock", ns=30 * NS_PER_SECOND)
        m.do("quiesce")
    assert all(len(v) == 7 for v in values(m))


# ----- task 4: presence and FOAF ----------------------------------------------------------


def tick_all(m, nodes):
    for i in nodes:
        m.do("tick", node=i)
    m.do("settle")


def presence_offline_and_back(m):
    m.do("start", nodes=4, skews_ns=[0] * 4)
    tick_all(m, range(4))
    now = m.local_now(0)
    assert m.nodes[0].online_peers(now) == frozenset(m.members[1:])
    m.do("crash", node=3)
    for _ in range(3):  # 900 s of beacons from the others: node 3's record expires
        m.do("advance_clock", ns=300 * NS_PER_SECOND)
        tick_all(m, range(3))
    m.do("advance_clock", ns=NS_PER_SECOND)
    assert m.members[3] not in m.nodes[0].online_peers(m.local_now(0))
    m.do("restart", node=3)
    tick_all(m, [3])
    assert m.members[3] in m.nodes[0].online_peers(m.local_now(0))


def foaf_ttl(m):
    m.do("start", nodes=8, skews_ns=[0] * 8)
    neighbours = sorted(m.peer_index[p] for p in m.neighbors[m.members[0]])
    far = [i for i in range(1, 8) if i not in neighbours]
    m.do("foaf", origin=0, sought=neighbours[0], ttl=1)  # TTL 1: only immediate neighbours
    m.do("foaf", origin=0, sought=far[0], ttl=1)
    m.do("foaf", origin=0, sought=far[0], ttl=3)  # TTL 3: up to three hops
    reach = lambda a, b: True  # noqa: E731 - the network is whole here
    assert foaf.finds(m.neighbors, m.members[0], m.members[neighbours[0]], 1, 3, reach)
    assert not foaf.finds(m.neighbors, m.members[0], m.members[far[0]], 1, 3, reach)
    assert foaf.finds(m.neighbors, m.members[0], m.members[far[0]], 3, 3, reach)
    m.do("partition", groups=[[0, 1, 7], [2, 3, 4, 5, 6]])
    m.do("foaf", origin=0, sought=far[0], ttl=3)  # cut off: not found


# ----- task 5: rendezvous -----------------------------------------------------------------


def rendezvous_lookup_and_failover(m):
    m.do("start", nodes=5, skews_ns=[0] * 5)
    tick_all(m, range(5))  # every node registers with the coordinators of its shard
    shards = {p: shard_of(p) for p in m.members}
    sought = 0
    primary, backup = (m.peer_index[c] for c in rendezvous.coordinators(shards, m.members[sought]))
    querier = next(q for q in range(1, 5) if q not in (primary, backup))
    m.do("lookup", querier=querier, sought=sought)
    assert list(m.nodes[querier].rendezvous.lookups.values())[-1].result == "found"
    m.do("crash", node=primary)  # the primary coordinator goes offline: the lookup fails over to the backup
    m.do("lookup", querier=querier, sought=sought)
    assert list(m.nodes[querier].rendezvous.lookups.values())[-1].result == "found"
    m.do("crash", node=backup)
    m.do("lookup", querier=querier, sought=sought)
    assert list(m.nodes[querier].rendezvous.lookups.values())[-1].result == "unreachable"


# ----- task 10: security ------------------------------------------------------------------


def signature_and_replay_attacks(m):
    m.do("start", nodes=3, skews_ns=[0] * 3)
    m.do("publish", node=0, data="a")
    tick_all(m, range(3))
    captured = len(m.captured) - 1
    for how in ("forged_signature", "tampered_payload", "refreshed", "substituted_key", "non_member", "malformed"):
        m.do("attack", how=how, target=1, message=captured, victim=0, beacon=True)
    m.do("attack", how="substituted_key", target=1, message=0, victim=2, beacon=False)
    m.do("attack", how="replay", target=1, message=0, victim=0, beacon=False)  # inside the TTL: replayed
    m.do("advance_clock", ns=301 * NS_PER_SECOND)
    m.do("attack", how="replay", target=1, message=0, victim=0, beacon=False)  # after it: stale
    m.do("malformed_datagram", target=2, junk="c40500")
    counts = m.nodes[1].counts
    for reason in ("bad signature", "peer id does not match key", "not a member", "malformed", "replayed", "stale"):
        assert counts.get(reason), reason


SCENARIOS = {
    "concurrent-agents": ("mesh_tasklist", "seed 000 task 2: ten agents add, claim, update, complete and move concurrently",
                          concurrent_agents),
    "partition-conflicting-claims": ("mesh_tasklist", "seed 000 task 3.1-3.3: conflicting claims and updates across a "
                                     "partition; anti-entropy repairs after it heals", partition_conflicting_claims),
    "asymmetric-partition": ("mesh_tasklist", "seed 000 task 3.4: one group sees the other's updates, not the reverse",
                             asymmetric_partition),
    "repeated-partition-cycles": ("mesh_tasklist", "seed 000 task 3.5: partition, crash and repair cycles",
                                  repeated_partition_cycles),
    "presence-offline-and-back": ("mesh_presence", "seed 000 task 4.1/4.3: beacons, offline after 900 s, back online",
                                  presence_offline_and_back),
    "foaf-ttl": ("mesh_presence", "seed 000 task 4.2/4.4/4.5: FOAF with TTL 1 and 3, and across a partition", foaf_ttl),
    "rendezvous-lookup-and-failover": ("mesh_presence", "seed 000 task 5.1-5.4: shard lookup, failover to the backup "
                                       "coordinator, unreachable when both are down", rendezvous_lookup_and_failover),
    "signature-and-replay-attacks": ("mesh_adversary", "seed 000 task 10.1-10.3: forged and tampered signatures, "
                                     "substituted keys, non-members, replays inside and after the TTL",
                                     signature_and_replay_attacks),
}


def run_scenario(name: str) -> Trace:
    machine, note, scenario = SCENARIOS[name]
    m = machine_class(machine)(implementation(machine, "node"))
    original = m.do

    def do_and_check(rule, **args):
        original(rule, **args)
        m.check()

    m.do = do_and_check
    try:
        scenario(m)
    finally:
        m.teardown()
    return Trace(machine, "node", tuple(m.steps), note=note)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name):
    trace = run_scenario(name)
    committed = load_trace(TRACES / f"mesh-{name}.json")
    assert committed.steps == trace.steps, f"mesh-{name}.json is not this scenario any more: regenerate it"
    assert committed.note == trace.note
    assert str(replay(committed)) == "passed"


def write_traces() -> None:
    for name in SCENARIOS:
        trace = run_scenario(name)
        written = save_trace(trace, TRACES)
        target = TRACES / f"mesh-{name}.json"
        written.replace(target)
        print(f"{target}: {replay(trace)} ({len(trace.steps)} steps)")


if __name__ == "__main__":
    write_traces()
