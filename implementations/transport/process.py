"""Node processes from the outside: start, wait until ready, control, crash, restart, reap, and check nothing is left.

``ChildProcess`` runs ``python -m <module> <args>`` with ``PYTHONPATH`` set to the project root
(derived from this file, so a fresh clone works), standard error appended to a log file
and standard output read for exactly one line, the ready line (``node_host``); the wait
for it is bounded (``READY_TIMEOUT_SECONDS``), and a child that exits or stays silent
instead is reaped and reported with the end of its log. Then:

* ``call(op, **args)``: a control request (``control.ControlClient``);
* ``kill()``: SIGKILL, a crash: no handler runs, nothing is flushed; the process is reaped;
* ``start()`` again on the same arguments is a restart on the same files (``restart()`` also
  asks for the same QUIC port, so peers' addresses stay right);
* ``stop()``: a ``shutdown`` request, then SIGKILL if it has not exited in time; reaped.

A child that serves no control endpoint (a worker of ``benchmarks.crash_signers``, say) is
started with ``ready_line=False``: ``spawn()`` is its whole start, ``stop()`` sends SIGTERM
before the SIGKILL, and ``restart()`` spawns it again with the same arguments.

``ProcessGroup`` is a context manager of children that stops and reaps every one on the
way out, whatever happened. Made with ``preload`` (modules), it forks its children from one
``Zygote`` (``zygote.py``) that imported those modules, started with the first child and ended
with the group: a child is then a grandchild of this process, but everything above holds of it
(``Forked`` is the part of ``subprocess.Popen`` a ``ChildProcess`` uses). A child also stops by
itself when its parent is gone (``watch_parent`` inside every node and proxy process;
``parent_alive`` for a plain loop).

``snapshot()`` lists this process's children (zombies too: an unreaped child is a
leftover) and the sockets this process and its children hold, from ``/proc``; compare one
taken before with one after (``leftovers``, which names a new socket by the port it is
bound to) to check that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from implementations.transport.control import ControlClient, ControlError

ROOT = Path(__file__).resolve().parents[2]
#: Bounds of the waits on a child: start-up (a Python interpreter importing aioquic on a
#: loaded 2-core machine), and exit after a shutdown request or a SIGKILL.
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 5.0
PARENT_POLL_SECONDS = 0.2
LOG_TAIL_BYTES = 2000
ZYGOTE_MODULE = "implementations.transport.zygote"
#: The largest message a zygote sends (a pid, an exit status, or why a fork failed).
MAX_ZYGOTE_MESSAGE_BYTES = 4096


class ProcessError(RuntimeError):
    """A child that did not become ready, or did not stop."""


async def watch_parent(scope: trio.CancelScope) -> None:
    """Cancel ``scope`` when the process that started this one is gone (we were re-parented)."""
    parent = os.getppid()
    while os.getppid() == parent:
        await trio.sleep(PARENT_POLL_SECONDS)
    scope.cancel()


def parent_alive(parent_pid: int) -> bool:
    """For a child's own loop: whether the process that started it (``--parent PID``) still runs."""
    return os.getppid() == parent_pid


def child_environment() -> dict[str, str]:
    """This process's environment, with the project root first on ``PYTHONPATH`` (derived from this
    file, so a fresh clone works): what a child runs in."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def log_tail(path: Path) -> str:
    """The end of a child's log, for an error that names it: its last line first (a trace keeps
    only a failure's first line, and a traceback's last line is what was raised), then the whole
    end; "" when there is none."""
    try:
        data = Path(path).read_bytes()[-LOG_TAIL_BYTES:]
    except OSError:
        return ""
    if not data:
        return ""
    text = data.decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return f"; its log ends: {lines[-1].strip() if lines else ''}; end of its log:\n{text}"


class Zygote:
    """The parent's side of ``zygote.py``: one process that has imported ``preload`` and forks
    children on request (``fork``), and tells when each exits (``code``, ``wait``)."""

    def __init__(self, directory: Path, preload: list[str]) -> None:
        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(directory) / "zygote.log"
        with theirs, open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", ZYGOTE_MODULE, str(theirs.fileno()), *preload], pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd=directory, env=child_environment())
        self._exits: dict[int, int] = {}
        self._closing = self._closed = False

    def fork(self, module: str, args: list[str], cwd: Path, env: dict[str, str], stdout: int, stderr: int) -> int:
        """A new child running ``python -m module args`` (its standard output and error on these
        descriptors); its pid."""
        request = json.dumps({"module": module, "args": list(args), "cwd": str(cwd), "env": env}).encode()
        if self._closing:
            raise ProcessError(f"the zygote (pid {self.proc.pid}) has ended: it forks nothing more")
        try:
            socket.send_fds(self._socket, [request], [stdout, stderr])
        except OSError:
            raise self._gone() from None
        reply = self._next(READY_TIMEOUT_SECONDS, lambda message: "exit" not in message)
        if reply is None or "pid" not in reply:
            raise ProcessError(f"the zygote (pid {self.proc.pid}) forked no {module}: {reply}")
        return reply["pid"]

    def code(self, pid: int) -> int | None:
        """The exit status of child ``pid``, or None while it runs."""
        if self._closed:  # its end killed and reaped every child it had; each exit was told on the way out
            return self._exits.get(pid, -signal.SIGKILL)
        self._next(0.0, lambda message: False)
        return self._exits.get(pid)

    def wait(self, pid: int, timeout: float | None) -> int:
        """Wait (at most ``timeout``; None: until it exits, or the zygote does) for ``pid`` to exit."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.code(pid)) is None:
            left = PARENT_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"zygote child {pid}", timeout)
            self._next(left, lambda message: message.get("exit") == pid)
        return code

    def _next(self, timeout: float, wanted) -> dict | None:
        """Read the zygote's messages for at most ``timeout`` s, noting exits, until one is ``wanted``
        (None if none came); the zygote's end of the socket closing ends it too (``_closed``)."""
        deadline = time.monotonic() + timeout
        while not self._closed:
            readable, _, _ = select.select([self._socket], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                return None
            try:
                raw = self._socket.recv(MAX_ZYGOTE_MESSAGE_BYTES)
            except ConnectionError:  # it exited with a request of ours unread
                raw = b""
            if not raw:
                self._closed = True
                break
            message = json.loads(raw)
            if "exit" in message:
                self._exits[message["exit"]] = message["code"]
            if wanted(message):
                return message
        if not self._closing:
            raise self._gone()
        return None

    def _gone(self) -> ProcessError:
        """The zygote ended by itself: what it exited with, and the end of its log (what it raised)."""
        return ProcessError(f"the zygote (pid {self.proc.pid}) exited with {self.proc.wait(STOP_TIMEOUT_SECONDS)}"
                            f"{log_tail(self.log_path)}")

    def close(self) -> None:
        """Tell the zygote to end: it SIGKILLs every child still running, reaps them, tells their exits
        and exits; read what it tells until then (bounded), and reap it. ``ProcessError`` if it did
        not then exit by itself with status 0 (it is reaped either way); one that had ended before
        was named when that was seen (``_gone``)."""
        if self._closing:
            return
        self._closing, ended_before = True, self._closed
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while not self._closed and time.monotonic() < deadline:
            self._next(deadline - time.monotonic(), lambda message: False)
        self._closed = True
        self._socket.close()
        try:
            code = self.proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ProcessError(f"the zygote (pid {self.proc.pid}) did not exit within {STOP_TIMEOUT_SECONDS} s "
                               f"of its close: killed{log_tail(self.log_path)}") from None
        if code != 0 and not ended_before:
            raise ProcessError(f"the zygote (pid {self.proc.pid}) exited with {code} at its close{log_tail(self.log_path)}")


class Forked:
    """A child forked by a ``Zygote``, with what ``ChildProcess`` uses of ``subprocess.Popen``."""

    def __init__(self, zygote: Zygote, pid: int, stdout) -> None:
        self.zygote, self.pid, self.stdout = zygote, pid, stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.zygote.wait(self.pid, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        # A pid the zygote has told us it reaped is never signalled; between its reap and our read of
        # that, another process could take the pid, which Linux's increasing pids make improbable.
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ChildProcess:
    def __init__(self, name: str, module: str, args: list[str], log_path: Path, cwd: Path, ready_line: bool = True,
                 zygote: Zygote | None = None) -> None:
        self.name, self.module, self.args = name, module, list(args)
        #: Whether the child prints a ready line and serves control requests (a node, a proxy).
        self.ready_line = ready_line
        self.log_path, self.cwd = Path(log_path), Path(cwd)
        #: Where the child is forked from (None: ``python -m`` in a new interpreter).
        self.zygote = zygote
        self.proc: subprocess.Popen | Forked | None = None
        self.ready: dict[str, Any] = {}
        self.starts = 0
        self._client: ControlClient | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, extra_args: list[str] = (), timeout: float = READY_TIMEOUT_SECONDS) -> dict:
        """Start the child and wait for its ready line; return it."""
        self.spawn(extra_args)
        return self.wait_ready(timeout)

    def spawn(self, extra_args: list[str] = ()) -> None:
        """Start the child without waiting (``wait_ready`` next): several children start side by side."""
        if self.alive:
            raise ProcessError(f"{self.name}: already running (pid {self.pid})")
        env = child_environment()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)
        if self.zygote is not None:
            self._fork(env, extra_args)
            return
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args, *extra_args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.ready_line else subprocess.DEVNULL,
                stderr=log,
                cwd=self.cwd,
                env=env,
            )
        self.starts += 1

    def _fork(self, env: dict[str, str], extra_args: list[str]) -> None:
        reading, writing = os.pipe() if self.ready_line else (None, os.open(os.devnull, os.O_WRONLY))
        try:
            with open(self.log_path, "ab") as log:
                pid = self.zygote.fork(self.module, [*self.args, *extra_args], self.cwd, env, writing, log.fileno())
        except BaseException:
            if reading is not None:
                os.close(reading)
            raise
        finally:
            os.close(writing)
        # (the ready line's pipe is closed by ``wait_ready``, as a Popen's stdout is)
        self.proc = Forked(self.zygote, pid, None if reading is None else open(reading, "rb", buffering=0))  # noqa: SIM115
        self.starts += 1

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> dict:
        """Wait (at most ``timeout``) for the ready line of the child ``spawn`` started; return it."""
        try:
            self.ready = self._read_ready(timeout)
        finally:
            self.proc.stdout.close()  # the child writes nothing after its ready line
        self._client = ControlClient(self.ready["control"])
        return self.ready

    def _read_ready(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in line:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.kill()
                    raise ProcessError(f"{self.name}: not ready within {timeout} s{log_tail(self.log_path)}")
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self._reap(STOP_TIMEOUT_SECONDS)
                    raise ProcessError(f"{self.name}: exited with {self.proc.returncode} before it was ready"
                                       f"{log_tail(self.log_path)}")
                line += chunk
        try:
            ready = json.loads(line.split(b"\n", 1)[0])
            if ready.get("ready") is not True or not isinstance(ready.get("control"), int):
                raise ValueError(ready)
        except ValueError as error:
            self.kill()
            raise ProcessError(f"{self.name}: not a ready line: {error}") from None
        return ready

    def call(self, op: str, **args: Any) -> Any:
        if self._client is None or not self.alive:
            raise ControlError(f"{self.name}: not running")
        return self._client.call(op, **args)

    def _reap(self, timeout: float) -> int | None:
        if self._client is not None:
            self._client.close()
            self._client = None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int:
        """SIGKILL (a crash) and reap; the exit status (``-9``)."""
        if self.proc is None:
            raise ProcessError(f"{self.name}: never started")
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        code = self._reap(STOP_TIMEOUT_SECONDS)
        if code is None:
            raise ProcessError(f"{self.name}: pid {self.pid} survived SIGKILL for {STOP_TIMEOUT_SECONDS} s")
        return code

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """Ask it to shut down; SIGKILL if it has not exited within ``timeout``; reaped either way."""
        if self.proc is None:
            raise ProcessError(f"{self.name}: never started")
        if self.alive and self._client is not None:
            with contextlib.suppress(ControlError):
                self._client.call("shutdown")
        elif self.alive:  # no control endpoint: ask with SIGTERM
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        code = self._reap(timeout)
        return code if code is not None else self.kill()

    def restart(self, timeout: float = READY_TIMEOUT_SECONDS) -> dict:
        """Start again on the same files (after a kill or stop), on the same QUIC port if it had one."""
        if self.alive:
            raise ProcessError(f"{self.name}: still running; kill or stop it first")
        if not self.ready_line:
            self.spawn()
            return {}
        return self.start(["--port", str(self.ready["quic"])] if "quic" in self.ready else [], timeout)


class ProcessGroup:
    """Children that are all stopped and reaped when the ``with`` block ends."""

    def __init__(self, directory: Path, preload: list[str] | None = None) -> None:
        self.directory = Path(directory)
        self.children: dict[str, ChildProcess] = {}
        #: With ``preload`` (modules), children are forked by one ``Zygote`` that imported them,
        #: started with the first child and ended with the group.
        self.preload = preload
        self.zygote: Zygote | None = None

    def _child(self, name: str, module: str, args: list[str], ready_line: bool = True) -> ChildProcess:
        if self.preload is not None and self.zygote is None:
            self.zygote = Zygote(self.directory, self.preload)
        return ChildProcess(name, module, list(args), self.directory / f"{name}.log", self.directory, ready_line,
                            zygote=self.zygote)

    def start(self, name: str, module: str, args: list[str] = (), timeout: float = READY_TIMEOUT_SECONDS) -> ChildProcess:
        return self.start_many({name: (module, list(args))}, timeout)[name]

    def spawn(self, name: str, module: str, args: list[str] = ()) -> ChildProcess:
        """Start a child that prints no ready line (``ready_line=False``); it is running when this returns."""
        if name in self.children:
            raise ValueError(f"{name}: a child of that name exists")
        child = self._child(name, module, args, ready_line=False)
        self.children[name] = child
        child.spawn()
        return child

    def start_many(
        self, programs: dict[str, tuple[str, list[str]]], timeout: float = READY_TIMEOUT_SECONDS
    ) -> dict[str, ChildProcess]:
        """Start ``{name: (module, args)}`` side by side, then wait for each one's ready line (each wait bounded)."""
        for name in programs:
            if name in self.children:
                raise ValueError(f"{name}: a child of that name exists")
        started = {}
        for name, (module, args) in programs.items():
            child = self._child(name, module, args)
            self.children[name] = started[name] = child
            child.spawn()
        for child in started.values():
            child.wait_ready(timeout)
        return started

    def __getitem__(self, name: str) -> ChildProcess:
        return self.children[name]

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop and reap every child (also the ``with`` block's last act, whatever happened)."""
        errors = []
        for child in self.children.values():
            if child.proc is None:
                continue
            try:
                child.stop()
            except ProcessError as error:
                errors.append(str(error))
        if self.zygote is not None:
            zygote, self.zygote = self.zygote, None
            try:
                zygote.close()
            except ProcessError as error:
                errors.append(str(error))
        if errors:
            raise ProcessError("; ".join(errors))


# --- what is left behind --------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    children: frozenset[int]
    sockets: frozenset[int]  # inodes of the sockets this process and its children hold


#: How many reads of ``/proc/net/*`` a socket's port is looked up in. One read can miss a row:
#: the kernel lists sockets in pieces, and a row moves out of a piece while another process opens
#: and closes sockets (measured: 245 of 2,027 reads missed one of three held ports while a
#: neighbour churned UDP sockets). The open file descriptors in ``/proc/PID/fd`` are exact, so
#: what is new is decided by socket inode, and only the new inodes' ports are looked up.
PORT_READS = 3


def process_table() -> dict[int, tuple[int, int]]:
    """Every process: pid -> (parent pid, CPU clock ticks spent: user + system, its own and that of the children
    it has reaped), one read of ``/proc``. (A node a zygote forked and reaped counts in the zygote's.)"""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked
        table[int(entry)] = (int(fields[1]), sum(int(field) for field in fields[11:15]))
    return table


def child_pids(parent: int | None = None) -> set[int]:
    """Pids whose parent is ``parent`` (this process by default), zombies included."""
    parent = os.getpid() if parent is None else parent
    return {pid for pid, (ppid, _) in process_table().items() if ppid == parent}


def socket_inodes(pids: set[int]) -> set[int]:
    """The inodes of the sockets these processes hold open (``/proc/PID/fd``)."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(int(target[8:-1]))
    return inodes


def bound_ports(inodes: set[int] | frozenset[int]) -> set[tuple[str, int]]:
    """The UDP and TCP ports of the sockets with these inodes (``bound_sockets`` without inode and address)."""
    return {(protocol, port) for _, protocol, _, port in bound_sockets(inodes)}


def bound_sockets(inodes: set[int] | frozenset[int]) -> set[tuple[int, str, str, int]]:
    """``(inode, protocol, address, port)`` of every bound socket with these inodes
    (``/proc/net/{udp,tcp}[6]``, read ``PORT_READS`` times, since one read can miss a row): where each
    listens or sends from. An unbound socket has none."""
    found = set()
    for _ in range(PORT_READS if inodes else 0):
        for table in ("udp", "udp6", "tcp", "tcp6"):
            with contextlib.suppress(OSError), open(f"/proc/net/{table}") as rows:
                next(rows)
                for row in rows:
                    columns = row.split()
                    inode = int(columns[9])
                    if inode in inodes:
                        address, port = columns[1].rsplit(":", 1)
                        if port := int(port, 16):
                            # the kernel prints the address as 32-bit words in host order (little-endian here)
                            raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
                            found.add((inode, table.rstrip("6"), str(ipaddress.ip_address(raw)), port))
    return found


def snapshot() -> Snapshot:
    children = child_pids()
    return Snapshot(frozenset(children), frozenset(socket_inodes({os.getpid(), *children})))


def leftovers(before: Snapshot, attempts: int = 50, pause: float = 0.02) -> list[str]:
    """What exists now that did not in ``before`` (children, bound ports); retried briefly while sockets close."""
    for _ in range(attempts):
        after = snapshot()
        found = [f"child process {pid}" for pid in sorted(after.children - before.children)]
        found += [f"bound {proto} port {port}" for proto, port in sorted(bound_ports(after.sockets - before.sockets))]
        if not found:
            return []
        time.sleep(pause)
    return found
