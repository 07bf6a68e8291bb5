"""The endpoint machine (machines/endpoint.py) catches the catalogue's QUIC endpoint bugs
(``tests/bugs/endpoint.py``): a frame length read one byte short, a client that does not check its
pin, a close that leaves before what was queued, and a queue of messages waiting for a dial that
holds one too many or drops the newest; each searched for with the budget measured for it under
five seeds."""

from __future__ import annotations

import pytest

from tests.bugs.hunt import assert_caught, robust

BUGS = robust("endpoint")


def test_every_endpoint_bug_has_a_budget():
    assert len(BUGS) >= 5, [b.name for b in BUGS]


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_endpoint_machine_catches(bug):
    assert_caught(bug)
