"""The presence machine's steps that keep its classes in proportion (issue 13 item 1).

``tick_nodes`` is one traced step for several nodes' timers firing at the same instant: it
does exactly what their ``tick`` steps in the same order do. ``deliver_some`` delivers the
datagrams with the named send serials in the order named (late, out of order). Both refuse
arguments that do not fit the state (a node twice or down, a datagram not in flight) before
changing anything, so a stale trace says so instead of replaying half a step. ``quiesce`` is
possible whenever something is left for it: a datagram in flight, a cut link, a node down.
"""

from __future__ import annotations

import pytest

from harness.machine import StepNotApplicable
from harness.registry import implementation, machine_class
from machines.mesh_presence import MeshPresenceMachine


def presence(nodes: int = 4) -> MeshPresenceMachine:
    machine = machine_class("mesh_presence")(implementation("mesh_presence", "node"))
    machine.do("start", nodes=nodes, skews_ns=[0] * nodes)
    return machine


def in_flight(machine) -> list[tuple[int, int, int, bytes]]:
    return sorted((d.serial, d.source, d.target, d.data) for queue in machine.net.queues.values() for d in queue)


def online(machine) -> list:
    return [row.implementation for row in machine.observe()]


def test_tick_nodes_is_the_ticks_of_its_nodes_in_order():
    together, apart = presence(), presence()
    together.do("tick_nodes", nodes=[2, 0, 3])
    for node in (2, 0, 3):
        apart.do("tick", node=node)
    assert in_flight(together) and in_flight(together) == in_flight(apart)
    together.do("settle")
    apart.do("settle")
    assert online(together) == online(apart) and any(online(together))
    together.teardown()
    apart.teardown()


def test_deliver_some_delivers_the_named_datagrams_in_that_order():
    chosen, stepwise = presence(), presence()
    for machine in (chosen, stepwise):
        machine.do("tick_nodes", nodes=[0, 1])
    serials = [d[0] for d in in_flight(chosen)]
    late_first = [serials[-1], serials[0]]
    chosen.do("deliver_some", serials=late_first)
    for serial in late_first:
        link, index = next(((d.source, d.target), i) for queue in stepwise.net.queues.values()
                           for i, d in enumerate(queue) if d.serial == serial)
        stepwise.do("deliver", source=link[0], target=link[1], index=index)
    assert in_flight(chosen) == in_flight(stepwise)
    assert {d[0] for d in in_flight(chosen)}.isdisjoint(late_first)
    assert online(chosen) == online(stepwise)
    chosen.teardown()
    stepwise.teardown()


def test_steps_that_do_not_fit_are_refused_and_change_nothing():
    machine = presence()
    machine.do("tick", node=1)
    before = in_flight(machine)
    missing = before[-1][0] + 1
    with pytest.raises(StepNotApplicable, match=f"no datagram \\[{missing}\\] in flight"):
        machine.do("deliver_some", serials=[before[0][0], missing])
    with pytest.raises(StepNotApplicable, match="listed twice"):
        machine.do("deliver_some", serials=[before[0][0], before[0][0]])
    machine.do("crash", node=3)
    with pytest.raises(StepNotApplicable, match="node 3 is down"):
        machine.do("tick_nodes", nodes=[0, 3])
    with pytest.raises(StepNotApplicable, match="listed twice"):
        machine.do("tick_nodes", nodes=[0, 0])
    assert in_flight(machine) == before
    machine.teardown()


def test_quiesce_is_possible_while_a_link_is_cut_or_a_node_is_down():
    machine = presence()
    assert machine.converged()
    machine.do("cut_one_way", sources=[0], targets=[1])
    assert not machine.converged()
    machine.do("quiesce")
    assert machine.converged() and not machine.net.cut
    machine.do("crash", node=2)
    assert not machine.converged()
    machine.do("quiesce")
    assert machine.converged() and machine.nodes[2] is not None
    machine.teardown()
