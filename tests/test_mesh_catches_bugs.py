"""The mesh machines catch realistic node bugs, each with a short trace.

Each bug is a subclass of the real ``Node`` (or, for the wire format, a patch of
``implementations.node.message`` for the length of one test), registered inline through
``machines.adapters.node_mesh.backend``, so the normal suite never runs it.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from harness import Implementation, expect_caught
from implementations.node import Node, message
from machines.adapters.node_mesh import backend
from machines.mesh_adversary import MeshAdversaryMachine
from machines.mesh_presence import MeshPresenceMachine
from machines.mesh_tasklist import MeshTaskListMachine

#: The ci profile, one bug reported per run, no "explain" phase; budgets pinned per bug.
CI = settings(
    settings.get_profile("ci"),
    stateful_step_count=30,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
MAX_TRACE_STEPS = 20


class SkipsMissedUpdates(Node):
    """Anti-entropy digests say "everything up to my highest seq" per origin: an operation
    gossip lost below a later one that arrived is never asked for again."""

    def digest_ranges(self, log):
        return [[1, log.max_seq]] if log.max_seq else []


class ReplayKeyedBySenderTime(Node):
    """The replay cache is keyed by what the sender controls (its signer id and timestamp):
    a second, different message the sender signs in the same second is refused as a replay."""

    def replay_key(self, message):
        return message.signer + message.epoch_secs.to_bytes(8, "little")


class AcknowledgesBeforePersisting(Node):
    """A write-behind log: ``publish`` returns (the acknowledgement) before the operation is
    committed; the commit happens at the next tick. A crash in between loses it."""

    def __init__(self, *args, **kwargs):
        self.unwritten = []
        super().__init__(*args, **kwargs)

    def _persist(self, topic, seq, raw):
        self.unwritten.append((topic, seq, raw))

    def tick(self, now):
        for topic, seq, raw in self.unwritten:
            Node._persist(self, topic, seq, raw)
        self.unwritten = []
        return super().tick(now)


class PresenceNeverExpires(Node):
    """Every member a beacon was ever taken of stays online."""

    def online_peers(self, now):
        return frozenset(self.last_beacon)


def signs_only_the_payload_hash(scheme, public_key, signer, topic, epoch_secs, payload_hash):
    """(patched into ``message.signed_part``) The upstream envelope bug: the signature covers
    the payload's hash and nothing of the header, so a captured message can be re-dated."""
    return payload_hash


def any_key_will_do(message):
    """(patched into ``message.bound_to_key``) Nobody checks that the signer is the key's PeerId:
    anyone may sign in a member's name with their own key."""
    return True


PATCHES = {"signature-does-not-cover-the-header": ("signed_part", signs_only_the_payload_hash),
           "peer-id-not-bound-to-the-key": ("bound_to_key", any_key_will_do)}


#: bug -> (machine, node class, ci examples for the search)
BUGS = {
    "anti-entropy-skips-missed-updates": (MeshTaskListMachine, SkipsMissedUpdates, 150),
    "replay-cache-keyed-by-sender-timestamp": (MeshTaskListMachine, ReplayKeyedBySenderTime, 60),
    "acknowledged-before-persisted": (MeshTaskListMachine, AcknowledgesBeforePersisting, 60),
    "presence-never-expires": (MeshPresenceMachine, PresenceNeverExpires, 60),
    "signature-does-not-cover-the-header": (MeshAdversaryMachine, Node, 60),
    "peer-id-not-bound-to-the-key": (MeshAdversaryMachine, Node, 60),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_the_mesh_machines_catch(bug, tmp_path, monkeypatch):
    machine, node_class, examples = BUGS[bug]
    if bug in PATCHES:
        name, patch = PATCHES[bug]
        monkeypatch.setattr(message, name, patch)
    buggy = Implementation(machine.name, f"buggy-{bug}", backend(node_class=node_class), level="exact")
    caught = expect_caught(machine, buggy, hypothesis_settings=settings(CI, max_examples=examples), trace_dir=tmp_path)
    assert len(caught.trace.steps) <= MAX_TRACE_STEPS, [s.describe() for s in caught.trace.steps]
