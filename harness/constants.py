"""The literal constants Hypothesis mixes into its draws, pinned as data.

Hypothesis (6.131 on) draws, now and then, a literal found in the source of the *local*
modules the process has loaded (any module outside site-packages and the standard library
whose path has no ``test``/``tests`` part; it keeps strings of at most 20 characters, integers
outside -99..99, nonzero floats and bytes, and skips docstrings and f-strings). It finds
boundary values written in the code under test, which is why it exists. But it makes a
derandomized run a function of every such literal of every loaded module. Measured on this
project (3 December): an edit that only added lines to ``harness/`` (``Z = 3.0`` among them)
moved a derandomized 100-example run of the threshold machine from 115 examples drawn (crash
rules 14% of the steps) to 106 (46%); ``pytest machines/`` searched differently from the whole suite, whose tests
import a few more modules at collection; and every commit could move every machine's search,
so a test could pass or fail by an unrelated edit.

So the pool is data: ``constant_pool.json`` beside this module holds the literals of the
modules it names, and every draw of a process that called ``install`` takes its literals from
it alone, whatever the process loaded and whatever those modules say now. It was made from
the modules the whole suite had loaded when its first machine ran (on 3 December, at
9ecdac9's code), so the searches of the suite stayed what they were. ``python -m harness
constants`` writes it again from the modules it names (``--modules`` names others, for instance
only ``models`` and ``implementations``, the code under test): that moves every derandomized
search at once, on purpose, in one commit of its own. (Written again today it would gain three
strings, added since to ``conftest.py`` and ``harness/__main__.py``: unpinned, those edits
alone would have moved every search.)

There is no public setting for this: ``install`` replaces the one function Hypothesis's
provider asks for the pool (``providers._get_local_constants``; the engine builds Hypothesis's
provider class directly in several phases, so registering another backend is not enough).
``install`` refuses a Hypothesis release without that function, and
``tests/test_pinned_constants.py`` fails if one stops calling it.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
from pathlib import Path

from hypothesis.internal.conjecture import providers
from hypothesis.internal.constants_ast import Constants, constants_from_module

POOL = Path(__file__).with_name("constant_pool.json")
#: The function ``install`` replaces (kept: the test of the pinning compares against it).
_hypothesis_own = getattr(providers, "_get_local_constants", None)


def _sorted_pool(integers=(), floats=(), bytes_=(), strings=()) -> Constants:
    """A pool in sorted sets: Hypothesis picks from a pool by index, so a set ordered by hash
    would pick by ``PYTHONHASHSEED``."""
    from hypothesis.internal.floats import float_to_int
    from sortedcontainers import SortedSet

    return Constants(integers=SortedSet(integers), floats=SortedSet(floats, key=float_to_int),
                     bytes=SortedSet(bytes_), strings=SortedSet(strings))


@functools.cache
def pinned() -> Constants:
    """The pool ``constant_pool.json`` holds."""
    data = json.loads(POOL.read_text())
    return _sorted_pool(data["integers"], data["floats"], [bytes.fromhex(b) for b in data["bytes"]], data["strings"])


def pool_of(modules: list[str]) -> dict:
    """The literals Hypothesis takes from ``modules`` (imported), as ``constant_pool.json`` holds them."""
    pool, names = _sorted_pool(), sorted(set(modules))
    for name in names:
        pool |= constants_from_module(importlib.import_module(name))
    return {"modules": names, "integers": list(pool.integers), "floats": list(pool.floats),
            "bytes": [b.hex() for b in pool.bytes], "strings": list(pool.strings)}


def install() -> None:
    """Make ``pinned()`` the pool of every draw of this process (idempotent)."""
    if providers._get_local_constants is pinned:
        return
    if not callable(_hypothesis_own):
        raise RuntimeError(
            "this Hypothesis release has no providers._get_local_constants to pin: its draws of local "
            "constants would depend on the modules loaded (see harness/constants.py)")
    providers._get_local_constants = pinned
    # constants already cached for some strategy's bounds came from the loaded modules: forget them
    providers.CONSTANTS_CACHE.cache.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness constants",
        description="Write harness/constant_pool.json again from the modules it names (or --modules): "
                    "every derandomized search moves.")
    parser.add_argument("--modules", nargs="+", help="the modules to take the literals of (default: those the pool names)")
    args = parser.parse_args(argv)
    from harness import profiles

    profiles.use_cache_directory()  # Hypothesis caches each module's literals: in the cache, not in ./.hypothesis
    modules = args.modules or json.loads(POOL.read_text())["modules"]
    try:
        pool = pool_of(modules)
    except ImportError as missing:
        print(f"python -m harness constants: cannot import {missing.name or missing}: {missing} "
              f"(run it from the project's root; {POOL.name} is unchanged)", file=sys.stderr)
        return 2
    POOL.write_text(json.dumps(pool, indent=0, ensure_ascii=False) + "\n")
    print(f"{POOL}: the literals of {len(modules)} modules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
