"""Traces: a failing run as data a person can read and a machine can replay.

A trace is a JSON object::

    {"format": 1, "machine": "orset", "implementation": "delta-state",
     "failure": "replica 1 has {'x'}, the model says set()",
     "steps": [
      {"rule": "start", "args": {"replicas": 2}},
      {"rule": "add", "args": {"replica": 0, "element": "x"}}
     ]}

``steps`` are the machine's rules with concrete arguments (replica indices, elements,
clock advances, which message is delivered, dropped or duplicated), in order. Arguments
are plain JSON values, so a trace survives edits to the code that a random seed would not.
An optional ``"note"`` says why a committed trace exists.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import attrs

FORMAT = 1


class TraceError(ValueError):
    """A trace file that cannot be read: names the file, the step and the field."""

    def __init__(self, source: str, message: str, step: int | None = None, field: str | None = None):
        self.source, self.step, self.field = source, step, field
        where = source
        if step is not None:
            where += f", step {step}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


@attrs.frozen
class Step:
    """One rule of a machine with its concrete arguments."""

    rule: str
    args: dict[str, Any] = attrs.field(factory=dict)

    def describe(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.rule}({inner})"


@attrs.frozen
class Trace:
    machine: str
    implementation: str
    steps: tuple[Step, ...]
    failure: str = ""
    note: str = ""
    format: int = FORMAT

    def to_json(self) -> str:
        """Canonical JSON text, one step a line, so diffs of traces read well."""
        head = {"format": self.format, "machine": self.machine, "implementation": self.implementation}
        if self.failure:
            head["failure"] = self.failure
        if self.note:
            head["note"] = self.note
        lines = [json.dumps(head, ensure_ascii=False)[:-1] + ',\n "steps": [']
        body = [
            "  " + json.dumps({"rule": s.rule, "args": s.args}, ensure_ascii=False, sort_keys=False)
            for s in self.steps
        ]
        lines.append(",\n".join(body))
        lines.append(" ]}")
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        """A short name for the steps, stable across runs: used in file names."""
        text = json.dumps([[s.rule, s.args] for s in self.steps], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


#: What ``_plain_copy`` returns for a value only a JSON round trip can normalize (or refuse).
_NOT_PLAIN = object()
#: Nesting beyond this goes the JSON way, which also refuses circular references.
_MAX_PLAIN_DEPTH = 32


def _plain_copy(value: Any, depth: int = 0) -> Any:
    """``value`` exactly as JSON would read it back, built without JSON, or ``_NOT_PLAIN``.

    Only exact ``str``, ``int``, ``bool``, ``None``, finite ``float``, and lists, tuples
    (which become lists) and string-keyed dicts of these: for them the round trip is the
    identity up to fresh containers. Anything else (a subclass, a non-string key, NaN,
    bytes) is left to the round trip, which converts it or says why it cannot.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else _NOT_PLAIN
    if depth >= _MAX_PLAIN_DEPTH:
        return _NOT_PLAIN
    if kind is list or kind is tuple:
        items = []
        for item in value:
            copied = _plain_copy(item, depth + 1)
            if copied is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(copied)
        return items
    if kind is dict:
        entries = {}
        for key, item in value.items():
            copied = _plain_copy(item, depth + 1) if type(key) is str else _NOT_PLAIN
            if copied is _NOT_PLAIN:
                return _NOT_PLAIN
            entries[key] = copied
        return entries
    return _NOT_PLAIN


def normalize_args(args: dict[str, Any], where: str = "step") -> dict[str, Any]:
    """The arguments as they will read back from JSON (tuples become lists).

    Machines run on these normalized values, so a live run and its replay see the same.
    Every live step passes through here, so plain values (nearly all of them) are copied
    directly; the rest take the JSON round trip itself.
    """
    copied = _plain_copy(args)
    if copied is not _NOT_PLAIN:
        return copied
    try:
        return json.loads(json.dumps(args, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where}: arguments must be plain JSON values: {error}") from None


def trace_from_json(text: str, source: str = "<trace>") -> Trace:
    """Parse and check a trace; every problem is a ``TraceError`` naming step and field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TraceError(source, f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise TraceError(source, f"expected a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise TraceError(source, f"unsupported format {fmt!r} (this version reads {FORMAT})", field="format")
    for name in ("machine", "implementation"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise TraceError(source, f"expected a non-empty string, got {data.get(name)!r}", field=name)
    for name in ("failure", "note"):
        if not isinstance(data.get(name, ""), str):
            raise TraceError(source, "expected a string", field=name)
    unknown = set(data) - {"format", "machine", "implementation", "failure", "note", "steps"}
    if unknown:
        raise TraceError(source, f"unknown fields {sorted(unknown)}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list):
        raise TraceError(source, "expected a list of steps", field="steps")
    steps = []
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, dict):
            raise TraceError(source, f"expected an object, got {type(raw).__name__}", step=index)
        extra = set(raw) - {"rule", "args"}
        if extra:
            raise TraceError(source, f"unknown fields {sorted(extra)}", step=index)
        rule = raw.get("rule")
        if not isinstance(rule, str) or not rule:
            raise TraceError(source, f"expected a rule name, got {rule!r}", step=index, field="rule")
        args = raw.get("args", {})
        if not isinstance(args, dict):
            raise TraceError(source, f"expected an object, got {type(args).__name__}", step=index, field="args")
        steps.append(Step(rule, args))
    return Trace(
        machine=data["machine"],
        implementation=data["implementation"],
        steps=tuple(steps),
        failure=data.get("failure", ""),
        note=data.get("note", ""),
    )


def load_trace(path: str | Path) -> Trace:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TraceError(str(path), f"cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise TraceError(str(path), f"not UTF-8 text: {error}") from None
    return trace_from_json(text, str(path))


def save_trace(trace: Trace, directory: str | Path) -> Path:
    """Write ``trace`` into ``directory`` (created if needed) and return its path.

    The file name is ``<machine>-<implementation>-<digest>.json``; the same steps always
    get the same name, so saving twice never makes two files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{trace.machine}-{trace.implementation}-{trace.digest()}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(trace.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path
