"""What the benchmarks share: the time base they state, and Hypothesis's own count of examples.

Every table of ``benchmarks/`` is in CPU seconds of the measuring process
(``time.process_time``): on a shared machine another busy process stretches elapsed time
far more than CPU time. ``cpu_base_note`` is the sentence each table prints about it.

``TestCaseCounter`` counts the test cases Hypothesis really ran, by phase and status, from
the statistics Hypothesis itself reports (``hypothesis.statistics.collector``, what
``pytest --hypothesis-show-statistics`` prints). Counting machine constructions instead
overcounts: a machine is also built for test cases that are abandoned while drawing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import core
from hypothesis.statistics import collector

#: Hypothesis's phases, as its statistics name them.
PHASES = ("reuse", "generate", "target", "shrink", "explain")


def results_directory() -> Path:
    """Where benchmark runs keep what they write (reports, saved micro-benchmark runs): never the
    working tree. ``$MBT_BENCHMARK_DIR``, else ``<temp dir>/crdt-threshold-mbt-benchmarks``."""
    configured = os.environ.get("MBT_BENCHMARK_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "crdt-threshold-mbt-benchmarks"


def cpu_base_note(rounds: int = 1) -> str:
    base = "CPU time of this process (time.process_time)"
    return base + (f", median of {rounds} alternating rounds" if rounds > 1 else "")


@contextlib.contextmanager
def forced_seed(seed: int) -> Iterator[None]:
    """Every Hypothesis run inside starts from ``seed`` (settings must not ``derandomize``).

    What ``pytest --hypothesis-seed`` does. Why not ``derandomize``: it seeds each run from a
    digest of the test function, so two machines written differently explore differently;
    under one forced seed, two machines whose rules draw alike explore the same runs.
    """
    previous = core.global_force_seed
    core.global_force_seed = seed
    try:
        yield
    finally:
        core.global_force_seed = previous


class TestCaseCounter:
    """A context manager: inside it, every Hypothesis run's test cases are counted.

    ``counts[phase][status]``, with status ``valid``, ``interesting`` (failing), ``invalid``
    or ``overrun`` (abandoned while drawing).
    """

    __test__ = False  # not a pytest test class, whatever imports it

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {phase: Counter() for phase in PHASES}
        self._context: Any = None

    def _note(self, stats: dict[str, Any]) -> None:
        for phase in PHASES:
            for case in stats.get(f"{phase}-phase", {}).get("test-cases", []):
                self.counts[phase][case["status"]] += 1

    def __enter__(self) -> TestCaseCounter:
        self._context = collector.with_value(self._note)
        self._context.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._context.__exit__(*exc)

    def examples(self) -> int:
        """Valid and failing test cases of every phase: the examples that ran to an end."""
        return sum(c["valid"] + c["interesting"] for c in self.counts.values())

    def generated(self) -> int:
        """Test cases of the generate phase that ran to an end (what finds a bug)."""
        c = self.counts["generate"]
        return c["valid"] + c["interesting"]

    def shrunk(self) -> int:
        """Test cases the shrink phase ran, abandoned ones included (each costs a run)."""
        return sum(self.counts["shrink"].values())
