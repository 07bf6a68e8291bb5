"""The session-wide leftover check (``conftest.py``): a session whose tests leave a bound port or a child behind fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LEAKY = '''
import socket, subprocess, sys

LEAKED = []

def test_leaves_a_bound_port_behind():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    LEAKED.append(sock)

def test_leaves_an_unreaped_child_behind():
    LEAKED.append(subprocess.Popen([sys.executable, "-c", "pass"]))  # exits at once, never waited for: a zombie
'''

TIDY = '''
import socket

def test_closes_what_it_opens():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
'''


def run_session(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_session.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path),
         str(tmp_path / "test_session.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_a_session_that_leaves_a_port_or_a_child_behind_fails(tmp_path):
    result = run_session(tmp_path, LEAKY)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed" in result.stdout and "LEFT BEHIND by this session" in result.stdout
    assert "bound udp port" in result.stdout and "child process" in result.stdout


def test_a_tidy_session_passes(tmp_path):
    result = run_session(tmp_path, TIDY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LEFT BEHIND" not in result.stdout
