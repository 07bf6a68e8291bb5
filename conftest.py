"""Project-wide pytest set-up: Hypothesis profiles, the trace directory, the coverage table, the leftover check."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from harness import profiles

#: What the session started with (children, bound ports), and what it left behind.
_BEFORE: pytest.StashKey = pytest.StashKey()
_LEFT: pytest.StashKey = pytest.StashKey()

profiles.register_profiles()
settings.load_profile(profiles.default_profile())


def pytest_addoption(parser):
    parser.addoption(
        "--trace-dir",
        default=None,
        help="where failing machine runs write their traces (default: $MBT_TRACE_DIR or .traces/)",
    )


def pytest_configure(config):
    trace_dir = config.getoption("--trace-dir")
    if trace_dir:
        os.environ["MBT_TRACE_DIR"] = trace_dir


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

    left = leftovers(session.config.stash[_BEFORE])
    session.config.stash[_LEFT] = left
    if left and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from tabulate import tabulate

    left = config.stash.get(_LEFT, [])
    if left:
        terminalreporter.write_sep("=", "LEFT BEHIND by this session (a failure)", red=True)
        for item in left:
            terminalreporter.write_line(item)

    from harness.runner import RUNS, TRACES_WRITTEN

    if RUNS:
        rows = []
        for stats in RUNS:
            for rule, ran, refused in stats.rows():
                rows.append([f"{stats.machine}/{stats.implementation}", rule, ran, refused, "NEVER RAN" if not ran else ""])
        terminalreporter.write_sep("=", f"machine rule coverage (profile {profiles.current_profile()})")
        terminalreporter.write_line(
            tabulate(rows, headers=["machine/implementation", "rule", "ran", "refused by precondition", ""])
        )
    if TRACES_WRITTEN:
        terminalreporter.write_sep("=", "traces of failing runs")
        for path in TRACES_WRITTEN:
            terminalreporter.write_line(f"{path}   (python -m harness promote {path} --note '...')")


def pytest_collection_finish(session):
    # Every module of the project loaded before any test generates data (see
    # harness.runner.import_project): derandomized runs are then the same whatever tests
    # were selected.
    from harness.runner import import_project

    import_project()
