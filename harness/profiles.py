"""Hypothesis profiles, chosen the Hypothesis way.

* ``ci``: derandomized and bounded, so every run of the suite does the same work; no
  example database; every rule of every machine must run at least once.
* ``dev`` (the default): random, a local example database, moderate sizes.
* ``nightly``: long step counts, a shared example database, and a time budget per machine
  (``MBT_BUDGET_SECONDS``, default 600): the machine is run again and again, each run with
  fresh randomness and a few hundred examples, until the budget is spent or it fails. The
  budget is checked between runs, so a machine overruns it by at most one run (plus the
  shrinking of a failure, which is the point of the nightly run).

Select with ``pytest --hypothesis-profile=nightly`` or ``HYPOTHESIS_PROFILE=nightly``.
``CI=true`` in the environment makes ``ci`` the default.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

from harness.database import from_spec

#: Profiles in which a rule that never ran fails the run.
STRICT_COVERAGE = frozenset({"ci", "nightly"})
#: Profiles that keep running a machine until its time budget is spent.
BUDGETED = frozenset({"nightly"})

_quiet = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
#: Every phase but ``explain``: our own step-by-step report explains a failure, and
#: Hypothesis's explain phase about doubles the time a failing machine takes.
_phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]


def register_profiles() -> None:
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
        phases=[Phase.explicit, Phase.generate],
    )
    settings.register_profile(
        "dev",
        max_examples=100,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=_quiet,
    )
    settings.register_profile(
        "nightly",
        # examples per run; the run repeats until its budget is spent, and the budget is
        # checked between runs, so ``python -m harness nightly`` makes runs short
        max_examples=int(os.environ.get("MBT_NIGHTLY_EXAMPLES", "300")),
        stateful_step_count=200,
        deadline=None,
        database=from_spec(os.environ.get("MBT_EXAMPLE_DB", ".hypothesis/nightly")),  # a directory or a Redis URL
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
