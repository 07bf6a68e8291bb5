"""A session over xdist's work-stealing workers deals its tests out dearest first (``harness.spread``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.spread import load_costs, spread

ROOT = Path(__file__).resolve().parent.parent


def test_the_dearest_tests_are_dealt_one_to_each_share_and_each_share_runs_dearest_first():
    costs = {"a": 1.0, "b": 9.0, "c": 5.0, "d": 0.1, "e": 7.0, "f": 3.0, "g": 0.2}
    order = spread(list("abcdefg"), str, 3, costs)
    # by cost: b e c f a g d; shares: b f d | e a | c g
    assert order == ["b", "f", "d", "e", "a", "c", "g"]
    assert spread(list("abc"), str, 3, costs) == list("abc")  # as many tests as workers: as collected
    assert spread(list("abcdefg"), str, 1, costs) == list("abcdefg")


def test_a_test_never_measured_counts_as_the_median_and_ties_keep_their_order():
    costs = {"a": 1.0, "b": 3.0, "c": 2.0}
    # x and y count 2.0, as c does, and keep their order: b x y c a, dealt to two shares
    assert spread(["x", "a", "b", "y", "c"], str, 2, costs) == ["b", "y", "a", "x", "c"]


def test_a_recording_session_writes_each_tests_seconds(tmp_path):
    out = tmp_path / "costs.json"
    selected = "tests/test_spread.py::test_a_test_never_measured_counts_as_the_median_and_ties_keep_their_order"
    env = {**os.environ, "MBT_RECORD_COSTS": str(out)}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", selected],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    written = json.loads(out.read_text())
    assert list(written) == [selected] and 0 <= written[selected] < 60, written
    assert load_costs(out) == written

