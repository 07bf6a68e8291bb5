"""The control protocol of node and proxy processes: one JSON object per line over loopback TCP.

A request is ``{"op": NAME, "args": {...}}``; the answer, one line too, is ``{"ok": true,
"value": ...}`` or ``{"ok": false, "error": "what went wrong"}``. Requests on one connection
are answered in order; a client may keep its connection open for many. Every process that
can be controlled offers this operation besides its own:

* ``shutdown``: answers, then the process closes everything and exits 0.

(No ``ping``: a process is ready once it prints its ready line, and alive until it exits.)

Lines are bounded (``MAX_CONTROL_LINE_BYTES``): a longer request is answered with an error
and the connection closed. An unknown operation, arguments that do not fit, or an operation
that refuses (``ValueError``, ``KeyError``, ``TypeError``) are answered with an error naming
it and change nothing; the server goes on.

``ControlClient`` is the blocking client a Hypothesis machine, a test or a CLI uses (every
call bounded by ``CONTROL_TIMEOUT_SECONDS``)::

    python -m implementations.transport.control PORT OP '{"arg": 1}'
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from implementations.limits import CONTROL_TIMEOUT_SECONDS, MAX_CONTROL_LINE_BYTES

Handler = Callable[..., Any | Awaitable[Any]]


class ControlError(RuntimeError):
    """The process answered with an error, or did not answer in time."""


def _line(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


async def serve_control(
    handlers: dict[str, Handler], shutdown: Callable[[], None], *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``handlers`` on 127.0.0.1 (a free port, given to ``task_status``) until cancelled.

    A handler is called with the request's ``args`` as keyword arguments and may be async.
    ``shutdown`` is called after the answer to a ``shutdown`` request is sent.
    """
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def answer(op: Any, args: Any) -> dict:
        if op == "shutdown":
            return {"ok": True, "value": "shutting down"}
        handler = handlers.get(op) if isinstance(op, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown operation {op!r}; known: {sorted([*handlers, 'shutdown'])}"}
        if not isinstance(args, dict):
            return {"ok": False, "error": f"{op}: args must be an object, got {type(args).__name__}"}
        try:
            value = handler(**args)
            if isinstance(value, Awaitable):
                value = await value
        except (ValueError, KeyError, TypeError) as error:
            return {"ok": False, "error": f"{op}: {type(error).__name__}: {error}"}
        return {"ok": True, "value": value}

    async def session(stream: trio.SocketStream) -> None:
        buffer = bytearray()
        async with stream:
            while True:
                newline = buffer.find(b"\n")
                if newline > MAX_CONTROL_LINE_BYTES or (newline < 0 and len(buffer) > MAX_CONTROL_LINE_BYTES):
                    error = f"request exceeds MAX_CONTROL_LINE_BYTES ({MAX_CONTROL_LINE_BYTES})"
                    await stream.send_all(_line({"ok": False, "error": error}))
                    return
                if newline < 0:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buffer += data
                    continue
                raw, buffer = bytes(buffer[:newline]), buffer[newline + 1 :]
                try:
                    request = json.loads(raw)
                    op, args = request["op"], request.get("args", {})
                except (ValueError, KeyError, TypeError, AttributeError) as error:
                    await stream.send_all(_line({"ok": False, "error": f"not a request: {error}"}))
                    continue
                reply = await answer(op, args)
                try:
                    await stream.send_all(_line(reply))
                except TypeError as error:  # a value JSON cannot carry: a bug of the handler, answered anyway
                    await stream.send_all(_line({"ok": False, "error": f"{op}: answer not JSON: {error}"}))
                if op == "shutdown":
                    shutdown()
                    return

    async with trio.open_nursery() as nursery:
        task_status.started(port)
        await trio.serve_listeners(session, listeners, handler_nursery=nursery)


class ControlClient:
    """A blocking client of one control endpoint; every call bounded."""

    def __init__(self, port: int, timeout: float = CONTROL_TIMEOUT_SECONDS) -> None:
        self.port, self.timeout = port, timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()

    def call(self, op: str, **args: Any) -> Any:
        """The value ``op`` answers; ``ControlError`` with the process's reason if it refused."""
        try:
            if self._sock is None:
                self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self._sock.settimeout(self.timeout)
            self._sock.sendall(_line({"op": op, "args": args}))
            while b"\n" not in self._buffer:
                if len(self._buffer) > MAX_CONTROL_LINE_BYTES:
                    raise ControlError(f"{op}: answer exceeds MAX_CONTROL_LINE_BYTES")
                data = self._sock.recv(65536)
                if not data:
                    raise ControlError(f"{op}: the process closed the control connection")
                self._buffer += data
        except OSError as error:  # refused, reset, timed out
            self.close()
            raise ControlError(f"{op}: control endpoint 127.0.0.1:{self.port}: {error}") from None
        newline = self._buffer.index(b"\n")
        reply = json.loads(self._buffer[:newline])
        del self._buffer[: newline + 1]
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "no reason given"))
        return reply.get("value")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer.clear()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


USAGE = "usage: python -m implementations.transport.control PORT OP [JSON-ARGS]"


def main(argv: list[str]) -> int:
    """``PORT OP [JSON-ARGS]``: print the answer as JSON (exit 0), the process's error (exit 1), or the
    usage and what is wrong with the command line (exit 2)."""
    problem = None
    if len(argv) not in (2, 3):
        problem = ""
    elif not (argv[0].isdecimal() and 1 <= int(argv[0]) <= 65535):
        problem = f"PORT is a port number, got {argv[0]!r}"
    else:
        try:
            args = json.loads(argv[2]) if len(argv) == 3 else {}
        except ValueError as error:
            problem = f"JSON-ARGS is not JSON: {error}"
        else:
            if not isinstance(args, dict):
                problem = f"JSON-ARGS is a JSON object, got {type(args).__name__}"
    if problem is not None:
        print(USAGE + (f"\nerror: {problem}" if problem else ""), file=sys.stderr)
        return 2
    with ControlClient(int(argv[0])) as client:
        try:
            value = client.call(argv[1], **args)
        except ControlError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(json.dumps(value, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
