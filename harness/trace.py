"""Traces: a failing run as data a person can read and a machine can replay.

A trace is a JSON object::

    {"format": 2, "machine": "orset", "implementation": "delta-state",
     "adapter": "machines.adapters.orset_delta", "level": "exact",
     "failure": "ReplicatedMachine.check: AssertionError: replica 1 has {'x'}, the model says set()",
     "steps": [
      {"rule": "start", "args": {"replicas": 2}},
      {"rule": "add", "args": {"replica": 0, "element": "x"}}
     ]}

``steps`` are the machine's rules with concrete arguments (replica indices, elements,
clock advances, which message is delivered, dropped or duplicated), in order. Arguments
are plain JSON values, so a trace survives edits to the code that a random seed would not.
Optional fields: ``"failure"`` (the failing check, the exception and its first line),
``"note"`` (why a committed trace exists), ``"adapter"`` (the module that registers the
implementation, imported by replay when it is not loaded) and ``"level"`` (the level the
implementation was checked at). Format 1 (without ``adapter`` and ``level``) is still read.

A trace may come from anyone (a nightly run, a person, an attacker), so reading one is
bounded: the limits below are checked before anything else uses it, and every problem is
a one-line ``TraceError`` naming the file, the step and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import attrs

#: The format this version writes; ``READABLE_FORMATS`` are the ones it reads.
FORMAT = 2
READABLE_FORMATS = (1, 2)

# ----- limits on a trace (documented in the README, "Trace files and their limits") ----------

#: Largest trace file read. The longest committed trace is a few kilobytes; a run of 200
#: steps writes tens of kilobytes.
MAX_TRACE_BYTES = 16 * 1024 * 1024
#: Most steps in one trace (replay is linear in steps; this bounds its time and memory).
MAX_STEPS = 100_000
#: Deepest nesting of JSON arrays and objects, counted from the trace object itself (1): a
#: step's arguments start at depth 4 (trace, steps, step, args), so they may nest 28 deep.
MAX_DEPTH = 32
#: Most decimal digits of an integer: any 256-bit value (78 digits) fits; Python refuses to
#: convert more than 4,300 digits at all.
MAX_INTEGER_DIGITS = 80

LIMITS = {
    "MAX_TRACE_BYTES": MAX_TRACE_BYTES,
    "MAX_STEPS": MAX_STEPS,
    "MAX_DEPTH": MAX_DEPTH,
    "MAX_INTEGER_DIGITS": MAX_INTEGER_DIGITS,
}


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


#: A string of this many hex digits or more is an id or a digest: reports show its first 8.
_LONG_HEX = re.compile(r"[0-9a-f]{16,}")


def shorten(value: Any) -> Any:
    """``value`` for a person: long hex ids and bytes cut to their first 8 hex digits and
    ``…`` (stable: the same value always reads the same), containers shortened inside."""
    if isinstance(value, bytes):
        return value.hex()[:8] + ("…" if len(value) > 4 else "")
    if isinstance(value, str) and _LONG_HEX.fullmatch(value):
        return value[:8] + "…"
    if isinstance(value, list):
        return [shorten(v) for v in value]
    if isinstance(value, tuple):
        return tuple(shorten(v) for v in value)
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in value.items()}
    return value


@attrs.frozen
class Step:
    """One rule of a machine with its concrete arguments."""

    rule: str
    args: dict[str, Any] = attrs.field(factory=dict)

    def describe(self) -> str:
        """``rule(arg=value, ...)`` with ids shortened (see ``shorten``)."""
        inner = ", ".join(f"{k}={shorten(v)!r}" for k, v in self.args.items())
        return f"{self.rule}({inner})"

    def key(self) -> str:
        """The step as canonical text: equal steps, equal keys."""
        return json.dumps([self.rule, self.args], sort_keys=True)


@attrs.frozen
class Trace:
    machine: str
    implementation: str
    steps: tuple[Step, ...]
    failure: str = ""
    note: str = ""
    #: The module that registered the implementation (replay imports it if needed).
    adapter: str = ""
    #: The level the implementation was checked at (``exact``, ``convergent``, ...).
    level: str = ""
    #: The format the trace was read from; ``to_json`` always writes ``FORMAT``.
    format: int = FORMAT

    def to_json(self) -> str:
        """Canonical JSON text, one step a line, so diffs of traces read well."""
        head: dict[str, Any] = {"format": FORMAT, "machine": self.machine, "implementation": self.implementation}
        for name in ("adapter", "level", "failure", "note"):
            if getattr(self, name):
                head[name] = getattr(self, name)
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


# ----- reading a trace, within its limits -----------------------------------------------------


@attrs.frozen
class _Refused:
    """A JSON number the reader refused (too many digits, not finite): reported with its place."""

    why: str

    def __repr__(self) -> str:
        return f"<{self.why}>"


def _parse_int(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        return _Refused(f"an integer of {digits} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float | _Refused:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Refused(f"a number out of range ({text[:20]}…)" if len(text) > 20 else f"a number out of range ({text})")
    return value


def _parse_constant(text: str) -> _Refused:
    return _Refused(f"{text}, which is not JSON")


def _path(parts: list[str | int]) -> str:
    """``args.skews_ns[3]`` from ``["args", "skews_ns", 3]`` (long paths elided in the middle)."""
    shown = parts if len(parts) <= 8 else [*parts[:4], "…", *parts[-2:]]
    text = ""
    for part in shown:
        text += f"[{part}]" if isinstance(part, int) else part if part == "…" else (f".{part}" if text else part)
    return text


#: Strings, brackets, colons and commas of JSON text, for finding where it nests too deep.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]')


def _where_too_deep(text: str) -> tuple[int | None, str | None]:
    """The step and field where ``text`` first nests deeper than ``MAX_DEPTH`` (the JSON
    parser itself gives up with a RecursionError and no position)."""
    stack: list[list[Any]] = []  # [opening bracket, current key or index]
    last_string = '""'
    for token in _TOKENS.finditer(text):
        tok = token.group()
        if tok[0] == '"':
            last_string = tok
        elif tok in "[{":
            stack.append([tok, 0 if tok == "[" else None])
            if len(stack) > MAX_DEPTH:
                break
        elif tok in "]}":
            if stack:
                stack.pop()
        elif tok == ":" and stack:
            stack[-1][1] = json.loads(last_string)
        elif tok == "," and stack and stack[-1][0] == "[":
            stack[-1][1] += 1
    else:
        return None, None
    if len(stack) > 2 and stack[0][1] == "steps" and stack[1][0] == "[":
        return stack[1][1], _path([frame[1] for frame in stack[2:-1]])
    return None, _path([frame[1] for frame in stack[:-1] if frame[1] is not None])


def _check_value(value: Any, depth: int, path: list[str | int], source: str, step: int | None) -> None:
    """Refuse a value nested deeper than ``MAX_DEPTH`` or holding a refused number."""
    pending = [(value, depth, path)]
    while pending:
        item, level, where = pending.pop()
        if isinstance(item, _Refused):
            raise TraceError(source, item.why, step=step, field=_path(where))
        if isinstance(item, (dict, list)):
            if level + 1 > MAX_DEPTH:
                raise TraceError(source, f"nested deeper than {MAX_DEPTH} levels", step=step, field=_path(where))
            children = item.items() if isinstance(item, dict) else enumerate(item)
            pending.extend((child, level + 1, [*where, key]) for key, child in children)


def trace_from_json(text: str, source: str = "<trace>") -> Trace:
    """Parse and check a trace; every problem is a ``TraceError`` naming step and field."""
    if len(text) > MAX_TRACE_BYTES:
        raise TraceError(source, f"{len(text)} characters, more than the {MAX_TRACE_BYTES} a trace may have")
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except json.JSONDecodeError as error:
        raise TraceError(source, f"not JSON: {error}") from None
    except RecursionError:
        step, field = _where_too_deep(text)
        raise TraceError(source, f"nested deeper than {MAX_DEPTH} levels", step=step, field=field) from None
    if not isinstance(data, dict):
        raise TraceError(source, f"expected a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt not in READABLE_FORMATS or isinstance(fmt, bool):
        raise TraceError(source, f"unsupported format {fmt!r} (this version reads {READABLE_FORMATS})", field="format")
    for name in ("machine", "implementation"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise TraceError(source, f"expected a non-empty string, got {data.get(name)!r}", field=name)
    optional = ("failure", "note") if fmt == 1 else ("failure", "note", "adapter", "level")
    for name in optional:
        if not isinstance(data.get(name, ""), str):
            raise TraceError(source, "expected a string", field=name)
    unknown = set(data) - {"format", "machine", "implementation", "steps", *optional}
    if unknown:
        raise TraceError(source, f"unknown fields {sorted(unknown)} (format {fmt})")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list):
        raise TraceError(source, "expected a list of steps", field="steps")
    if len(raw_steps) > MAX_STEPS:
        raise TraceError(source, f"{len(raw_steps)} steps, more than the {MAX_STEPS} a trace may have", field="steps")
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
        _check_value(args, 4, ["args"], source, index)
        steps.append(Step(rule, args))
    return Trace(
        machine=data["machine"],
        implementation=data["implementation"],
        steps=tuple(steps),
        failure=data.get("failure", ""),
        note=data.get("note", ""),
        adapter=data.get("adapter", ""),
        level=data.get("level", ""),
        format=fmt,
    )


def load_trace(path: str | Path) -> Trace:
    """Read and check the trace at ``path`` (see the limits above)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_TRACE_BYTES + 1)
    except OSError as error:
        raise TraceError(str(path), f"cannot read: {error.strerror or error}") from None
    if len(raw) > MAX_TRACE_BYTES:
        raise TraceError(str(path), f"larger than the {MAX_TRACE_BYTES} bytes a trace may have")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise TraceError(str(path), f"not UTF-8 text: byte {error.start} (line {line}) is {raw[error.start]:#04x}") from None
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
