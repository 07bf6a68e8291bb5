"""Replay every committed trace in ``regressions/traces/``, forever.

Each trace is replayed twice against the implementation it names and against every other
``exact`` implementation of its machine. It must pass both times with the same outcome: a
failure is a regression, two different outcomes are non-determinism, and a step that no
longer fits the machine makes the trace *stale*, which fails too (a stale trace checks
nothing, so it must be updated or removed, never silently passed). A malformed trace is an
error naming the file, the step and the field.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import implementations, load_trace, replay
from harness.registry import implementation

TRACES = sorted((Path(__file__).parent / "traces").glob("*.json"))


def _cases():
    for path in TRACES:
        try:
            trace = load_trace(path)
        except Exception:  # a malformed trace still gets a case, which reports the error
            yield pytest.param(path, None, id=path.stem)
            continue
        names = [trace.implementation] + [
            i.name for i in implementations(trace.machine) if i.level == "exact" and i.name != trace.implementation
        ]
        for name in names:
            yield pytest.param(path, name, id=f"{path.stem}[{name}]")


@pytest.mark.parametrize(("path", "implementation_name"), list(_cases()))
def test_trace_replays(path: Path, implementation_name: str | None) -> None:
    trace = load_trace(path)  # raises TraceError naming file, step and field
    impl = implementation(trace.machine, implementation_name or trace.implementation)
    first = replay(trace, impl=impl)
    second = replay(trace, impl=impl)
    assert first == second, f"{path.name} is non-deterministic: {first} then {second}"
    if first.status == "stale":
        pytest.fail(f"STALE trace {path.name} against {impl.name}: {first}. Update or remove it.")
    assert first.status == "passed", f"{path.name} against {impl.name}: {first}"
