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


#: Hypothesis's shrinking is skipped here: an endpoint run's examples open real QUIC connections
#: and a shrink example costs about 0.8 CPU s, while the trace minimizer every failing run ends
#: with (``harness.minimize``) reaches as short a trace alone. Measured 3 December 2026, side by
#: side: the file's hunts 24 CPU s against 58 with the 60 shrink examples of the other bug tests;
#: traces of 2 to 5 steps against 2 to 4 (``close-without-flush``: 7.7 CPU s against 24.6, the
#: same 3 steps).
SHRINK_EXAMPLES = 0


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_endpoint_machine_catches(bug):
    assert_caught(bug, shrink_examples=SHRINK_EXAMPLES)
