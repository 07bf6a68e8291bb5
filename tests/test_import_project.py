"""``import_project`` loads every module of the repository whose literals Hypothesis mixes into
its draws, so a derandomized machine run searches the same in ``pytest machines/``, in the whole
suite and in a script (see ``harness.runner.import_project``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.runner import NOT_IMPORTED

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRECTORIES = {".venv", "node_modules", "tests", ".git"}


def project_modules() -> set[str]:
    """The dotted names of the repository's Python modules Hypothesis counts as local code: not
    under a ``tests`` directory, not named ``test_*``, not the root ``conftest`` (pytest loads it)."""
    names = set()
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if SKIPPED_DIRECTORIES & set(relative.parts) or path.name.startswith("test_") or relative == Path("conftest.py"):
            continue
        parts = relative.with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_hypothesis_takes_constants_from_is_loaded_first():
    # a fresh interpreter: this process has loaded whatever the tests before it imported
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from harness.runner import import_project; import_project(); "
                               "print('\\n'.join(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout.split()
    missing = project_modules() - set(loaded) - set(NOT_IMPORTED)
    assert not missing, f"import_project leaves out {sorted(missing)}: add their package to PROJECT_PACKAGES"
    assert "benchmarks" in loaded and "harness.__main__" in loaded
