"""Child processes that a test, a benchmark or a machine runs for real, always reaped.

``ProcessHost`` starts Python modules of this project as OS processes (each in its own
process group, with ``PYTHONPATH`` set to the project root so a fresh clone works), kills
them with SIGKILL -- a real crash -- and starts them again with the same arguments -- a
restart. Every wait is bounded, and leaving the ``with`` block (or ``close()``) kills and
reaps every child it started, whatever happened::

    with ProcessHost(log_directory) as host:
        host.start("signer-0", "benchmarks.crash_signers", "worker", "--role", "signer", ...)
        host.kill("signer-0")      # SIGKILL, then reaped
        host.restart("signer-0")   # the same command again

A child should also stop by itself: the convention here is a ``--parent PID`` argument
(``os.getpid()`` of the host) that the child watches (``parent_alive``), so nothing
outlives a host that was itself killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

#: The project root: what a child's ``PYTHONPATH`` names.
ROOT = Path(__file__).resolve().parent.parent
#: How long ``stop`` waits for a child to exit after SIGTERM before it sends SIGKILL.
TERM_GRACE_SECONDS = 2.0
#: How long a wait for a killed child may take at most (the kernel reaps at once).
KILL_WAIT_SECONDS = 10.0


class ProcessHost:
    """Starts, kills, restarts and always reaps named child processes (see the module)."""

    def __init__(self, log_directory: str | Path) -> None:
        self.log_directory = Path(log_directory)
        self.log_directory.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, list[str]] = {}
        self.starts: dict[str, int] = {}

    def __enter__(self) -> ProcessHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, name: str, module: str, *args: str) -> subprocess.Popen:
        """Start ``python -m module args...`` as ``name``; its stderr goes to ``<name>.log``."""
        if name in self.children and self.children[name].poll() is None:
            raise RuntimeError(f"process {name!r} is already running (pid {self.children[name].pid})")
        command = [sys.executable, "-m", module, *args]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = open(self.log_directory / f"{name}.log", "ab")  # noqa: SIM115 (closed once the child is reaped)
        try:
            child = subprocess.Popen(command, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=log, start_new_session=True)
        finally:
            log.close()  # the child holds its own descriptor
        self.children[name], self.commands[name] = child, command
        self.starts[name] = self.starts.get(name, 0) + 1
        return child

    def alive(self, name: str) -> bool:
        return name in self.children and self.children[name].poll() is None

    def kill(self, name: str) -> int:
        """SIGKILL ``name`` (its whole process group) and reap it; returns its exit status."""
        child = self.children[name]
        if child.poll() is None:
            _signal_group(child, signal.SIGKILL)
        return child.wait(timeout=KILL_WAIT_SECONDS)

    def restart(self, name: str) -> subprocess.Popen:
        """Start ``name`` again with the command it was started with (after a kill)."""
        if self.alive(name):
            self.kill(name)
        command = self.commands[name]
        return self.start(name, command[2], *command[3:])

    def stop(self, name: str) -> int:
        """Ask ``name`` to stop (SIGTERM), then kill it if it has not within the grace period."""
        child = self.children[name]
        if child.poll() is None:
            _signal_group(child, signal.SIGTERM)
            try:
                return child.wait(timeout=TERM_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        return self.kill(name)

    def wait(self, name: str, timeout: float) -> int:
        """Wait at most ``timeout`` seconds for ``name`` to exit by itself; kill it if it does not."""
        try:
            return self.children[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(name)
            raise

    def close(self) -> None:
        """Stop and reap every child (the host's last act, also on errors)."""
        for name in list(self.children):
            self.stop(name)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)  # start_new_session: the group is the child's own


def parent_alive(parent_pid: int) -> bool:
    """For a child: whether the host that started it still runs (else it should exit)."""
    return os.getppid() == parent_pid


def deadline_after(seconds: float) -> float:
    """A monotonic deadline for a child's own loop (every loop here is bounded)."""
    return time.monotonic() + seconds
