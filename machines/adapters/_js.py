"""What the JavaScript adapters share: the Node.js programs in ``js/`` behind the process protocol.

Not an adapter itself (the leading underscore keeps ``load_adapters`` from importing it as one).

``js/package.json`` and its committed ``package-lock.json`` pin the libraries; ``.ci/run`` and
the README's set-up install them with ``npm ci --prefix machines/adapters/js``. Without
Node.js or without those packages the implementations are still registered, as
*unavailable*: every test of them is skipped with the reason and how to install them.

Budget: a request to a child costs about 0.1 ms against about 0.01 ms for an in-process
replica call, and a step makes several (every replica's ``value()`` after each step), so
each JavaScript implementation runs at most ``JS_EXAMPLES`` examples per machine run (``ci``:
60 or 100 instead of 250; ``nightly`` repeats runs until its time budget is spent anyway).
"""

from __future__ import annotations

from pathlib import Path

from harness import register
from harness.process import process_implementation
from harness.registry import Implementation

#: Where the programs, ``package.json`` and ``node_modules`` are.
JS_DIR = Path(__file__).resolve().parent / "js"
SETUP = "install them with `npm ci --prefix machines/adapters/js` (Node.js 18 or newer)"
#: Examples per machine run of each JavaScript implementation (see above), per machine:
#: the orset machine needs 80 before its rarest rules (deliver, drop, redeliver) have all run.
JS_EXAMPLES = {"orset": 100, "lww": 60, "rga": 60}


def register_js(machine: str, name: str, program: str, kind: str, package: str, level: str, description: str) -> Implementation:
    """Register ``node js/<program> <kind>`` as implementation ``name`` of ``machine``."""
    return register(
        process_implementation(
            machine,
            name,
            ["node", program, kind],
            cwd=JS_DIR,
            level=level,
            description=description,
            requires=[JS_DIR / "node_modules" / package / "package.json"],
            setup=SETUP,
            max_examples=JS_EXAMPLES[machine],
        )
    )
