"""The README's adapter guide, as tests: one file checks a user's implementation, and a
wrong adapter is told what is wrong before or where it goes wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

import examples.my_orset
from harness import Implementation, run_machine
from harness.contract import ContractError
from harness.registry import implementation
from machines.orset import ORSetMachine

CI = settings(settings.get_profile("ci"))
ROOT = Path(__file__).resolve().parent.parent


def test_the_guide_example_passes_the_orset_machine():
    stats = run_machine(ORSetMachine, implementation("orset", "my-orset"), hypothesis_settings=CI)
    assert stats.never_ran() == []


def test_mbt_adapters_adds_an_implementation_without_editing_a_machine():
    env = {**os.environ, "MBT_ADAPTERS": "examples.my_orset"}
    listing = subprocess.run([sys.executable, "-m", "harness", "list"], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True).stdout
    assert "my-orset (exact)" in listing


def test_an_adapter_module_that_cannot_be_imported_is_named():
    env = {**os.environ, "MBT_ADAPTERS": "examples.no_such_adapter"}
    result = subprocess.run([sys.executable, "-m", "harness", "list"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "examples.no_such_adapter" in result.stderr


class _Base:
    def __init__(self, replica_id, clock):
        self.inner = examples.my_orset.MyORSetReplica(replica_id, clock)

    def add(self, e):
        self.inner.add(e)

    def remove(self, e):
        self.inner.remove(e)

    def value(self):
        return self.inner.value()

    def take_deltas(self):
        return self.inner.take_deltas()

    def apply_delta(self, d):
        self.inner.apply_delta(d)


class NoMerge(_Base):
    def state(self):
        return self.inner.state()


class TextState(NoMerge):
    def state(self):
        return self.inner.state().decode()

    def merge(self, state):
        self.inner.merge(state.encode())


def test_a_missing_method_is_refused_before_the_machine_runs():
    with pytest.raises(ContractError, match=r"lacks merge of SetReplica"):
        run_machine(ORSetMachine, Implementation("orset", "no-merge", NoMerge), hypothesis_settings=CI)


def test_a_wrong_return_type_is_refused_where_it_happens():
    with pytest.raises(ContractError, match=r"state\(\) returned str.*must return bytes"):
        run_machine(ORSetMachine, Implementation("orset", "text-state", TextState), hypothesis_settings=CI)
