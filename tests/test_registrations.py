"""A registration no machine can check is a loud error naming it; traces say where their
implementation comes from, so replay never depends on MBT_ADAPTERS."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import Implementation, RegistrationError, Step, Trace, register, save_trace
from harness.registry import _implementations, check_registrations
from tests.toy import BUGGY, Counter, CounterMachine

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "MBT_ADAPTERS"}
    environment.update(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", **env)
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=300)


def adapter_module(tmp_path: Path, name: str, machine: str, level: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        from harness import Implementation, register
        from machines.adapters.orset_delta import DELTA_STATE
        register(Implementation(machine={machine!r}, name="mine", make_replica=DELTA_STATE.make_replica, level={level!r}))
    """))
    return name


def test_a_level_the_machine_does_not_check_is_refused_at_registration():
    with pytest.raises(RegistrationError, match=r"implementation 'relaxed' of machine 'toy-counter' \(registered by "
                       r"(tests\.)?test_registrations\) declares level 'convergent', which machine 'toy-counter' does not check"):
        register(Implementation("toy-counter", "relaxed", lambda i, c: Counter(i, c), level="convergent"))
    assert "relaxed" not in _implementations["toy-counter"]


def test_an_unknown_machine_is_named_when_registrations_are_checked():
    register(Implementation("toy-countre", "typo", lambda i, c: Counter(i, c)))
    try:
        with pytest.raises(RegistrationError, match=r"implementation 'typo' of machine 'toy-countre' .*there is no machine "
                           r"'toy-countre' \(machines: .*toy-counter"):
            check_registrations()
    finally:
        del _implementations["toy-countre"]


def test_a_machine_module_that_defines_no_such_machine_is_no_excuse(monkeypatch):
    """A loaded ``machines.<name>`` module whose import has finished without registering
    ``<name>`` (a renamed machine) leaves the implementation unchecked: an error, not a skip."""
    import types

    finished = types.ModuleType("machines.toy-gone")
    finished.__spec__ = types.SimpleNamespace(_initializing=False)
    monkeypatch.setitem(sys.modules, "machines.toy-gone", finished)
    register(Implementation("toy-gone", "orphan", lambda i, c: Counter(i, c)))
    try:
        with pytest.raises(RegistrationError, match=r"implementation 'orphan' of machine 'toy-gone' .*there is no machine"):
            check_registrations()
        finished.__spec__._initializing = True  # still being imported further up the stack: checked later
        check_registrations()
    finally:
        del _implementations["toy-gone"]


@pytest.mark.parametrize(("machine", "level", "expected"), [
    ("or-set", "exact", "implementation 'mine' of machine 'or-set' (registered by misregistered): there is no machine 'or-set'"),
    ("lww", "add-wins", "implementation 'mine' of machine 'lww' (registered by misregistered) declares level 'add-wins', "
                        "which machine 'lww' does not check"),
])
def test_pytest_says_what_is_wrong_instead_of_collecting_nothing(tmp_path, machine, level, expected):
    module = adapter_module(tmp_path, "misregistered", machine, level)
    result = run(["-m", "pytest", str(ROOT / "machines" / "orset.py"), "-k", "mine", "-q",
                  "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "--collect-only"], tmp_path,
                 MBT_ADAPTERS=module)
    assert result.returncode not in (0, 5), result.stdout
    assert expected in result.stdout + result.stderr


def test_a_trace_records_its_adapter_and_level_and_replays_without_mbt_adapters(tmp_path):
    """``examples.my_orset`` is no adapter of ``machines/adapters``: without the trace's
    ``adapter`` field, replaying a trace of it would need ``MBT_ADAPTERS=examples.my_orset``."""
    import examples.my_orset  # noqa: F401 (registers my-orset)
    from harness.registry import implementation

    mine = implementation("orset", "my-orset")
    assert (mine.adapter, mine.level) == ("examples.my_orset", "exact")
    steps = (Step("start", {"replicas": 2, "skews_ns": [0, 0]}), Step("add", {"replica": 0, "element": "a"}),
             Step("sync_all", {}))
    trace = Trace("orset", "my-orset", steps, adapter=mine.adapter, level=mine.level)
    path = save_trace(trace, tmp_path)
    result = run(["-m", "harness", "replay", str(path)], tmp_path)
    assert result.returncode == 0 and "passed" in result.stdout, result.stdout + result.stderr


def test_a_failing_run_records_adapter_and_level(tmp_path):
    from hypothesis import settings

    from harness import load_trace, run_machine

    with pytest.raises(AssertionError):
        run_machine(CounterMachine, BUGGY, hypothesis_settings=settings(settings.get_profile("ci")), trace_dir=tmp_path)
    [path] = tmp_path.iterdir()
    trace = load_trace(path)
    assert (trace.adapter, trace.level, trace.format) == ("tests.toy", "exact", 2)


def test_list_shows_each_implementation_with_its_level_and_origin(tmp_path):
    result = run(["-m", "harness", "list"], tmp_path)
    assert "delta-state (exact) from machines.adapters.orset_delta" in result.stdout, result.stdout + result.stderr
