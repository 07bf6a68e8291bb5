"""A process that imports the node modules once and forks every node process from itself.

A node process spends most of its start importing (trio, aioquic, cryptography, the project):
0.29 of its 0.36 CPU s, measured with compiled bytecode cached. A realnet example starts about
five (three nodes, the proxy, restarts), so a ``ProcessGroup`` made with ``preload`` starts
this process once and asks it for each child instead: the fork has those modules already, and
each child costs only what it does. What a child is does not change: its own process, its own
pid, killed by SIGKILL for a crash, standard error appended to its log, its ready line on a
pipe, its working directory and environment the ones asked for, its module run as
``__main__`` exactly as ``python -m`` runs it (``runpy``), ``random`` and trio's scheduler
reseeded. What it shares with its siblings is what a fork shares: the hash seed (``str`` hashes,
so set orders, are alike across one group's children) and what the preloaded modules computed
at import.

``python -m implementations.transport.zygote FD MODULE...``: FD is one end of a Unix
``SOCK_SEQPACKET`` socket pair inherited from the parent. Each message the parent sends is a
fork request, ``{"module", "args", "cwd", "env"}`` as JSON, with two file descriptors (the
child's standard output and standard error); this process answers ``{"pid": PID}`` (or
``{"error": WHY}``). When a child exits it sends ``{"exit": PID, "code": CODE}``, the code
as ``subprocess`` gives it (``-9`` for SIGKILL). The parent's ``Zygote`` (``process.py``) reads
those.

It stops by itself: when the parent closes its end of the socket, or when the parent is gone
(its parent pid changes), it SIGKILLs every child still running, reaps them and exits. Every
wait is bounded by ``process.PARENT_POLL_SECONDS``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import traceback

from implementations.transport.process import PARENT_POLL_SECONDS

#: The largest fork request (its environment included) this process reads.
MAX_REQUEST_BYTES = 1 << 20
#: How long a message to the parent may wait for room in the socket.
SEND_TIMEOUT_SECONDS = 10.0


def _run_child(request: dict, stdout: int, stderr: int) -> int:
    """In the forked child: become the program asked for and run it; its exit status."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    for fd in {devnull, stdout, stderr} - {0, 1, 2}:
        os.close(fd)
    # What a new interpreter would draw afresh: CPython reseeds ``random`` at a fork; trio's scheduler
    # shuffles with a ``random.Random`` of its own, made at import, so every fork would share its draws.
    scheduler = sys.modules.get("trio._core._run")
    if scheduler is not None:
        scheduler._r.seed()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["module"], *request["args"]]
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as leaving:
        code = leaving.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException:  # as ``python -m`` does: the traceback to standard error, status 1
        traceback.print_exc()
        return 1
    return 0


def _fork(request: dict, fds: list[int], others: list[int]) -> int:
    """Fork a child for ``request``; in the child, never return."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in others:
            os.close(fd)
        code = _run_child(request, *fds)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _tell_exit(channel: socket.socket, pid: int, status: int) -> None:
    """Tell the parent that child ``pid`` exited, its code as ``subprocess`` gives it."""
    channel.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def serve(channel: socket.socket, parent: int) -> None:
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD writes to the wake-up pipe
    children: set[int] = set()
    try:
        while os.getppid() == parent:
            readable, _, _ = select.select([channel, wake_read], [], [], PARENT_POLL_SECONDS)
            if wake_read in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
            while children:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if not pid:
                    break
                children.discard(pid)
                _tell_exit(channel, pid, status)
            if channel not in readable:
                continue
            message, fds, _, _ = socket.recv_fds(channel, MAX_REQUEST_BYTES, 2)
            if not message:
                return  # the parent closed its end: the group is done
            try:
                if len(fds) != 2:
                    raise ValueError(f"a fork request carries 2 file descriptors, not {len(fds)}")
                pid = _fork(json.loads(message), fds, [channel.fileno(), wake_read, wake_write])
            except (ValueError, OSError) as error:
                channel.send(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
            else:
                children.add(pid)
                channel.send(json.dumps({"pid": pid}).encode())
            finally:
                for fd in fds:
                    os.close(fd)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):
                    _tell_exit(channel, pid, status)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    channel = socket.socket(fileno=int(argv[0]))
    channel.settimeout(SEND_TIMEOUT_SECONDS)  # a parent that stops reading ends this process, not hangs it
    parent = os.getppid()
    for module in argv[1:]:
        importlib.import_module(module)
    serve(channel, parent)
    return 0


if __name__ == "__main__":
    # Run by ``python -m`` (or a zygote's ``runpy``), this file is ``__main__``: the module imported by
    # its name does the work, so the process runs the functions the project imports (a mutation
    # run's mutants of them too: mutmut activates a mutant only in the module of its name).
    from implementations.transport import zygote as named

    sys.exit(named.main())
