"""Pooled node processes (``machines.adapters.node_processes``): a pool given back is quiet until
its next run, and a realnet bug's pool replaces the last bug's."""

from __future__ import annotations

import os

from machines.adapters.node_processes import DEFAULT_PROGRAM, ProcessBackend
from tests.bugs.realnet import PROGRAM
from tests.bugs.realnet_node import PLANTS

SKEWS = [0, 0, 0]


def joined(cluster) -> list[bool]:
    return [node.call("op", name="info", args={})["joined"] for node in cluster.pool]


def test_a_pool_given_back_is_quiet_and_a_bugs_pool_replaces_the_last_bugs(tmp_path):
    first_bug, second_bug = sorted(PLANTS)[:2]
    with ProcessBackend.pooled(tmp_path / "pools"):
        mesh = ProcessBackend()
        cluster = mesh.cluster(tmp_path / "run", 3, 0, SKEWS)
        assert joined(cluster)[:3] == [True] * 3
        mesh.release(cluster)
        assert joined(cluster) == [False] * len(cluster.pool), "a pool given back still gossips as a mesh"
        again = mesh.cluster(tmp_path / "run", 3, 0, SKEWS)
        assert again is cluster and joined(again)[:3] == [True] * 3  # the next run gets the same processes, joined anew
        mesh.release(again)

        bug = ProcessBackend((PROGRAM, [first_bug]))
        its = bug.cluster(tmp_path / "run", 3, 0, SKEWS)
        pids = [node.pid for node in its.pool]
        bug.release(its)
        other = ProcessBackend((PROGRAM, [second_bug]))
        other.release(other.cluster(tmp_path / "run", 3, 0, SKEWS))
        assert set(ProcessBackend.pools) == {DEFAULT_PROGRAM, other.program}, ProcessBackend.pools
        assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}")], "the last bug's pool still runs"
        assert ProcessBackend.pools[DEFAULT_PROGRAM] is cluster  # realnet's own pool stays
