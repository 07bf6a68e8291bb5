"""The mesh machines catch realistic node bugs, each with a short trace.

The bugs are the catalogue's (``tests/bugs/mesh.py``: gossip, anti-entropy, the replay
cache, persistence, presence, FOAF, rendezvous, the envelope), each searched for with the
budget measured for it under ten seeds (``python -m tests.bugs.sweep``).
"""

from __future__ import annotations

import pytest

from tests.bugs.hunt import assert_caught, robust

BUGS = robust("mesh_tasklist") + robust("mesh_presence") + robust("mesh_adversary")


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_mesh_machines_catch(bug):
    assert_caught(bug)
