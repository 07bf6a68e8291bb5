"""The handshake machine (machines/handshake.py) catches the catalogue's identity-proof bugs
(``tests/bugs/handshake.py``): a client that trusts the fingerprint a listener names (a relay
passes), one that never compares the listener's key with the one it dialed, a side that takes
its own nonce echoed, a side that finishes before the peer's proof verifies, and a transcript
without the signer's role; each searched for with the budget measured for it under ten seeds."""

from __future__ import annotations

import pytest

from tests.bugs.hunt import assert_caught, robust

BUGS = robust("handshake")


def test_every_handshake_bug_has_a_budget():
    assert len(BUGS) >= 5, [b.name for b in BUGS]


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_handshake_machine_catches(bug):
    assert_caught(bug)


def test_the_machine_reaches_every_refusal_and_every_ending():
    """A ``ci`` run of the machine gives each side every refusal the model has for its role, lets
    each role finish with an honest peer and with Mallory, and refuses relayed honest proofs: a
    refusal or an ending the run never reaches is one no bug can be caught through."""
    from collections import Counter

    from harness import run_machine
    from harness.registry import implementation
    from machines.handshake import KEYS, MALLORY, HandshakeMachine
    from models import handshake as model

    seen: Counter = Counter()

    class Counting(HandshakeMachine):
        def take(self, conn, role, wire):
            side, _, refusal = model.receive(conn.ends[role].side, wire.meaning)
            seen[role, refusal or "taken"] += 1
            if side.done and refusal is None:
                seen[role, "finished with " + ("Mallory" if side.peer_key == KEYS[MALLORY] else "a node")] += 1
            if refusal == "bad proof" and getattr(wire.meaning, "signer", None) in KEYS[:MALLORY]:
                seen[role, "an honest proof refused"] += 1
            super().take(conn, role, wire)

    run_machine(Counting, implementation("handshake", "sans-io"))
    never = {model.CLIENT: ("own identity",), model.SERVER: ("not the node dialed", "other certificate")}
    wanted = [(role, outcome) for role in (model.CLIENT, model.SERVER)
              for outcome in (*model.REFUSALS, "finished with Mallory", "finished with a node", "an honest proof refused")
              if outcome not in never[role]]
    assert [w for w in wanted if not seen[w]] == [], dict(seen)
