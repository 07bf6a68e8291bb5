"""Per-operation micro-benchmarks (pytest-benchmark): set-up shared by ``benchmarks/micro``.

Not part of the test suite: ``pytest`` runs its ``testpaths`` (machines, regressions, tests),
never this directory. Run them with ``python -m benchmarks --only micro`` or directly::

    pytest benchmarks/micro --benchmark-autosave --benchmark-compare

Defaults set here, so a run never writes into the working tree and every figure is CPU time:

* ``--benchmark-storage``: ``micro/`` in ``benchmarks.measure.results_directory()``
  (``$MBT_BENCHMARK_DIR``, else ``<temp dir>/crdt-threshold-mbt-benchmarks``)
  (pytest-benchmark's own default is ``./.benchmarks`` in the current directory);
* ``--benchmark-timer``: ``time.process_time`` (pytest-benchmark's default is wall time).

Either may still be given on the command line.
"""

from __future__ import annotations

import pytest

from benchmarks.measure import results_directory

#: pytest-benchmark's defaults, which these replace when they were left alone.
_DEFAULT_STORAGE = "file://./.benchmarks"
_DEFAULT_TIMERS = {"time.perf_counter", "perf_counter"}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if getattr(config.option, "benchmark_storage", None) == _DEFAULT_STORAGE:
        config.option.benchmark_storage = f"file://{results_directory() / 'micro'}"
    if str(getattr(config.option, "benchmark_timer", "")) in _DEFAULT_TIMERS:
        config.option.benchmark_timer = "time.process_time"
