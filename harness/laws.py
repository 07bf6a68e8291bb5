"""Merge laws as property tests: commutative, associative, idempotent — by value.

``check_merge_laws`` builds three replicas by running generated operations on them, then
joins their full states in different groupings into a fresh replica and compares values.
``check_delta_idempotence`` applies every delta of a program twice and checks that the
second application changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JOIN_REPLICA_ID = 99


def check_merge_laws(
    make_replica: Callable[[int], Any],
    programs: list[Callable[[Any], None]],
    value: Callable[[Any], Any] = lambda replica: replica.value(),
) -> None:
    """``programs[i]`` runs operations on replica ``i``; three programs are needed."""
    assert len(programs) == 3, "check_merge_laws takes exactly three programs"
    replicas = []
    for index, program in enumerate(programs):
        replica = make_replica(index)
        program(replica)
        replicas.append(replica)
    a, b, c = (r.state() for r in replicas)

    def join(*states: bytes) -> Any:
        target = make_replica(JOIN_REPLICA_ID)
        for state in states:
            target.merge(state)
        return target

    assert value(join(a, b)) == value(join(b, a)), "merge is not commutative"
    ab_c = join(join(a, b).state(), c)
    a_bc = join(a, join(b, c).state())
    assert value(ab_c) == value(a_bc), "merge is not associative"
    assert value(join(a, a)) == value(join(a)), "merge is not idempotent"
    assert value(join(a, b, a, b)) == value(join(a, b)), "merging again changed the value"


def check_delta_idempotence(make_replica: Callable[[int], Any], program: Callable[[Any], None],
                            value: Callable[[Any], Any] = lambda replica: replica.value()) -> None:
    """Deltas of ``program`` applied once and applied twice give the same value."""
    source = make_replica(0)
    program(source)
    deltas = source.take_deltas()
    once, twice = make_replica(1), make_replica(2)
    for delta in deltas:
        once.apply_delta(delta)
        twice.apply_delta(delta)
        twice.apply_delta(delta)
    assert value(once) == value(twice) == value(source), "applying a delta twice changed the value"
