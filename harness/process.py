"""The process adapter: an implementation in any language, checked as a child process.

An implementation that is not a Python object (a Node.js program, a Rust binary, or a
Python library too dangerous to load into the test process) runs as a *child process*
that speaks the small protocol below over its standard input and output. On the Python
side one generic adapter, ``process_implementation``, turns a registration line into
replicas for any machine whose replicas have a protocol in ``machines/contracts.py``::

    register(process_implementation("orset", "node-orset", ["node", "orset.js"], cwd=HERE, level="exact"))

The protocol (version 1): JSON lines
-------------------------------------

Each request is one JSON object on one line of the child's standard input; the child
answers each with one JSON object on one line of its standard output, in order, and
writes nothing else there (diagnostics go to standard error). It exits when its input
closes. Why JSON lines rather than length-prefixed msgpack: every language reads and
writes JSON with its standard library (a dependency-free Node.js program is a dozen
lines), and a protocol log is readable by eye; the cost, base64 for states and deltas,
is nothing at the sizes machines use (replies of a few hundred bytes; a ``value()`` request
takes about 0.1 ms of CPU against Node.js: ``benchmarks/process_requests.py``).

Every request has ``"id"`` (1, 2, 3, ... per child; the reply repeats it) and ``"cmd"``.
Requests about a replica also carry ``"replica"`` (a handle the harness picks, unique
within the child) and ``"now"`` (that replica's clock, integer nanoseconds since the
epoch, for implementations that read time; never read the wall clock).

===============  ====================================  =========================================
``cmd``          other fields                          ``"ok"`` of the reply
===============  ====================================  =========================================
``hello``        ``"protocol": 1``                     ``{"protocol": 1}`` (anything else: refused)
``make``         ``"replica_id"``: 0, 1, 2, ...        ``null``: a new, empty replica
``op``           ``"op"``: a method of the contract    its result (``null`` for most)
                 (``"insert"``), ``"args"``: a list
``value``                                              the value (see below)
``state``                                              the full state, base64
``merge``        ``"data"``: a state, base64           ``null``
``take_deltas``                                        a list of deltas, base64 each
``apply_delta``  ``"data"``: a delta, base64           ``null``
``drop``                                               ``null``: the harness is done with it
===============  ====================================  =========================================

A reply is ``{"id": n, "ok": result}``, or one of the typed refusals:

* ``{"id": n, "refused": {"kind": "not_found", "detail": "..."}}``: the operation was
  refused by the implementation's guard (``machines.contracts.Refused``);
* ``{"id": n, "decode_error": "..."}``: the bytes of ``merge``/``apply_delta`` are not a
  valid state or delta, and nothing changed (``implementations.wire.DecodeError``);
* ``{"id": n, "error": "..."}``: anything else went wrong in the implementation; the
  machine reports it as a failure of that implementation.

Values and arguments are JSON: strings, integers, ``null``, lists; bytes are
``{"bytes": "<hex>"}`` (as in traces); an integer beyond +-(2**53 - 1) is ``{"int":
"<decimal>"}``, so a JavaScript child loses no digits. A set's value is a list of its
elements, a sequence's a list of one-character strings (or one string), a register's the
value or ``null``.

What the harness guarantees
---------------------------

A child that crashes, hangs past ``timeout`` seconds on one request, or answers anything
but a well-formed reply to that request is a failure *of that implementation*: the
harness kills and reaps it and raises ``ChildFailure`` naming the implementation, the
command, what went wrong, the exit status (or signal) and the tail of its standard
error. The machine run fails like any other, with its trace so far; the test run goes
on. Every child is reaped: when its replicas are dropped (``reuse_child=False``), when
the harness process exits (``atexit``), or, if that process is killed, by itself when its
standard input closes.

One child holds all replicas of one implementation, and is kept for the next machine run
(each run drops its replicas at teardown): starting Node.js with Yjs or Automerge costs
0.12-0.25 s of CPU, as much as one to two thousand requests, and a machine makes up to 250
runs of 2-5 replicas each in ``ci``. A child that failed is replaced by a fresh one for the next run.
``reuse_child=False`` starts a child per machine run instead, for an implementation that
keeps global state across replicas.

Isolation for an in-process library
-----------------------------------

``isolated(implementation)`` runs a Python implementation's replicas in a child Python
process speaking the same protocol (``python -m harness.process serve ...``): a native
library that aborts the process on bad bytes takes down the child, which is reported,
not the test run. And every replica a replicated machine makes is wrapped by
``Contained``: a ``BaseException`` that is not an ``Exception`` (pyo3's ``PanicException``,
Loro's bare ``BaseException``, a library's ``SystemExit``) raised by an adapter becomes an
``AdapterError`` naming the implementation and the method, never escapes the run.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import importlib
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.registry import Implementation
from implementations.limits import MAX_PROCESS_REPLY_BYTES
from implementations.wire import DecodeError
from machines.contracts import CONTRACTS, Refused, Replica
from models.clock import Clock

PROTOCOL = 1
#: Seconds a child may take to answer one request before it is killed (a request takes
#: about 0.1 ms; this is for a child that hangs, on a loaded 2-core CI machine).
DEFAULT_TIMEOUT = 10.0
#: Seconds a child may take to start and answer ``hello`` (Node.js loading a WebAssembly
#: library on a busy machine).
START_TIMEOUT = 30.0
#: Seconds a closing child may take to exit after its input closes, before it is killed.
EXIT_GRACE = 2.0
#: How much of a failed child's standard error a ``ChildFailure`` quotes.
STDERR_TAIL_BYTES = 2000
#: Integers JSON numbers carry exactly in every language (JavaScript's ``Number``).
SAFE_INTEGER = 2**53 - 1
#: The root of the project: children get it on ``PYTHONPATH``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

REPLICATION = frozenset(name for name in vars(Replica) if not name.startswith("_"))


class ChildFailure(Exception):
    """A child process crashed, hung or answered nonsense: a failure of its implementation."""


class ImplementationError(Exception):
    """A child answered ``{"error": ...}``: the implementation failed at a request."""


class AdapterError(Exception):
    """An adapter raised a ``BaseException`` that is not an ``Exception``; see ``Contained``."""


class Unavailable(pytest.skip.Exception):
    """An implementation that cannot run here (its program or packages are missing).

    Raised by its ``make_replica``: under pytest the machine or law test is reported as
    skipped with the reason, never silently absent, and never failed.
    """


# ----- values on the wire ----------------------------------------------------------------


def encode(value: Any) -> Any:
    """A Python value as the protocol's JSON (bytes and big integers tagged)."""
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if -SAFE_INTEGER <= value <= SAFE_INTEGER else {"int": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode(item) for item in value]
    raise TypeError(f"the process protocol carries None, strings, integers, bytes and lists, not {type(value).__name__}")


def decode(raw: Any) -> Any:
    """The Python value of the protocol's JSON, or ``ValueError`` naming what is wrong."""
    if raw is None or isinstance(raw, (str, bool, int, float)):
        return raw
    if isinstance(raw, list):
        return [decode(item) for item in raw]
    if isinstance(raw, dict) and len(raw) == 1:
        ((tag, body),) = raw.items()
        if tag == "bytes" and isinstance(body, str):
            return bytes.fromhex(body)
        if tag == "int" and isinstance(body, str):
            return int(body)
    raise ValueError(f"{raw!r:.80} is not a protocol value (null, string, integer, list, {{'bytes': hex}}, {{'int': decimal}})")


def _decode_set(raw: Any) -> frozenset:
    if not isinstance(raw, list):
        raise ValueError(f"a set's value is a list of elements, got {raw!r:.80}")
    return frozenset(decode(raw))


def _decode_sequence(raw: Any) -> list:
    if isinstance(raw, str):
        return list(raw)
    if not isinstance(raw, list):
        raise ValueError(f"a sequence's value is a list of one-character strings or a string, got {raw!r:.80}")
    return decode(raw)


#: How ``value()`` replies are read, per machine (others: ``decode``).
VALUE_FORMS: dict[str, Callable[[Any], Any]] = {"orset": _decode_set, "rga": _decode_sequence, "lww": decode}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ----- one child process ----------------------------------------------------------------

#: Every child not yet closed. Strong references: a child whose host was dropped without
#: closing it must still be reaped (a weak set lost it, and its process outlived the session).
_children: set[Child] = set()


class Child:
    """One running child process and the requests it has answered.

    ``request`` sends one request and returns its reply; any way that can fail (the child
    exited, did not answer within the timeout, answered nonsense) kills and reaps the
    child and raises ``ChildFailure``. A failed child stays failed: later requests raise
    the same failure.
    """

    def __init__(self, who: str, command: Sequence[str], cwd: Path | None, env: dict[str, str]) -> None:
        self.who, self.command = who, list(command)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the child; closed in close()
        try:
            self.process = subprocess.Popen(
                self.command, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
            )
        except OSError:
            self._stderr.close()
            raise
        os.set_blocking(self.process.stdin.fileno(), False)
        self._buffer = bytearray()
        self._next_id = 1
        self.failure: ChildFailure | None = None
        self.requests = 0
        self.changes = 0  # requests other than ``value`` sent so far: any of them may change any replica
        _children.add(self)

    @property
    def alive(self) -> bool:
        return self.failure is None and self.process.poll() is None

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - STDERR_TAIL_BYTES))
            return self._stderr.read().decode("utf-8", "replace").strip()
        return ""

    def exit_status(self) -> str:
        code = self.process.returncode
        if code is None:
            return "is still running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by signal {signal.Signals(-code).name}"
            return f"was killed by signal {-code}"
        return f"exited with status {code}"

    def fail(self, what: str) -> ChildFailure:
        """Kill and reap the child; the failure, naming everything a reader needs."""
        if self.failure is not None:
            return self.failure
        self.kill()
        tail = self.stderr_tail()
        self.failure = ChildFailure(
            f"{self.who}: the child process `{shlex.join(self.command)}` (pid {self.process.pid}) {what}; "
            f"it {self.exit_status()}. "
            + (f"The end of its standard error:\n{tail}" if tail else "Its standard error is empty.")
        )
        return self.failure

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self.process.wait()
        self._close_pipes()

    def close(self) -> None:
        """End the child: close its input (it exits), wait a little, then kill; always reaped."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            try:
                self.process.wait(EXIT_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_pipes()
        with contextlib.suppress(OSError):
            self._stderr.close()
        _children.discard(self)

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()

    def request(self, message: dict, timeout: float) -> dict:
        """Send ``message`` (an ``id`` is added) and return the child's reply to it."""
        if self.failure is not None:
            raise ChildFailure(f"this replica's child process failed before: {self.failure}")
        ident = self._next_id
        self._next_id += 1
        self.requests += 1
        what = message.get("cmd", "?") + (f" {message['op']}" if "op" in message else "")
        line = json.dumps({"id": ident, **message}, separators=(",", ":")).encode() + b"\n"
        deadline = time.monotonic() + timeout  # the harness bounding a child: no model, machine or core reads it
        self._send(line, deadline, what, timeout)
        raw = self._receive(deadline, what, timeout)
        try:
            reply = json.loads(raw)
        except ValueError:
            raise self.fail(f"answered {what!r} with a line that is not JSON: {raw[:200]!r}") from None
        if not isinstance(reply, dict) or reply.get("id") != ident:
            raise self.fail(f"answered {what!r} (request id {ident}) with {raw[:200]!r}: not a reply to it")
        kinds = [key for key in ("ok", "refused", "decode_error", "error") if key in reply]
        if len(kinds) != 1:
            raise self.fail(f"answered {what!r} with {raw[:200]!r}: a reply has exactly one of ok, refused, decode_error, error")
        return reply

    def _send(self, line: bytes, deadline: float, what: str, timeout: float) -> None:
        fd = self.process.stdin.fileno()
        view = memoryview(line)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.fail(f"did not read the request {what!r} within {timeout:g} s (killed by the harness)")
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                continue
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                self.process.wait()
                raise self.fail(f"closed its input before the request {what!r}") from None
            view = view[written:]

    def _receive(self, deadline: float, what: str, timeout: float) -> bytes:
        fd = self.process.stdout.fileno()
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                raw = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return raw
            if len(self._buffer) > MAX_PROCESS_REPLY_BYTES:
                raise self.fail(f"answered {what!r} with more than {MAX_PROCESS_REPLY_BYTES} bytes and no end of line")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.fail(f"did not answer {what!r} within {timeout:g} s (killed by the harness)")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(EXIT_GRACE)
                raise self.fail(f"exited while answering {what!r}")
            self._buffer += chunk


@atexit.register
def reap_every_child() -> None:
    """Stop and reap every adapter child still running (a reused one outlives its machine
    runs). Called at exit, and by the pytest session before it checks nothing is left behind;
    a host that is used again afterwards starts a new child."""
    for child in list(_children):
        child.close()


# ----- the replicas of one implementation, in a child -----------------------------------


class ProcessHost:
    """The child process that holds one implementation's replicas, started when needed.

    ``make`` returns a replica in the current child, starting one if there is none or the
    last one failed. With ``reuse_child`` the child outlives a machine run (whose replicas
    are dropped at teardown); without, it ends when its last replica is dropped.
    """

    def __init__(self, who: str, machine: str, command: Sequence[str], cwd: Path | None, env: dict[str, str] | None,
                 timeout: float, reuse_child: bool) -> None:
        self.who, self.machine, self.command, self.cwd = who, machine, list(command), cwd
        self.env = {**os.environ, **(env or {})}
        self.timeout, self.reuse_child = timeout, reuse_child
        self.child: Child | None = None
        self.handles = 0
        self.live = 0
        self.started = 0  # how many children this host has started (for tests and reports)

    def _current(self) -> Child:
        if self.child is not None and self.child.alive:
            return self.child
        if self.child is not None:
            self.child.close()
        try:
            child = Child(self.who, self.command, self.cwd, self.env)
        except OSError as error:
            raise ChildFailure(f"{self.who}: cannot start `{shlex.join(self.command)}`: {error}") from None
        self.child, self.live = child, 0
        self.started += 1
        reply = child.request({"cmd": "hello", "protocol": PROTOCOL}, START_TIMEOUT)
        answer = reply.get("ok")
        if not isinstance(answer, dict) or answer.get("protocol") != PROTOCOL:
            raise child.fail(f"answered hello with {reply!r:.200}, expected {{'ok': {{'protocol': {PROTOCOL}}}}}")
        return child

    def make(self, replica_id: int, clock: Clock) -> ProcessReplica:
        child = self._current()
        self.handles += 1
        handle = self.handles
        replica = replica_class(self.machine)(self, child, handle, clock)
        replica._call("make", replica_id=replica_id)
        self.live += 1
        return replica

    def dropped(self, child: Child) -> None:
        if child is self.child:
            self.live -= 1
            if self.live <= 0 and not self.reuse_child:
                self.close()

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None


class ProcessReplica:
    """One replica held by a child process: every method is one request, but ``value``.

    ``value`` asks the child again only when its answer could differ: the child has been
    sent some other request since (to this replica or another: a child whose replicas share
    state is a bug to see), or the clock reads another time. A machine reads every replica's
    value after each step and again when it draws the next step's index; for the JavaScript
    implementations that was 69% of their requests (19,223 of 27,861 in the RGA machine's run
    of ``automerge-list``).
    """

    def __init__(self, host: ProcessHost, child: Child, handle: int, clock: Clock) -> None:
        self._host, self._child, self._handle, self._clock = host, child, handle, clock
        self._closed = False
        self._value: tuple[int, int, Any] | None = None  # (child's changes, now, raw answer) of the last value read

    def _call(self, cmd: str, **fields: Any) -> Any:
        if cmd != "value":
            self._child.changes += 1
        reply = self._child.request({"cmd": cmd, "replica": self._handle, "now": self._clock.now(), **fields},
                                    self._host.timeout)
        if "ok" in reply:
            return reply["ok"]
        what = f"{self._host.who}: {cmd}" + (f" {fields['op']}" if "op" in fields else "")
        if "refused" in reply:
            refusal = reply["refused"]
            if not isinstance(refusal, dict) or not isinstance(refusal.get("kind"), str):
                raise self._child.fail(f"answered {cmd!r} with a refusal that has no kind: {refusal!r:.200}")
            raise Refused(refusal["kind"], str(refusal.get("detail", "")))
        if "decode_error" in reply:
            raise DecodeError(f"{what}: {reply['decode_error']}")
        raise ImplementationError(f"{what} failed in the child: {reply['error']}")

    def _read(self, cmd: str, raw: Any, form: Callable[[Any], Any]) -> Any:
        try:
            return form(raw)
        except (ValueError, TypeError) as error:
            raise self._child.fail(f"answered {cmd!r} with {raw!r:.200}: {error}") from None

    def _bytes_of(self, cmd: str, data: Any) -> str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"{self._host.who}: {cmd}: expected bytes, got {type(data).__name__}")
        return _b64(bytes(data))

    # ----- replication, for every type ---------------------------------------------------

    def state(self) -> bytes:
        return self._read("state", self._call("state"), lambda raw: base64.b64decode(raw, validate=True))

    def merge(self, state: bytes) -> None:
        self._call("merge", data=self._bytes_of("merge", state))

    def take_deltas(self) -> list[bytes]:
        def deltas(raw: Any) -> list[bytes]:
            if not isinstance(raw, list):
                raise ValueError("take_deltas answers a list of base64 strings")
            return [base64.b64decode(d, validate=True) for d in raw]

        return self._read("take_deltas", self._call("take_deltas"), deltas)

    def apply_delta(self, delta: bytes) -> None:
        self._call("apply_delta", data=self._bytes_of("apply_delta", delta))

    def value(self) -> Any:
        now = self._clock.now()
        if self._value is None or self._value[:2] != (self._child.changes, now) or self._child.failure is not None:
            self._value = (self._child.changes, now, self._call("value"))
        return self._read("value", self._value[2], VALUE_FORMS.get(self._host.machine, decode))

    def close(self) -> None:
        """The machine is done with this replica: the child forgets it."""
        if self._closed:
            return
        self._closed = True
        if self._child.alive:
            with contextlib.suppress(ChildFailure):
                self._call("drop")
        self._host.dropped(self._child)

    def __repr__(self) -> str:
        return f"ProcessReplica({self._host.who}, handle {self._handle})"


def _operation(name: str) -> Callable[..., Any]:
    def call(self: ProcessReplica, *args: Any) -> Any:
        result = self._call("op", op=name, args=[encode(arg) for arg in args])
        return self._read(f"op {name}", result, decode)

    call.__name__ = name
    call.__doc__ = f"``{name}`` of the contract, carried out by the child (request ``op``)."
    return call


_replica_classes: dict[str, type[ProcessReplica]] = {}


def replica_class(machine: str) -> type[ProcessReplica]:
    """The replica class for ``machine``: one method per operation of its contract."""
    if machine not in _replica_classes:
        if machine not in CONTRACTS:
            raise ValueError(f"the process adapter drives machines with a contract in machines/contracts.py "
                             f"({sorted(CONTRACTS)}), not {machine!r}")
        from harness.contract import protocol_methods

        protocol = CONTRACTS[machine][0]
        operations = [m for m in protocol_methods(protocol) if m not in REPLICATION and m != "value"]
        _replica_classes[machine] = type(
            f"Process{protocol.__name__}", (ProcessReplica,), {name: _operation(name) for name in operations}
        )
    return _replica_classes[machine]


def _why_unavailable(command: Sequence[str], cwd: Path | None, requires: Sequence[Path], setup: str) -> str:
    program = command[0]
    if os.sep in program:
        path = Path(program) if cwd is None else Path(cwd, program)
        if not path.exists():
            return f"{program} does not exist"
    elif shutil.which(program) is None:
        return f"{program!r} is not installed (not on PATH)"
    missing = [str(path) for path in requires if not Path(path).exists()]
    if missing:
        return f"{', '.join(missing)} missing" + (f": {setup}" if setup else "")
    return ""


def process_implementation(
    machine: str,
    name: str,
    command: Sequence[str],
    *,
    level: str = "exact",
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    description: str = "",
    operations: frozenset[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    requires: Sequence[str | Path] = (),
    setup: str = "",
    reuse_child: bool = True,
    max_examples: int | None = None,
) -> Implementation:
    """An implementation whose replicas live in a child process running ``command``.

    ``cwd`` is where the child runs (relative paths in ``command`` are resolved there).
    ``requires`` are files that must exist (e.g. ``node_modules/yjs``) and ``setup`` how to
    get them: if the program or one of them is missing, the implementation is *unavailable*
    and every test of it is skipped with that reason. ``timeout`` bounds each request.
    ``operations``, ``level`` and ``max_examples`` are as for ``Implementation``.
    """
    cwd_path = Path(cwd) if cwd is not None else None
    who = f"implementation {name!r} of {machine}"
    why = _why_unavailable(command, cwd_path, [Path(p) for p in requires], setup)
    host = ProcessHost(who, machine, command, cwd_path, env, timeout, reuse_child)
    replica_class(machine)  # refuse a machine without a contract now, not at the first replica

    def make_replica(replica_id: int, clock: Clock) -> ProcessReplica:
        if why:
            raise Unavailable(f"{who} is unavailable: {why}")
        return host.make(replica_id, clock)

    make_replica.host = host  # type: ignore[attr-defined]  # for tests: the child behind the replicas
    return Implementation(
        machine=machine,
        name=name,
        make_replica=make_replica,
        level=level,
        description=description or f"child process: {shlex.join(command)}",
        operations=operations,
        unavailable=why,
        max_examples=max_examples,
    )


# ----- isolation for in-process libraries ------------------------------------------------


def _import_path(factory: Callable) -> tuple[str, str]:
    """``module:qualname`` of ``factory``, and the directory its module was imported from."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    file = getattr(sys.modules.get(module or ""), "__file__", None)
    if not module or not file or "<" in qualname or module == "__main__":
        raise ValueError(f"isolated() needs a make_replica importable by name (a module-level function or class), "
                         f"not {factory!r}")
    return f"{module}:{qualname}", str(Path(file).resolve().parents[module.count(".")])


def isolated(implementation: Implementation, *, name: str | None = None, timeout: float = DEFAULT_TIMEOUT,
             reuse_child: bool = True) -> Implementation:
    """``implementation`` with its replicas in a child Python process (same protocol).

    For a native library that may abort the process (a Rust panic with ``panic=abort``, a
    segmentation fault) on bad bytes: the child dies, the run reports it as a failure of
    that implementation with the trace so far, and the tests go on.
    """
    factory, imported_from = _import_path(implementation.make_replica)
    command = [sys.executable, "-m", "harness.process", "serve", implementation.machine, factory]
    path = [str(PROJECT_ROOT), imported_from, os.environ.get("PYTHONPATH", "")]
    env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(filter(None, path)))}
    return process_implementation(
        implementation.machine,
        name or f"{implementation.name}-isolated",
        command,
        level=implementation.level,
        cwd=PROJECT_ROOT,
        env=env,
        description=f"{implementation.description or implementation.name}, in a child process",
        operations=implementation.operations,
        timeout=timeout,
        reuse_child=reuse_child,
        max_examples=implementation.max_examples,
    )


class _RequestClock:
    """The clock of a served replica: the ``now`` of the request being answered."""

    def __init__(self) -> None:
        self.current = 0

    def now(self) -> int:
        return self.current


def serve(machine: str, make_replica: Callable[[int, Any], Any], lines=None, out=None) -> None:
    """Answer the protocol for replicas made by ``make_replica``, until input ends.

    The Python side of the protocol, used by ``isolated``; also a reference for writing a
    child in another language.
    """
    lines = sys.stdin if lines is None else lines
    out = sys.stdout if out is None else out
    clock = _RequestClock()
    replicas: dict[int, Any] = {}
    value_form = {"orset": lambda v: [encode(e) for e in v], "rga": lambda v: list(v)}.get(machine, encode)

    def answer(request: dict) -> Any:
        cmd = request.get("cmd")
        if cmd == "hello":
            return {"protocol": PROTOCOL}
        clock.current = int(request.get("now", 0))
        handle = request.get("replica")
        if cmd == "make":
            replicas[handle] = make_replica(int(request["replica_id"]), clock)
            return None
        replica = replicas[handle]
        if cmd == "op":
            return encode(getattr(replica, request["op"])(*(decode(a) for a in request.get("args", []))))
        if cmd == "value":
            return value_form(replica.value())
        if cmd == "state":
            return _b64(replica.state())
        if cmd == "take_deltas":
            return [_b64(d) for d in replica.take_deltas()]
        if cmd in ("merge", "apply_delta"):
            getattr(replica, cmd)(base64.b64decode(request["data"], validate=True))
            return None
        if cmd == "drop":
            replicas.pop(handle, None)
            return None
        raise ValueError(f"unknown request {cmd!r}")

    for line in lines:
        request = json.loads(line)
        reply: dict[str, Any] = {"id": request.get("id")}
        try:
            reply["ok"] = answer(request)
        except DecodeError as error:
            reply["decode_error"] = str(error)
        except Refused as error:
            reply["refused"] = {"kind": error.kind, "detail": error.detail}
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # a panic or a bare BaseException is the implementation's failure
            reply["error"] = f"{type(error).__name__}: {error}"
        out.write(json.dumps(reply, separators=(",", ":")) + "\n")
        out.flush()


def _serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.process", description="serve the process adapter protocol")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve replicas of a Python make_replica over stdin/stdout")
    p.add_argument("machine")
    p.add_argument("factory", help="module:qualified.name of make_replica(replica_id, clock)")
    args = parser.parse_args(argv)
    module, _, qualname = args.factory.partition(":")
    factory: Any = importlib.import_module(module)
    for part in qualname.split("."):
        factory = getattr(factory, part)
    serve(args.machine, factory)
    return 0


# ----- BaseException from an in-process adapter -------------------------------------------


def _contained_call(method: Callable[..., Any], who: str, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (Exception, KeyboardInterrupt, pytest.skip.Exception):
            raise
        except BaseException as error:
            raise AdapterError(
                f"{who}: {name}() raised {type(error).__module__}.{type(error).__qualname__}, a BaseException that is not "
                f"an Exception: {error!s:.300}. An adapter must turn its library's errors into exceptions "
                "(bad bytes: implementations.wire.DecodeError)."
            ) from error

    return call


class Contained:
    """A replica whose methods never let a non-``Exception`` ``BaseException`` escape.

    pyo3 raises a Rust panic as ``PanicException`` (a ``BaseException``), Loro raises a bare
    ``BaseException`` on bad bytes, a library may call ``sys.exit``: any of these, raised by
    an adapter's method, would end the whole test run or slip past ``except Exception``.
    Here it becomes an ``AdapterError``: a failure of that implementation, with its trace.
    """

    def __init__(self, replica: Any, who: str) -> None:
        self._replica, self._who = replica, who

    @staticmethod
    def make(make_replica: Callable[..., Any], who: str, *args: Any) -> Contained:
        return Contained(_contained_call(make_replica, who, "make_replica")(*args), who)

    @property
    def unwrapped(self) -> Any:
        return self._replica

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._replica, name)
        if not callable(attribute):
            return attribute
        contained = _contained_call(attribute, self._who, name)
        self.__dict__[name] = contained  # wrapped once: a machine calls the same few methods every step
        return contained

    def __repr__(self) -> str:
        return f"Contained({self._replica!r})"


if __name__ == "__main__":
    sys.exit(_serve_main(sys.argv[1:]))
