"""The cross-language machine: replicas of different implementations share one wire format in one run.

Seed 000's cross-language test has agents in Rust, Node.js and Python work on one task list
and asks that all of them end in the same state. Here that is a machine instead of fixed
scenarios: ``mixed`` makes one implementation out of several that share a wire format,
replica ``i`` being made by part ``i mod n``, so every run of the ``rga``, ``orset`` or
``lww`` machine has replicas of different languages in it, exchanging deltas late, twice,
out of order or never, and full states in any direction. The machine's model and checks
are the usual ones, at the level of the weakest part; and since ``sync_all`` and the check
of settled replicas (``ReplicatedMachine.check_settled``) demand that replicas agree, the
parts must agree *with each other* exactly, not only each with the model: two
implementations of one format that order concurrent inserts differently are caught.

``machines/adapters/yrs_yjs.py`` registers pycrdt (Yrs, Rust, in this process) mixed with
Yjs (JavaScript, in a Node.js child) on the Yjs v1 update format, for each machine: text,
array, map as a set, map key as a register. Client ids are ``replica_id + 1`` in both
adapters, so replicas of one run never share one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.process import Unavailable
from harness.registry import Implementation
from models.clock import Clock

#: What a level demands, from least to most: a mix demands what its weakest part meets.
STRENGTH = {"convergent": 0, "add-wins": 1, "exact": 2}


def mixed(name: str, parts: Sequence[Implementation], description: str = "") -> Implementation:
    """One implementation whose replica ``i`` is made by ``parts[i % len(parts)]``.

    The parts must check the same machine and share a wire format. The level is the weakest
    of the parts' (``exact`` > ``add-wins`` > ``convergent``); if a part is unavailable, so
    is the mix, with that part's reason.
    """
    machines = {part.machine for part in parts}
    if len(parts) < 2 or len(machines) != 1:
        raise ValueError(f"mixed({name!r}): at least two parts of one machine, got {[(p.machine, p.name) for p in parts]}")
    level = min((part.level for part in parts), key=STRENGTH.__getitem__)
    unavailable = "; ".join(f"{part.name}: {part.unavailable}" for part in parts if part.unavailable)

    def make_replica(replica_id: int, clock: Clock) -> Any:
        if unavailable:
            raise Unavailable(f"implementation {name!r} is unavailable: {unavailable}")
        return parts[replica_id % len(parts)].make_replica(replica_id, clock)

    return Implementation(
        machine=machines.pop(),
        name=name,
        make_replica=make_replica,
        level=level,
        description=description or " + ".join(part.name for part in parts),
        unavailable=unavailable,
        max_examples=min((p.max_examples for p in parts if p.max_examples is not None), default=None),
    )
