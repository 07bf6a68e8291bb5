"""The order of a pytest session that stops at its first failure (``-x``, ``--maxfail``).

Such a session is asked for its first failure, fast. Most bugs fail a machine within a few
examples, some within a few dozen, few only late in a full run; and the machine runs differ
a hundredfold in cost (an in-process OR-Set against a Node.js child per replica). So under
``-x`` every machine run also gets *preliminary passes* (``DEPTHS``): a shallow one of at most
5 examples and a deeper one of at most 25, each at most a share of the run's own examples;
and the session runs them depth by depth (iterative deepening): every shallow pass, then
every deeper pass, then every full run, and within a depth the cheapest first, by the
seconds that test took when last measured (``pass_costs.json`` beside this module, written by
``python benchmarks/first_failure.py --measure-costs`` from a clean ``pytest machines/ -x``).
A test with no measured cost counts as the median of its depth. The order changes which
failure comes first, never what a test does: every run is derandomized by itself.

A failing run of such a session shrinks for at most ``SHRINK_EXAMPLES`` (200) examples, not the
profile's 1,000 (``MBT_SHRINK_EXAMPLES`` still overrides both): shrinking was most of the time
to a first failure (a 3-step OR-Set failure spent 67 of its 70 seconds shrinking), and what
Hypothesis leaves unshrunk the trace minimizer (``harness.minimize``) still reduces to steps
none of which can be removed. A run without ``-x`` shrinks as before.

A preliminary pass is a machine run like any other, but its rule counts are neither in the
coverage table nor held to the coverage checks (its few examples would starve rules the
full run exercises). ``MBT_SHALLOW_FIRST=0`` turns all of it off: each machine's full run,
in collection order.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TypeVar

import attrs

from harness import profiles
from harness.registry import Implementation

#: Set by the pytest session when it stops at its first failure (conftest): ``machine_test``
#: then gives every implementation a preliminary pass of each depth.
enabled = False

#: The committed seconds of each test of a clean ``pytest machines/ -x`` (by pytest node id).
COSTS_FILE = Path(__file__).with_name("pass_costs.json")


#: Examples a failing run may spend shrinking in such a session (see the module docstring).
SHRINK_EXAMPLES = 200


def shrink_examples() -> int | None:
    """The shrinking bound of a run in a session that stops at its first failure:
    ``MBT_SHRINK_EXAMPLES`` when set, else the profile's bound or ``SHRINK_EXAMPLES``, whichever
    is smaller (a profile without a bound, ``nightly``, keeps its time budget)."""
    bound = profiles.shrink_examples()
    if os.environ.get("MBT_SHRINK_EXAMPLES") or bound is None:
        return bound
    return min(bound, SHRINK_EXAMPLES)


@attrs.frozen
class Depth:
    """A preliminary pass: at most ``examples`` examples, and at most ``1/share`` of the run's own."""

    name: str
    examples: int
    share: int

    def examples_of(self, run_examples: int) -> int:
        """The examples of this pass of a run of ``run_examples`` examples (at least one)."""
        return max(1, min(self.examples, run_examples // self.share))


SHALLOW = Depth("shallow", 5, 10)
DEEPER = Depth("deeper", 25, 4)
#: The preliminary passes, shallowest first; the full run comes after the last.
DEPTHS = (SHALLOW, DEEPER)


@attrs.frozen
class Preliminary:
    """The parameter of a machine run's preliminary pass: ``implementation`` to ``depth``."""

    implementation: Implementation
    depth: Depth

    @property
    def id(self) -> str:
        return f"{self.implementation.name}-{self.depth.name}"


@cache
def measured_costs() -> dict[str, float]:
    """The committed seconds by pytest node id (empty when the file is absent)."""
    if not COSTS_FILE.exists():
        return {}
    return {str(node): float(seconds) for node, seconds in json.loads(COSTS_FILE.read_text()).items()}


Item = TypeVar("Item")


def first_failure_order(items: Sequence[Item], node_id: Callable[[Item], str], depth_of: Callable[[Item], Depth | None],
                        costs: dict[str, float] | None = None) -> list[Item]:
    """``items`` depth by depth (``DEPTHS``, then everything else), cheapest first within a depth
    by ``costs`` (default ``measured_costs()``); an unmeasured item counts as its depth's median,
    and equal costs keep the collection order."""
    costs = measured_costs() if costs is None else costs
    rank = {depth: n for n, depth in enumerate(DEPTHS)}
    depths = [rank.get(depth_of(item), len(DEPTHS)) for item in items]
    typical = {}
    for level in set(depths):
        known = [costs[node_id(item)] for item, d in zip(items, depths, strict=True) if d == level and node_id(item) in costs]
        typical[level] = statistics.median(known) if known else 0.0
    keys = [(d, costs.get(node_id(item), typical[d]), n) for n, (item, d) in enumerate(zip(items, depths, strict=True))]
    return [items[key[2]] for key in sorted(keys)]


def depth_of_test(item) -> Depth | None:
    """The depth of a pytest item that is a preliminary pass (its ``implementation`` parameter), else None."""
    parameter = getattr(item, "callspec", None) and item.callspec.params.get("implementation")
    return parameter.depth if isinstance(parameter, Preliminary) else None
