"""The framework: traced state machines, implementation registry, traces, replay, profiles.

Machines (``machines/``) subclass ``TracedMachine``; adapters (``machines/adapters/``)
``register`` implementations; ``run_machine`` runs a machine against one implementation,
writes a trace when it fails and explains the failure step by step; ``replay`` drives a
saved trace through the same rules.
"""

from harness.machine import RuleStats, StepNotApplicable, TracedMachine, guard
from harness.registry import Implementation, implementations, machine_class, register
from harness.runner import Caught, Outcome, expect_caught, explain, machine_test, replay, run_machine
from harness.trace import Step, Trace, TraceError, load_trace, save_trace

__all__ = [
    "Caught",
    "Implementation",
    "Outcome",
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
    "register",
    "replay",
    "run_machine",
    "save_trace",
]
