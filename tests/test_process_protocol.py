"""The process adapter (``harness.process``): typed replies, and a child that crashes, hangs,
answers nonsense or is killed in the middle of a run is a failure of its implementation,
reported with the child's name, exit status and standard error, and always reaped.

The misbehaving children are tiny stdlib-only Python programs written into ``tmp_path``
(they start in milliseconds); ``isolated`` runs the project's own OR-Set in a child Python
process through ``harness.process.serve``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from harness import Implementation, expect_caught, run_machine
from harness.process import (
    AdapterError,
    ChildFailure,
    Contained,
    ImplementationError,
    Unavailable,
    decode,
    encode,
    isolated,
    process_implementation,
)
from implementations.wire import DecodeError
from machines.adapters.orset_delta import DELTA_STATE as ORSET_DELTA
from machines.contracts import Refused
from machines.orset import ORSetMachine
from models.clock import ManualClock

CLOCK = ManualClock(1_700_000_000_000_000_000)
QUICK = settings(settings.get_profile("ci"), max_examples=15, stateful_step_count=20)

#: A stdlib-only child: a grow-only set whose behaviour at each request is set by MODE.
CHILD = textwrap.dedent(
    """
    import base64, json, os, sys, time
    MODE = sys.argv[1]
    sets = {}
    shared = set()
    answered = 0
    for line in sys.stdin:
        request = json.loads(line)
        cmd, rid = request["cmd"], request["id"]
        reply = {"id": rid, "ok": None}
        if cmd == "hello":
            reply["ok"] = {"protocol": 1}
        elif cmd == "make":
            sets[request["replica"]] = shared if MODE == "shared" else set()  # "shared": a bug
        elif cmd == "op":
            element = request["args"][0]
            if MODE == "refuse" and element == "no":
                reply = {"id": rid, "refused": {"kind": "not_found", "detail": "no such element"}}
            elif MODE == "error":
                reply = {"id": rid, "error": "TypeError: cannot add that"}
            elif request["op"] == "add":
                sets[request["replica"]].add(json.dumps(element))
        elif cmd == "value":
            if MODE == "crash":
                sys.stderr.write("child: about to crash\\n")
                sys.stderr.flush()
                os._exit(3)
            if MODE == "hang":
                time.sleep(60)
            if MODE == "nonsense":
                print("hello, I am not JSON", flush=True)
                continue
            if MODE == "wrong-id":
                reply["id"] = rid + 7
            reply["ok"] = [json.loads(e) for e in sorted(sets[request["replica"]])]
        elif cmd == "state":
            reply["ok"] = base64.b64encode(json.dumps(sorted(sets[request["replica"]])).encode()).decode()
        elif cmd in ("merge", "apply_delta"):
            try:
                sets[request["replica"]] |= set(json.loads(base64.b64decode(request["data"])))
            except ValueError as error:
                reply = {"id": rid, "decode_error": f"not a state: {error}"}
        elif cmd == "take_deltas":
            reply["ok"] = []
        print(json.dumps(reply), flush=True)
    """
)


def child(tmp_path: Path, mode: str, **options) -> Implementation:
    program = tmp_path / "child.py"
    program.write_text(CHILD)
    return process_implementation("orset", f"child-{mode}", [sys.executable, "-S", str(program), mode], **options)


def host_of(impl: Implementation):
    return impl.make_replica.host


# ----- values and typed replies ----------------------------------------------------------


def test_values_survive_the_wire():
    for value in [None, "", "é", 0, -7, 2**53 - 1, 2**53, -(2**64), b"", b"\x00\xff", ["a", [1, b"x"]]]:
        assert decode(json.loads(json.dumps(encode(value)))) == value
    assert encode(2**60) == {"int": str(2**60)}
    assert encode(b"\xab") == {"bytes": "ab"}
    with pytest.raises(ValueError, match="not a protocol value"):
        decode({"float": "1.5"})


def test_typed_replies_become_the_contracts_exceptions(tmp_path):
    replica = child(tmp_path, "refuse").make_replica(0, CLOCK)
    replica.add("x")
    assert replica.value() == {"x"}
    with pytest.raises(Refused) as refused:
        replica.add("no")
    assert refused.value.kind == "not_found"
    with pytest.raises(DecodeError, match="not a state"):
        replica.merge(b"\xff\xfe")
    with pytest.raises(DecodeError, match="expected bytes"):
        replica.merge("not bytes")
    other = child(tmp_path, "refuse").make_replica(1, CLOCK)
    other.merge(replica.state())
    assert other.value() == {"x"}
    with pytest.raises(ImplementationError, match="cannot add that"):
        child(tmp_path, "error").make_replica(0, CLOCK).add("x")


def test_a_value_is_asked_again_only_when_it_could_differ(tmp_path):
    """A second ``value`` with nothing sent between and the clock unmoved is the first one's
    answer; any other request to the child, to any of its replicas, or a moved clock asks
    again: a child whose replicas share one set (a bug) shows it at the next read."""
    clock = ManualClock(1_700_000_000_000_000_000)
    impl = child(tmp_path, "shared")
    a, b = impl.make_replica(0, clock), impl.make_replica(1, clock)
    requests = host_of(impl).child.requests
    a.add("x")
    assert a.value() == a.value() == {"x"} and host_of(impl).child.requests == requests + 2
    b.add("y")  # to the other replica: the shared set shows in a's next value
    assert a.value() == {"x", "y"} and host_of(impl).child.requests == requests + 4
    a.value()
    clock.advance(1)
    a.value()
    b.state()
    a.value()
    assert host_of(impl).child.requests == requests + 7
    assert a.value() == {"x", "y"} and host_of(impl).child.requests == requests + 7


# ----- a child that fails is reported, killed and reaped --------------------------------


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("crash", r"(?s)exited while answering 'value'.*exited with status 3.*child: about to crash"),
        ("nonsense", r"answered 'value' with a line that is not JSON: b'hello, I am not JSON'"),
        ("wrong-id", r"not a reply to it"),
    ],
)
def test_a_crash_or_nonsense_is_a_clear_failure_of_that_child(tmp_path, mode, message):
    impl = child(tmp_path, mode)
    replica = impl.make_replica(0, CLOCK)
    replica.add("x")
    with pytest.raises(ChildFailure, match=message) as failure:
        replica.value()
    assert f"implementation 'child-{mode}' of orset" in str(failure.value)
    assert "child.py" in str(failure.value)
    process = host_of(impl).child.process
    assert process.returncode is not None, "the failed child was not reaped"
    with pytest.raises(ChildFailure, match="failed before"):
        replica.add("y")
    # The next run gets a fresh child.
    fresh = impl.make_replica(1, CLOCK)
    fresh.add("z")
    assert host_of(impl).started == 2


def test_a_hanging_child_is_killed_after_the_timeout(tmp_path):
    impl = child(tmp_path, "hang", timeout=0.5)
    replica = impl.make_replica(0, CLOCK)
    with pytest.raises(ChildFailure, match=r"did not answer 'value' within 0.5 s.*killed by signal SIGKILL"):
        replica.value()
    assert host_of(impl).child.process.returncode == -signal.SIGKILL


def test_a_program_that_cannot_start_or_is_missing_is_named(tmp_path):
    missing = process_implementation("orset", "nowhere", ["no-such-program-anywhere", "x"])
    assert "'no-such-program-anywhere' is not installed" in missing.unavailable
    with pytest.raises(Unavailable, match=r"nowhere.*is unavailable"):
        missing.make_replica(0, CLOCK)
    needs = process_implementation("orset", "needs", [sys.executable], requires=[tmp_path / "node_modules" / "x"],
                                   setup="run the installer")
    assert needs.unavailable.endswith("missing: run the installer")
    not_a_protocol = process_implementation("orset", "cat-like", [sys.executable, "-S", "-c", "import sys; sys.exit(0)"])
    with pytest.raises(ChildFailure, match=r"exited while answering 'hello'.*exited with status 0"):
        not_a_protocol.make_replica(0, CLOCK)


def test_an_unavailable_implementation_is_skipped_by_a_machine_run():
    missing = process_implementation("orset", "nowhere", ["no-such-program-anywhere"])
    with pytest.raises(pytest.skip.Exception, match="no-such-program-anywhere"):
        run_machine(ORSetMachine, missing, hypothesis_settings=QUICK)


def test_children_are_reaped_when_closed_and_without_reuse(tmp_path):
    impl = child(tmp_path, "plain", reuse_child=False)
    first, second = impl.make_replica(0, CLOCK), impl.make_replica(1, CLOCK)
    process = host_of(impl).child.process
    first.close()
    assert process.poll() is None, "one replica is still held"
    second.close()
    assert process.returncode == 0, "the child did not exit when its input closed"
    kept = child(tmp_path, "plain")
    replica = kept.make_replica(0, CLOCK)
    replica.close()
    assert host_of(kept).child.process.poll() is None, "a reused child outlives its replicas"
    host_of(kept).close()
    assert host_of(kept).child is None


# ----- whole machine runs -----------------------------------------------------------------


def test_an_isolated_python_implementation_passes_its_machine():
    impl = isolated(ORSET_DELTA)
    stats = run_machine(ORSetMachine, impl, hypothesis_settings=settings(settings.get_profile("ci"), max_examples=150))
    assert stats.never_ran() == []
    assert host_of(impl).started == 1, "one child serves every run"
    host_of(impl).close()


class KilledAtFirstRemove:
    """The isolated OR-Set, whose child is killed (SIGKILL) when a replica first removes."""

    def __init__(self, impl: Implementation, replica_id: int, clock) -> None:
        self.impl, self.inner = impl, impl.make_replica(replica_id, clock)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def remove(self, element) -> None:
        os.kill(host_of(self.impl).child.process.pid, signal.SIGKILL)
        self.inner.remove(element)


def test_killing_the_child_in_the_middle_of_a_run_gives_a_clear_failure_and_a_trace(tmp_path):
    inner = isolated(ORSET_DELTA)
    impl = Implementation("orset", "killed-child", lambda i, clock: KilledAtFirstRemove(inner, i, clock))
    fast = settings(QUICK, phases=[Phase.generate], max_examples=30)
    caught = expect_caught(ORSetMachine, impl, hypothesis_settings=fast, trace_dir=tmp_path, errors=(ChildFailure,))
    message = str(caught.error)
    assert "delta-state-isolated" in message and "killed by signal SIGKILL" in message
    assert "harness.process serve orset" in message
    assert caught.trace.steps[-1].rule == "remove"
    assert "failed: ChildFailure" in caught.report  # the report names the step and the error
    host_of(inner).close()


# ----- BaseException and native aborts ----------------------------------------------------


class Panic(BaseException):
    """Like pyo3's PanicException: a BaseException that is not an Exception."""


class PanicsOnRemove:
    def __init__(self, replica_id, clock) -> None:
        self.inner = ORSET_DELTA.make_replica(replica_id, clock)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def remove(self, element) -> None:
        raise Panic("called `Option::unwrap()` on a `None` value")


def test_a_base_exception_from_an_adapter_is_contained():
    replica = Contained(PanicsOnRemove(0, CLOCK), "implementation 'panics' of orset")
    replica.add("a")
    with pytest.raises(AdapterError, match=r"remove\(\) raised .*Panic, a BaseException that is not an Exception"):
        replica.remove("a")
    with pytest.raises(KeyboardInterrupt):
        Contained(type("Interrupted", (), {"value": lambda self: (_ for _ in ()).throw(KeyboardInterrupt)})(), "x").value()


def test_a_machine_run_reports_a_panicking_adapter_with_a_trace(tmp_path):
    impl = Implementation("orset", "panics", PanicsOnRemove)
    caught = expect_caught(ORSetMachine, impl, hypothesis_settings=QUICK, trace_dir=tmp_path, errors=(AdapterError,))
    assert caught.trace.steps[-1].rule == "remove"


class AbortsOnBadBytes:
    """A 'native library' that aborts the whole process when it meets bytes it cannot read."""

    def __init__(self, replica_id, clock) -> None:
        self.inner = ORSET_DELTA.make_replica(replica_id, clock)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def merge(self, state: bytes) -> None:
        if state.startswith(b"\xff"):
            os.abort()
        self.inner.merge(state)


def make_aborting(replica_id, clock):
    return AbortsOnBadBytes(replica_id, clock)


def test_a_native_abort_in_an_isolated_library_is_a_failure_not_the_end_of_the_run():
    impl = isolated(Implementation("orset", "aborts", make_aborting))
    replica = impl.make_replica(0, CLOCK)
    replica.add("a")
    with pytest.raises(ChildFailure, match="killed by signal SIGABRT"):
        replica.merge(b"\xff\x00")
    assert host_of(impl).child.process.returncode == -signal.SIGABRT
    fresh = impl.make_replica(1, CLOCK)
    fresh.merge(replica_state := ORSET_DELTA.make_replica(2, CLOCK).state())
    assert fresh.value() == frozenset() and replica_state
    host_of(impl).close()
