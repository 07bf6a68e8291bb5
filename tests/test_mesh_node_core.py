"""``MeshNodeCore`` without processes or sockets: what races of a real network reach, made to happen in order."""

from __future__ import annotations

from implementations.ledger_file import SharedLedger
from implementations.transport.cluster import SIGNING_DEFAULTS
from implementations.transport.mesh_node import MeshNodeCore, NodeIdentity

NOW = 1_700_000_000 * 1_000_000_000


class Counted:
    """A ``MetricsSink`` that counts what a core reports."""

    def __init__(self) -> None:
        self.partial_signatures = 0
        self.sessions: list[str] = []

    def session_finished(self, outcome: str, duration_seconds: float) -> None:
        self.sessions.append(outcome)

    def partial_signature(self) -> None:
        self.partial_signatures += 1

    def gossip(self, kind: str) -> None:
        pass

    def replay_refused(self) -> None:
        pass

    def message_refused(self) -> None:
        pass


def test_a_restarted_coordinator_counts_only_the_signatures_a_late_answer_adds(tmp_path):
    """Node 0 (a 2-of-3 group) proposes; its own signer signs at once, counted by its first process. The
    first process dies before node 1's answer comes; the answer reaches its restarted process (on a real
    network: node 1 answered late over the connection the new process had opened). The file then holds
    two signatures, and the new process counts one: the one the answer added. Before be62b8a it
    counted both (found by a replay of ``realnet-restart-recounts-signatures`` under load, not here)."""
    dirs = [tmp_path / f"n{i}" for i in range(3)]
    for d in dirs:
        d.mkdir()
    identities = [NodeIdentity.load_or_create(d) for d in dirs]
    keys = [identity.public_key for identity in identities]
    ledger = SharedLedger.create(tmp_path / "ledger.db", 2, keys, [400, 250, 600])
    ledger.close()
    settings = {"members": [key.hex() for key in keys], "directory": {}, "list_id": "11" * 32, "anti_entropy_ms": 500,
                "group": {**SIGNING_DEFAULTS, "m": 2, "ledger": str(tmp_path / "ledger.db"), "group_id": "22" * 32}}
    cores = [MeshNodeCore(identity, d) for identity, d in zip(identities, dirs, strict=True)]
    first = Counted()
    cores[0].attach_metrics(first)
    for core in cores:
        core.join(NOW, settings)
    answer, proposals = cores[0].submit_event(NOW, "ext-0", "kaspatest:dest0", 100, "bridge", NOW)
    assert "request_id" in answer, answer
    assert first.partial_signatures == 1  # its own signer's, taken in the same call
    to_node_1 = [data for peer, data in proposals if peer == identities[1].peer_id]
    assert to_node_1, f"node 0 proposed to no one but {[peer.hex()[:8] for peer, _ in proposals]}"
    late = [data for proposal in to_node_1 for peer, data in cores[1].handle(proposal, NOW + 1)
            if peer == identities[0].peer_id]
    assert late, "node 1 did not answer node 0's proposal"

    restarted, counted = MeshNodeCore(identities[0], dirs[0]), Counted()  # (the first process is gone: SIGKILL)
    restarted.attach_metrics(counted)
    for data in late:
        restarted.handle(data, NOW + 2)
    state = {r["request_id"]: r["state"] for r in restarted.signing(NOW + 2)["requests"]}[answer["request_id"]]
    assert state == "Finalized", f"2 of 3 signatures held, and the request is {state}"
    assert counted.partial_signatures == 1, (
        f"the restarted coordinator counted {counted.partial_signatures} signatures for one late answer: the one its "
        f"killed process counted, counted again")
