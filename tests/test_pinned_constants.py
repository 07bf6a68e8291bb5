"""Hypothesis draws its literal constants from ``harness/constant_pool.json`` alone
(``harness.constants``): a module loaded later, with literals of its own, changes nothing a
derandomized test draws. Hypothesis's own pool, in the same place, has the new literal: the
check can fail."""

from __future__ import annotations

import json
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import providers

from harness import constants

#: A float no module of the project writes, between the bounds drawn below: Hypothesis's own
#: constants have none there, so once a loaded module writes it, about one draw in seven is it.
LITERAL = 1234567.125
MODULE = f"WRITTEN = {LITERAL!r}\n"


def draws() -> list[float]:
    seen: list[float] = []

    @settings(derandomize=True, database=None, max_examples=200, phases=["generate"])
    @given(st.floats(min_value=1e6, max_value=2e6))
    def record(value):
        seen.append(value)

    record()
    return seen


def with_pool(function) -> None:
    providers._get_local_constants = function
    providers.CONSTANTS_CACHE.cache.clear()


def test_a_module_loaded_later_changes_no_draw(tmp_path, monkeypatch):
    constants.install()
    assert providers._get_local_constants is constants.pinned
    hypothesis_own = constants._hypothesis_own
    before = draws()
    (tmp_path / "mbt_literal_module.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import mbt_literal_module  # noqa: F401  (its literal is what the draws must not see)

        pinned = draws()
        with_pool(hypothesis_own)
        unpinned = draws()
    finally:
        with_pool(constants.pinned)
        sys.modules.pop("mbt_literal_module", None)
    assert pinned == before, "a module loaded between two derandomized runs changed what the second drew"
    assert LITERAL not in pinned
    assert LITERAL in unpinned, "Hypothesis's own pool no longer has a loaded module's literals: is pinning still needed?"


def test_the_pool_is_in_a_fixed_order_and_names_modules_that_exist():
    import importlib.util

    pool = constants.pinned()
    assert list(pool.strings) == sorted(pool.strings)  # a sorted set: no PYTHONHASHSEED in what is picked
    assert pool.integers and pool.floats and pool.bytes
    named = json.loads(constants.POOL.read_text())["modules"]
    gone = [name for name in named if importlib.util.find_spec(name) is None]
    assert not gone, f"the pool names modules that no longer exist: {gone} (python -m harness constants --modules ...)"


def test_writing_the_pool_again_from_its_modules_gives_a_pool_of_the_same_form(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "POOL", tmp_path / "pool.json")
    assert constants.main(["--modules", "implementations.limits"]) == 0
    written = json.loads((tmp_path / "pool.json").read_text())
    assert written["modules"] == ["implementations.limits"]
    assert set(written) == {"modules", "integers", "floats", "bytes", "strings"}


def test_a_module_that_cannot_be_imported_is_named_and_the_pool_is_left_alone(tmp_path, monkeypatch, capsys):
    pool = tmp_path / "pool.json"
    pool.write_text("{}")
    monkeypatch.setattr(constants, "POOL", pool)
    assert constants.main(["--modules", "implementations.limits", "no_such_module_here"]) == 2
    assert "cannot import no_such_module_here" in capsys.readouterr().err
    assert pool.read_text() == "{}"
