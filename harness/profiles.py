"""Hypothesis profiles, chosen the Hypothesis way.

* ``ci``: derandomized and bounded, so every run of the suite does the same work; no
  example database; every rule of every machine must run at least once.
* ``dev`` (the default): random, an example database in the per-user cache, moderate sizes.
* ``nightly``: fresh randomness in runs of 50 steps (``NIGHTLY_STEPS``), unbounded shrinking,
  a shared example database, and one wall-clock budget for
  the whole command (``MBT_BUDGET_SECONDS``, default 600; see ``harness.budget``): each
  machine and implementation gets an even share of what remains when its turn comes and
  runs again and again, each run with fresh randomness, until its share is spent or it
  fails. The deadline is checked before every step, so a run overruns its share by at most
  one step.

Shrinking is bounded in examples, not seconds (``SHRINK_EXAMPLES``): after the first
failure a run may spend that many more examples (shrinking, and looking for other
failures), then it stops and reports the shortest failing run it has seen
(``harness.recorder``).

Runs write only into the per-user cache (``cache_directory``) unless told otherwise:
traces (``MBT_TRACE_DIR``), example databases (``MBT_EXAMPLE_DB``), and Hypothesis's own
files (``HYPOTHESIS_STORAGE_DIRECTORY``); never into the directory they start in.

Select with ``pytest --hypothesis-profile=nightly`` or ``HYPOTHESIS_PROFILE=nightly``.
``CI=true`` in the environment makes ``ci`` the default.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

from harness.database import from_spec

#: Profiles in which a rule that never ran fails the run.
STRICT_COVERAGE = frozenset({"ci", "nightly"})
#: Under a budgeted profile a run's length is its time budget's, not its settings': a run
#: of fresh randomness cut to a few dozen examples may miss a rare rule by chance (the
#: nightly command's test saw lww against yjs-map miss ``redeliver`` in 34 examples). It is
#: held to run every rule once it has run as many examples as a ``ci`` run does.
COVERAGE_MIN_EXAMPLES_BUDGETED = 250


def coverage_checked(profile: str, examples: int) -> bool:
    """Whether a run of ``examples`` examples under ``profile`` fails when a rule never ran."""
    if profile not in STRICT_COVERAGE:
        return False
    return profile not in BUDGETED or examples >= COVERAGE_MIN_EXAMPLES_BUDGETED
#: Profiles in which a class of rules below its floor fails the run (``harness.balance``). Only
#: derandomized ones: a share is a statistic of the run, and a short run of fresh randomness (a
#: nightly run's repetition) falls below a floor by chance now and then, which says nothing of
#: the machine (the nightly command's test saw lww's faults at 3.3% against a 4% floor).
FLOORS_CHECKED = frozenset({"ci"})
#: Profiles that keep running a machine until its time budget is spent.
BUDGETED = frozenset({"nightly"})
#: The profiles that search as ``ci`` does, each machine with its own ``ci`` budget (networked
#: machines run fewer, costlier examples: ``harness.network.ci_settings``): ``ci`` itself, and
#: ``mutation`` (``python -m tests.mutation``: a mutant is killed by what ``ci`` would find).
CI_SEARCH = frozenset({"ci", "mutation"})
#: Steps of one ``nightly`` example. 200 until 4 December; the bug benchmark's nightly half (60 CPU
#: s a bug, the whole catalogue, one run each) found 107 of 109 with runs of 200 steps and 109 of
#: 109 with runs of 50, the median time to the first failure 0.77 against 0.35 CPU s, faster for 80
#: of the 109 bugs (benchmarks/README.md). Hypothesis's swarm selection enables a random part of
#: the rules in each example, and a bug needs two or three of them at once: shorter examples are
#: more draws in the same time. (The catalogue's bugs need 2 to 12 steps; a state that only a long
#: run reaches is not in it, so this measures breadth, not depth.)
NIGHTLY_STEPS = 50
#: Examples a run may spend after its first failure, by profile (None: no bound but the
#: time budget). Hypothesis shrinks a machine failure in a few hundred examples; the bound
#: stops a run with several failures, or a slow implementation, from shrinking for minutes.
SHRINK_EXAMPLES: dict[str, int | None] = {"ci": 1000, "dev": 1000, "nightly": None}
#: The project's directory in the per-user cache.
CACHE_NAME = "crdt-threshold-mbt"


def cache_directory() -> Path:
    """``$XDG_CACHE_HOME/crdt-threshold-mbt``, or ``~/.cache/crdt-threshold-mbt``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / CACHE_NAME


def trace_directory() -> Path:
    """Where failing runs write traces: ``$MBT_TRACE_DIR``, or ``traces/`` in the cache."""
    return Path(os.environ.get("MBT_TRACE_DIR") or cache_directory() / "traces")


def example_database_directory(profile: str) -> Path:
    """The example database of ``dev`` and ``nightly``: ``$MBT_EXAMPLE_DB``, or
    ``examples/<profile>/`` in the cache."""
    return Path(os.environ.get("MBT_EXAMPLE_DB") or cache_directory() / "examples" / profile)


def use_cache_directory() -> None:
    """Hypothesis's own files (its unicode and constants caches) go to the cache too, unless
    ``HYPOTHESIS_STORAGE_DIRECTORY`` says where (by default Hypothesis writes ``.hypothesis/``
    into the current directory)."""
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        set_hypothesis_home_dir(cache_directory() / "hypothesis")


def shrink_examples(profile: str | None = None) -> int | None:
    """The examples a run of ``profile`` may spend after its first failure
    (``MBT_SHRINK_EXAMPLES`` overrides the profile's bound)."""
    raw = os.environ.get("MBT_SHRINK_EXAMPLES")
    if raw:
        if not raw.isdigit():
            raise ValueError(f"MBT_SHRINK_EXAMPLES must be a number of examples, got {raw!r}")
        return int(raw)
    return SHRINK_EXAMPLES.get(profile or current_profile(), SHRINK_EXAMPLES["dev"])

_quiet = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
#: Every phase but ``explain``: our own step-by-step report explains a failure, and
#: Hypothesis's explain phase about doubles the time a failing machine takes.
_phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]


def register_profiles() -> None:
    use_cache_directory()
    settings.register_profile(
        "ci",
        derandomize=True,
        database=None,
        max_examples=250,
        stateful_step_count=50,
        deadline=None,
        print_blob=False,
        suppress_health_check=_quiet,
        phases=_phases,
    )
    settings.register_profile(
        "mutation",  # python -m tests.mutation: ci's search, and a mutant is killed at its first failure
        settings.get_profile("ci"),
        phases=[Phase.explicit, Phase.generate, Phase.target],
    )
    settings.register_profile(
        "dev",
        max_examples=100,
        stateful_step_count=50,
        deadline=None,
        database=DirectoryBasedExampleDatabase(example_database_directory("dev")),
        suppress_health_check=_quiet,
    )
    settings.register_profile(
        "nightly",
        # examples per run; the run repeats until its budget is spent, and the budget is
        # checked between runs, so ``python -m harness nightly`` makes runs short
        max_examples=int(os.environ.get("MBT_NIGHTLY_EXAMPLES", "300")),
        stateful_step_count=NIGHTLY_STEPS,
        deadline=None,
        # a directory or a Redis URL (a URL is no path: Path would fold its '//')
        database=from_spec(os.environ.get("MBT_EXAMPLE_DB") or str(example_database_directory("nightly"))),
        suppress_health_check=_quiet,
    )


def default_profile() -> str:
    if os.environ.get("HYPOTHESIS_PROFILE"):
        return os.environ["HYPOTHESIS_PROFILE"]
    return "ci" if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else "dev"


def current_profile() -> str:
    return settings.get_current_profile_name()


def budget_seconds() -> float:
    raw = os.environ.get("MBT_BUDGET_SECONDS", "600")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"MBT_BUDGET_SECONDS must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"MBT_BUDGET_SECONDS must be positive, got {raw!r}")
    return value
