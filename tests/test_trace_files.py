"""Trace files from anyone: bounded reading, one-line errors, formats old and new, and the CLI
commands that read and write them (promote never replaces, explain says when a trace fails)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tests.toy  # noqa: F401 (registers the toy machine and its implementations)
from harness import Step, Trace, TraceError, load_trace, save_trace
from harness.__main__ import main
from harness.trace import MAX_DEPTH, MAX_INTEGER_DIGITS, MAX_STEPS, MAX_TRACE_BYTES

ROOT = Path(__file__).resolve().parent.parent
#: The field named for a list nested too deep in the ``replica`` argument (the middle elided).
DEEP = "args.replica[0][0]…[0][0]"

STEPS = (
    Step("start", {"replicas": 2}),
    Step("increment", {"replica": 0}),
    Step("increment", {"replica": 0}),
    Step("increment", {"replica": 0}),
    Step("sync", {"source": 0, "target": 1}),
)


def toy(implementation: str = "buggy", steps=STEPS) -> Trace:
    return Trace("toy-counter", implementation, tuple(steps), adapter="tests.toy", level="exact")


def written(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "hostile.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def with_argument(value_text: str, step: int = 1) -> str:
    """The toy trace's JSON with ``value_text`` as the ``replica`` argument of ``step``."""
    data = json.loads(toy().to_json())
    data["steps"][step]["args"]["replica"] = "__HERE__"
    return json.dumps(data).replace('"__HERE__"', value_text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (with_argument("9" * 5000), f"step 1, field 'args.replica': an integer of 5000 digits (at most {MAX_INTEGER_DIGITS})"),
        (with_argument("-" + "9" * (MAX_INTEGER_DIGITS + 1)), "step 1, field 'args.replica': an integer of"),
        (with_argument("[" * 100_000 + "]" * 100_000), f"step 1, field {DEEP!r}: nested deeper than {MAX_DEPTH}"),
        (with_argument("[" * 40 + "]" * 40, step=3), f"step 3, field {DEEP!r}: nested deeper than {MAX_DEPTH}"),
        (with_argument("NaN"), "step 1, field 'args.replica': NaN, which is not JSON"),
        (with_argument("1e999"), "step 1, field 'args.replica': a number out of range"),
        (json.dumps({"format": 1, "machine": "m", "implementation": "i", "steps": [{"rule": "r"}] * (MAX_STEPS + 1)}),
         f"field 'steps': {MAX_STEPS + 1} steps, more than the {MAX_STEPS}"),
        ('{"format": ' + "1" * 5000 + "}", "field 'format': unsupported format <an integer of 5000 digits"),
    ],
    ids=["5000-digit-integer", "long-negative-integer", "nested-100000-deep", "nested-40-deep", "nan", "infinity",
         "too-many-steps", "huge-format"],
)
def test_a_hostile_trace_gets_one_line_naming_file_step_and_field(tmp_path, text, expected):
    path = written(tmp_path, text)
    with pytest.raises(TraceError) as error:
        load_trace(path)
    message = str(error.value)
    assert message.startswith(f"{path}, ") and expected in message, message
    assert "\n" not in message and len(message) < 400


def test_bytes_that_are_not_utf8_are_named_by_offset(tmp_path):
    path = written(tmp_path, toy().to_json().encode().replace(b'"sync"', b'"sy\xffnc"'))
    with pytest.raises(TraceError, match=r"hostile\.json: not UTF-8 text: byte \d+ \(line 7\) is 0xff"):
        load_trace(path)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.json"
    with path.open("wb") as file:
        file.truncate(MAX_TRACE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(TraceError, match=rf"huge\.json: larger than the {MAX_TRACE_BYTES} bytes a trace may have"):
        load_trace(path)


@pytest.mark.parametrize("command", ["replay", "explain", "minimize", "promote"])
def test_every_command_gives_the_one_line_error_and_exit_2(tmp_path, capsys, command):
    path = written(tmp_path, with_argument("[" * 100_000 + "]" * 100_000))
    extra = ["--name", "x", "--directory", str(tmp_path / "out")] if command == "promote" else []
    status = main([command, str(path), *extra])
    output = capsys.readouterr()
    text = output.err + output.out
    assert status in (1, 2) if command == "replay" else status == 2
    assert f"{path}, step 1, field 'args.replica[0][0]…[0][0]': nested deeper" in text
    assert "Traceback" not in text


def test_format_1_traces_still_load_and_format_2_records_adapter_and_level(tmp_path):
    old = tmp_path / "old.json"
    old.write_text('{"format": 1, "machine": "toy-counter", "implementation": "good",\n "steps": [\n'
                   '  {"rule": "start", "args": {"replicas": 2}}\n ]}\n')
    trace = load_trace(old)
    assert (trace.format, trace.adapter, trace.level) == (1, "", "")
    new = load_trace(save_trace(toy(), tmp_path))
    assert (new.format, new.adapter, new.level) == (2, "tests.toy", "exact")
    assert new == toy()
    old.write_text(old.read_text().replace('"good",', '"good", "adapter": "tests.toy",'))
    with pytest.raises(TraceError, match=r"unknown fields \['adapter'\] \(format 1\)"):
        load_trace(old)


def test_every_committed_trace_loads():
    for path in sorted((ROOT / "regressions" / "traces").glob("*.json")):
        load_trace(path)


# ----- promote never replaces a file ----------------------------------------------------------


def test_promote_never_replaces_an_existing_regression_without_force(tmp_path, capsys):
    directory = tmp_path / "regressions"
    passing = save_trace(toy("good"), tmp_path / "found")
    assert main(["promote", str(passing), "--name", "kept", "--note", "first", "--directory", str(directory)]) == 0
    other = save_trace(toy("good", STEPS[:2]), tmp_path / "found")
    assert main(["promote", str(other), "--name", "kept", "--note", "second", "--directory", str(directory)]) == 1
    assert f"{directory / 'kept.json'} exists: not replaced" in capsys.readouterr().err
    assert load_trace(directory / "kept.json").note == "first"
    assert main(["promote", str(other), "--name", "kept", "--note", "second", "--directory", str(directory), "--force"]) == 0
    assert load_trace(directory / "kept.json").note == "second"


def test_promote_leaves_every_other_file_of_the_directory_alone(tmp_path):
    """A committed trace saved under its default name (machine-implementation-digest) is not
    touched when the same steps are promoted under another name."""
    directory = tmp_path / "regressions"
    committed = save_trace(Trace("toy-counter", "good", STEPS, note="the committed one"), directory)
    before = committed.read_bytes()
    passing = save_trace(Trace("toy-counter", "good", STEPS, note="a new find"), tmp_path / "found")
    assert main(["promote", str(passing), "--name", "another", "--directory", str(directory)]) == 0
    assert committed.read_bytes() == before
    assert sorted(p.name for p in directory.iterdir()) == sorted([committed.name, "another.json"])


# ----- explain says whether the trace fails ---------------------------------------------------


def test_explain_exits_non_zero_on_a_failing_or_stale_trace(tmp_path, capsys):
    failing = save_trace(toy("buggy"), tmp_path)
    assert main(["explain", str(failing)]) == 1
    report = capsys.readouterr().out
    assert "first divergence" in report and "Result: failed at step 4" in report
    assert "CounterMachine.check failed: AssertionError: replica 1 counts 0, the model says 3" in report
    stale = save_trace(toy("good", (*STEPS[:1], Step("increment", {"replica": 7}))), tmp_path)
    assert main(["explain", str(stale)]) == 1
    assert "Result: stale at step 1" in capsys.readouterr().out
    passing = save_trace(toy("good"), tmp_path)
    assert main(["explain", str(passing)]) == 0
    assert main(["replay", str(failing)]) == 1 and main(["replay", str(stale)]) == 1


def test_the_cli_exit_status_in_a_real_process(tmp_path):
    failing = save_trace(toy("buggy"), tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "harness", "explain", str(failing)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Result: failed at step 4" in result.stdout
