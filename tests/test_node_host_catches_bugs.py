"""The node_host machine (machines/node_host.py) catches the catalogue's node-host bugs
(``tests/bugs/node_host.py``): a node whose identity or certificate is not kept in its data
directory, so that a restart brings another node back; each searched for with the budget measured
for it under ten seeds."""

from __future__ import annotations

import pytest

from tests.bugs.hunt import assert_caught, robust

BUGS = robust("node_host")


def test_every_node_host_bug_has_a_budget():
    assert len(BUGS) >= 2, [b.name for b in BUGS]


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_node_host_machine_catches(bug):
    assert_caught(bug)
