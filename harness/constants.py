"""The literal constants Hypothesis mixes into its draws, pinned to the code under test.

Hypothesis (6.131 on) draws, now and then, a literal found in the source of the *local*
modules the process has loaded (any module outside site-packages and the standard library
whose path has no ``test``/``tests`` part): an integer, a float, a string or bytes that fits
the strategy's bounds. It finds boundary values written in the code under test, which is why
it exists. But it makes a derandomized run a function of every literal of every loaded
module: the harness's messages, the machines' docstrings, the benchmarks. Measured on this
project (3 December): a change that only added lines to ``harness/`` moved the ``ci`` run of
the threshold machine from 115 examples (crash rules 14% of the steps) to 106 (46%); loading
every benchmark module before the runs made four tests of the whole suite fail (a class
below its floor, three planted bugs found by other rules than their tests expect); and
``pytest machines/`` searched differently from the whole suite, whose tests import a few
more modules. Any commit could move any machine's search, and a test could pass or fail by
the selection of tests it ran with.

So the framework pins the pool to the modules under test (``UNDER_TEST``: the reference
models and the implementations, loaded in sorted order): edits to the harness, the machines
or anything else no longer move a search; an edit to the code under test still may, as it
should. There is no public setting for this: ``install`` replaces the one function
Hypothesis's provider asks for the pool (``providers._get_local_constants``; the engine builds
Hypothesis's provider class directly in several phases, so registering another backend is not
enough). ``install`` refuses a Hypothesis release without that function, and
``tests/test_pinned_constants.py`` fails if one stops calling it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from hypothesis.internal.conjecture import providers
from hypothesis.internal.constants_ast import Constants, constants_from_module

#: The packages whose literals Hypothesis may draw: the code the machines test.
UNDER_TEST = ("models", "implementations")
#: The function ``install`` replaces (kept: the test of the pinning compares against it).
_hypothesis_own = getattr(providers, "_get_local_constants", None)


@functools.cache
def pinned() -> Constants:
    """The literals of every module of ``UNDER_TEST``, in sorted sets (Hypothesis picks from
    them by index: a set ordered by hash would pick by ``PYTHONHASHSEED``)."""
    from hypothesis.internal.floats import float_to_int
    from sortedcontainers import SortedSet

    pool = Constants(integers=SortedSet(), floats=SortedSet(key=float_to_int), bytes=SortedSet(), strings=SortedSet())
    names = []
    for package_name in UNDER_TEST:
        package = importlib.import_module(package_name)
        names += [package_name, *(info.name for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."))]
    for name in sorted(names):
        pool |= constants_from_module(importlib.import_module(name))
    return pool


def install() -> None:
    """Make ``pinned()`` the pool of every draw of this process (idempotent)."""
    if providers._get_local_constants is pinned:
        return
    if not callable(getattr(providers, "_get_local_constants", None)):
        raise RuntimeError(
            "this Hypothesis release has no providers._get_local_constants to pin: its draws of local "
            "constants would depend on the modules loaded (see harness/constants.py)")
    providers._get_local_constants = pinned
    # constants already cached for some strategy's bounds came from the loaded modules: forget them
    providers.CONSTANTS_CACHE.cache.clear()
