"""Every machine module can be the first one a process imports (``pytest machines/X.py``).

A machine module that imports another machine module first (``mesh_adversary`` imports
``mesh_presence``) used to fail at import when it was the only one asked for: the other
module's test loaded the adapters, and the registration check found the adapter of the
first machine before its class existed. Each module is imported alone, in a process that has
imported no module of the project: one fresh interpreter imports the third-party libraries
the project uses (about half of a module's import time, the same for every module), checks
that no project module came with them, and forks a child per machine module, which imports
it and exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p.stem for p in (ROOT / "machines").glob("*.py") if not p.name.startswith("_"))
TIMEOUT_S = 300
#: The project's top-level packages: none may be imported before a child imports its module.
PROJECT = ("harness", "machines", "implementations", "models", "tests", "benchmarks", "conftest")
#: Third-party libraries imported once, before the forks (any of them may be absent).
LIBRARIES = ("hypothesis", "hypothesis.stateful", "hypothesis.strategies", "pytest", "trio", "aioquic.quic.connection",
             "aioquic.tls", "z3", "cryptography.x509", "nacl.signing", "blake3", "attrs", "prometheus_client",
             "pycrdt", "loro")

CHILDREN = f"""
import importlib, json, os, sys, traceback
for library in {LIBRARIES!r}:
    try:
        importlib.import_module(library)
    except ImportError:
        pass
project = sorted(m for m in sys.modules if m.split(".")[0] in {PROJECT!r})
if project:
    print(json.dumps({{"*": "imported with the libraries: " + ", ".join(project)}}))
    sys.exit(0)
failures = {{}}
for name in {MODULES!r}:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        status = 0
        try:
            importlib.import_module("machines." + name)
        except BaseException:
            os.write(write, traceback.format_exc().strip().splitlines()[-1].encode())
            status = 1
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failures[name] = said or f"exit status {{status}}"
print(json.dumps(failures))
"""


def test_every_machine_module_imports_first_in_a_process_that_imported_no_project_module(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILDREN], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failures, failures
