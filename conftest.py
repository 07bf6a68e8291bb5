"""Project-wide pytest set-up: Hypothesis profiles, the trace directory, the nightly budget plan,
the coverage table, the leftover check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from harness import constants, profiles

#: What the session started with (children, bound ports), and what it left behind.
_BEFORE: pytest.StashKey = pytest.StashKey()
_LEFT: pytest.StashKey = pytest.StashKey()

profiles.register_profiles()
constants.install()  # the literals Hypothesis draws come from harness/constant_pool.json alone (harness/constants.py)
settings.load_profile(profiles.default_profile())


def pytest_addoption(parser):
    parser.addoption(
        "--trace-dir",
        default=None,
        help="where failing machine runs write their traces (default: $MBT_TRACE_DIR, or traces/ in the "
        "per-user cache: $XDG_CACHE_HOME/crdt-threshold-mbt or ~/.cache/crdt-threshold-mbt)",
    )


#: pytest-benchmark's default storage: a ``.benchmarks`` directory in the current directory.
BENCHMARK_STORAGE_DEFAULT = "file://./.benchmarks"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than the cores this process may use. Many tests wait on child
    processes (node processes, pytest sessions, Node.js), and with one worker per core the cores
    idled through those waits: ``.ci/run`` on a fresh clone, 2 cores, used 84% of them and took
    15:57 with 2 workers, 94% and 13:46 with 3 (and ``--dist worksteal``; 3 December, the same
    code). ``PYTEST_XDIST_AUTO_NUM_WORKERS``, when set, still decides (xdist's own hook reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # (not on macOS)
    return (usable or 1) + 1


def pytest_configure(config):
    if config.option.maxfail and os.environ.get("MBT_SHALLOW_FIRST") != "0":  # -x: preliminary passes first
        from harness import deepening

        deepening.enabled = True
    if os.environ.get("MBT_RECORD_COSTS") and not os.environ.get("PYTEST_XDIST_WORKER"):  # (the controller sees every report)
        from harness.spread import CostRecorder

        config.pluginmanager.register(CostRecorder(Path(os.environ["MBT_RECORD_COSTS"])), "mbt-record-costs")
    trace_dir = config.getoption("--trace-dir")
    if trace_dir:
        os.environ["MBT_TRACE_DIR"] = trace_dir
    if os.environ.get("MBT_PLANT_BUG"):
        # A build with one catalogued bug patched in (the nightly runner's acceptance run).
        from tests.bugs.catalogue import plant_for_session

        plant_for_session(os.environ["MBT_PLANT_BUG"])
    # Runs write nothing into the directory they start in: pytest-benchmark, when it happens
    # to be installed, keeps its storage in the per-user cache unless told where.
    if config.pluginmanager.hasplugin("benchmark") and config.getoption("benchmark_storage") == BENCHMARK_STORAGE_DEFAULT:
        config.option.benchmark_storage = f"file://{profiles.cache_directory() / 'benchmarks'}"


@pytest.fixture(scope="session", autouse=True)
def _node_process_pool(tmp_path_factory):
    """One pool of node processes for every realnet run of the session, started when first needed and
    stopped (every process reaped) before the leftover check."""
    from machines.adapters.node_processes import ProcessBackend

    with ProcessBackend.pooled(tmp_path_factory.mktemp("node-pool")):
        yield


def pytest_sessionstart(session):
    from implementations.transport.process import snapshot

    session.config.stash[_BEFORE] = snapshot()


def pytest_sessionfinish(session, exitstatus):
    """No test, machine or command may leave a child process or a bound port behind: the session fails if one did."""
    from implementations.transport.process import leftovers

    coverage_dir = os.environ.get("MBT_COVERAGE_DIR")
    if coverage_dir:  # the nightly runner gathers every worker's rule counts
        from harness.runner import write_rule_stats

        write_rule_stats(coverage_dir)
    from harness.process import reap_every_child

    reap_every_child()  # the adapter children reused across machine runs end with the session, not after it
    if hasattr(session.config, "workeroutput"):  # an xdist worker: the controller prints the coverage and traces
        from harness.runner import TRACES_WRITTEN, rule_stats_records

        session.config.workeroutput["mbt_runs"] = rule_stats_records()
        session.config.workeroutput["mbt_traces"] = [str(path) for path in TRACES_WRITTEN]
    left = leftovers(session.config.stash[_BEFORE])
    session.config.stash[_LEFT] = left
    if left and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """An xdist worker ended: its machine runs' rule counts and traces join this session's summary."""
    from harness.runner import RUNS, TRACES_WRITTEN, rule_stats_from

    output = getattr(node, "workeroutput", {})
    RUNS.extend(rule_stats_from(output.get("mbt_runs", [])))
    TRACES_WRITTEN.extend(Path(path) for path in output.get("mbt_traces", []))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from tabulate import tabulate

    left = config.stash.get(_LEFT, [])
    if left:
        terminalreporter.write_sep("=", "LEFT BEHIND by this session (a failure)", red=True)
        for item in left:
            terminalreporter.write_line(item)

    from harness.runner import RUNS, TRACES_WRITTEN

    if RUNS:
        from harness import balance

        rows, headers = balance.table(RUNS)
        terminalreporter.write_sep("=", f"machine rule coverage by class (profile {profiles.current_profile()})")
        terminalreporter.write_line(tabulate(rows, headers=headers))
    if TRACES_WRITTEN:
        terminalreporter.write_sep("=", "traces of failing runs")
        for path in TRACES_WRITTEN:
            terminalreporter.write_line(f"{path}   (python -m harness promote {path} --note '...')")


def pytest_collection_modifyitems(session, config, items):
    """Under -x, depth by depth and cheapest first (``harness.deepening``); spread over xdist's
    work-stealing workers, each worker's share dearest first (``harness.spread``); otherwise as collected."""
    from harness import deepening

    if deepening.enabled:
        items[:] = deepening.first_failure_order(items, lambda item: item.nodeid, deepening.depth_of_test)
    elif os.environ.get("PYTEST_XDIST_WORKER_COUNT") and config.getoption("dist", None) == "worksteal":
        from harness import spread

        workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
        items[:] = spread.spread(items, lambda item: item.nodeid, workers, spread.load_costs())


def pytest_collection_finish(session):
    # Every module of the project loaded before any test generates data (see
    # harness.runner.import_project): derandomized runs are then the same whatever tests
    # were selected.
    from harness.runner import import_project

    import_project()
    # Under a budgeted profile, MBT_BUDGET_SECONDS is shared by the machine runs collected. An
    # xdist worker collects every item but runs only some: there (python -m harness nightly)
    # MBT_BUDGET_SECONDS is already each run's share, and a run without a plan gets it whole.
    if profiles.current_profile() in profiles.BUDGETED and not os.environ.get("PYTEST_XDIST_WORKER"):
        from harness import budget

        runs = sum(1 for item in session.items if getattr(getattr(item, "function", None), "mbt_machine", None))
        budget.plan(profiles.budget_seconds(), runs)
