"""The toy machine as a pytest module of its own, for tests that run a whole pytest session
in a subprocess (``test_where_runs_write``). Not collected by default (not ``test_*.py``)."""

from harness import machine_test
from tests.toy import CounterMachine

test_toy_counter_machine = machine_test(CounterMachine)
