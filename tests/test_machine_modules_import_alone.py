"""Every machine module can be the first one a process imports (``pytest machines/X.py``).

A machine module that imports another machine module first (``mesh_adversary`` imports
``mesh_presence``) used to fail at import when it was the only one asked for: the other
module's test loaded the adapters, and the registration check found the adapter of the
first machine before its class existed. Each module is imported alone, in a fresh
interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p.stem for p in (ROOT / "machines").glob("*.py") if not p.name.startswith("_"))
TIMEOUT_S = 120


def test_every_machine_module_imports_first_in_a_fresh_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = {name: subprocess.Popen([sys.executable, "-c", f"import machines.{name}"], cwd=tmp_path, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for name in MODULES}
    failures = {}
    try:
        for name, child in children.items():
            _, err = child.communicate(timeout=TIMEOUT_S)
            if child.returncode != 0:
                failures[name] = err.decode(errors="replace").strip().splitlines()[-1:]
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    assert not failures, failures
