"""The framework: traced state machines, implementation registry, traces, replay, profiles.

Machines (``machines/``) subclass ``TracedMachine``; adapters (``machines/adapters/``)
``register`` implementations; ``run_machine`` runs a machine against one implementation,
writes a trace when it fails and explains the failure step by step; ``replay`` drives a
saved trace through the same rules; ``minimize`` removes the steps and simplifies the
arguments a failing trace does not need.
"""

from harness.failure import Failure
from harness.machine import RuleStats, StepNotApplicable, TracedMachine, guard
from harness.minimize import MinimizeBudget, Minimized, minimize
from harness.registry import Implementation, RegistrationError, implementations, machine_class, register
from harness.replay import Outcome, explain, replay
from harness.runner import Caught, expect_caught, machine_test, run_machine
from harness.trace import Step, Trace, TraceError, load_trace, save_trace

__all__ = [
    "Caught",
    "Failure",
    "Implementation",
    "MinimizeBudget",
    "Minimized",
    "Outcome",
    "RegistrationError",
    "RuleStats",
    "Step",
    "StepNotApplicable",
    "Trace",
    "TraceError",
    "TracedMachine",
    "expect_caught",
    "explain",
    "guard",
    "implementations",
    "load_trace",
    "machine_class",
    "machine_test",
    "minimize",
    "register",
    "replay",
    "run_machine",
    "save_trace",
]
