"""The driver machine (machines/driver.py) catches the catalogue's core-driver bugs
(``tests/bugs/driver.py``): an operation that does not wake the tick loop, a past deadline taken
without the floor after the last tick, a refused message that ends its batch, and a dropped one
that ends the core's; each searched for with the budget measured for it under ten seeds."""

from __future__ import annotations

import pytest

from tests.bugs.hunt import assert_caught, robust

BUGS = robust("driver")


def test_every_driver_bug_has_a_budget():
    assert len(BUGS) >= 4, [b.name for b in BUGS]


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_driver_machine_catches(bug):
    assert_caught(bug)
