"""The order of a pytest session over xdist workers: every worker's share dearest first.

pytest-xdist's ``worksteal`` scheduler gives each of the k workers an equal contiguous share of
the collection; a worker that runs dry steals the back half of the longest queue, and a worker
always keeps its last two tests. As collected, the first share held every machine test
(``machines/`` sorts first): one worker ran them one after another while the others shared the
rest and then waited. On 5 December the whole suite's last 90 s were one worker's last two
machine tests, the two others idle.

So a session under xdist deals its tests out (``spread``): sorted by their measured seconds
(``suite_costs.json`` beside this module, by pytest node id; a test not measured counts as the
median), the dearest goes to share 0, the next to share 1, and so on, and each share runs
dearest first. Every worker starts on its share's dearest tests, and the shares end with the
cheapest, which is what stealing moves and what runs last. The order changes when a test
runs, never what it does: every run is derandomized by itself (``harness.runner.import_project``).

``MBT_RECORD_COSTS=FILE`` makes a session write each test's seconds (setup, call and teardown)
to FILE, in the form of ``suite_costs.json``: ``MBT_RECORD_COSTS=harness/suite_costs.json pytest
-n auto --dist worksteal`` measures them anew.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

#: The committed seconds of each test of a whole ``pytest -n auto --dist worksteal`` (by node id).
COSTS_FILE = Path(__file__).with_name("suite_costs.json")

T = TypeVar("T")


def load_costs(path: Path = COSTS_FILE) -> dict[str, float]:
    """The measured seconds by node id; none if the file is missing."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def spread(items: Sequence[T], key: Callable[[T], str], workers: int, costs: dict[str, float]) -> list[T]:
    """``items`` in ``workers`` contiguous shares of (almost) equal length, the dearest dealt out
    one to each share in turn, each share dearest first. Stable: equal costs keep their order."""
    if workers < 2 or len(items) <= workers:
        return list(items)
    default = statistics.median(costs.values()) if costs else 0.0
    by_cost = sorted(items, key=lambda item: -costs.get(key(item), default))
    return [item for share in range(workers) for item in by_cost[share::workers]]


class CostRecorder:
    """A pytest plugin that adds up each test's seconds over its phases and writes them at the end
    (in the xdist controller, which sees every worker's reports)."""

    def __init__(self, path: Path) -> None:
        self.path, self.seconds = path, {}

    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self, session) -> None:
        if self.seconds:
            rounded = {nodeid: round(seconds, 2) for nodeid, seconds in sorted(self.seconds.items())}
            self.path.write_text(json.dumps(rounded, indent=0) + "\n")
