"""Mesh node processes (``mbt node``), their metrics scraped over HTTP, a cluster command, the shared ledger file."""

from __future__ import annotations

import re
import socket

import pytest

from implementations.ledger import LedgerError
from implementations.ledger_file import SharedLedger
from implementations.transport import cluster as cluster_command
from implementations.transport.cluster import NODE_MODULE as NODE
from implementations.transport.cluster import Cluster
from implementations.transport.control import ControlError
from implementations.transport.process import ChildProcess
from machines.adapters.mesh_in_process import LoopCluster
from tests.test_transport_process import eventually, scrape
from tests.transport_kit import nothing_left_behind


def held(node_answer: dict) -> int:
    return sum(hi - lo + 1 for spans in node_answer["holds"].values() for lo, hi in spans)


def sample(page: str, name: str) -> float:
    """The value of one sample line of a Prometheus text page (0 if absent)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", page, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_node_alone_waits_for_join_and_refuses_what_does_not_fit(tmp_path):
    with nothing_left_behind():
        node = ChildProcess("n", NODE, ["--data", str(tmp_path / "n")], tmp_path / "n.log", tmp_path)
        node.start()
        try:
            with pytest.raises(ControlError, match="has not joined a mesh yet"):
                node.call("op", name="snapshot")
            key = node.ready["address"]["public_key"]
            with pytest.raises(ControlError, match="this node's key is not among the members"):
                node.call("op", name="join", args={"members": ["00" * 32], "directory": {}, "list_id": "11" * 32,
                                                   "anti_entropy_ms": 500})
            for bad, named in [({"list_id": "11"}, "list_id is 32 bytes"), ({"anti_entropy_ms": 0}, "anti_entropy_ms"),
                               ({"group": {"m": 2}}, "group.m is 1 to 1"), ({"nope": 1}, "unknown settings"),
                               ({"directory": {key: {"host": "10.0.0.1", "port": 1, "certificate": ""}}}, "loopback")]:
                settings = {"members": [key], "directory": {}, "list_id": "11" * 32, "anti_entropy_ms": 500, **bad}
                with pytest.raises(ControlError, match=named):
                    node.call("op", name="join", args=settings)
            assert not (tmp_path / "n" / "mesh.json").exists()  # a refused join wrote nothing
            node.call("op", name="join", args={"members": [key], "directory": {}, "list_id": "11" * 32, "anti_entropy_ms": 500})
            assert node.call("op", name="add_task", args={"title": "alone", "description": ""})["outcome"] == "ok"
            with pytest.raises(ControlError, match="task must be a task id in hex"):
                node.call("op", name="claim", args={"task": "not hex"})
            with pytest.raises(ControlError, match="joined another mesh"):
                node.call("op", name="join", args={"members": [key], "directory": {}, "list_id": "22" * 32,
                                                   "anti_entropy_ms": 500})
            assert len(node.call("op", name="snapshot")["tasks"]) == 1
        finally:
            node.stop()


def test_a_cluster_gossips_signs_serves_metrics_and_a_killed_node_catches_up_from_its_file(tmp_path):
    with nothing_left_behind(), Cluster(tmp_path, 3, proxy_seed=3) as cluster:
        added = cluster.op(0, "add_task", title="write spec", description="")
        assert added["outcome"] == "ok" and added["holds"] == {}
        cluster.wait_until(lambda: all(held(cluster.op(i, "snapshot")) == 1 for i in range(3)), 20, "gossip")
        assert cluster.op(1, "claim", task=added["task"])["outcome"] == "ok"
        session = cluster.op(0, "submit_event", external_id="e-1", destination="kaspatest:d", amount=100, reason="bridge")
        cluster.wait_until(lambda: cluster.op(0, "info")["live_sessions"] == 0, 20, "the session ending")
        (request,) = cluster.op(0, "signing")["requests"]
        assert request["request_id"] == session["request_id"] and request["state"] == "Finalized"
        assert [txid.hex() for txid in cluster.ledger.accepted] == [request["template"]]

        # every metric the issue names, with real values, scraped over loopback HTTP
        page = scrape(cluster.nodes[0].ready["metrics"])
        assert sample(page, 'mbt_sessions_total{outcome="finalized"}') == 1
        assert sample(page, "mbt_partial_signatures_total") >= 2  # m = 2 member signatures accepted
        assert sample(page, "mbt_session_duration_seconds_count") == 1
        assert sample(page, 'mbt_gossip_messages_total{kind="igra"}') >= 2
        assert sample(page, 'mbt_gossip_messages_total{kind="op"}') >= 1  # the claim, gossiped from node 1
        assert sample(page, "mbt_resident_memory_bytes") > 10 * 2**20
        assert "mbt_replays_refused_total" in page
        eventually(lambda: sample(scrape(cluster.nodes[0].ready["metrics"]), "mbt_peers_online") == 2)

        # SIGKILL node 2; the others go on; node 2 restarts from its file and catches up from its peers
        own = cluster.op(2, "add_task", title="ship it", description="soon")
        cluster.kill(2)
        cluster.op(0, "add_task", title="while 2 is down", description="")
        cluster.restart(2)
        snap = cluster.op(2, "snapshot")
        assert own["seq"] in {seq for lo, hi in snap["holds"][cluster.op(2, "info")["peer_id"]] for seq in range(lo, hi + 1)}
        # node 2 learns what it missed; what it published just before the kill reaches the others by anti-entropy
        cluster.wait_until(lambda: all(held(cluster.op(i, "snapshot")) == 4 for i in range(3)), 30, "node 2 catching up")
        assert cluster.op(2, "snapshot")["tasks"] == cluster.op(0, "snapshot")["tasks"]


def test_a_node_that_is_down_keeps_its_port_until_it_restarts(tmp_path):
    """A node comes back on its QUIC port (the peers' directories and the proxy's links name it), so while it is
    down no other socket may take that port. Found by the realnet machine's nightly run in process beside two
    mutation runs whose nodes bound ephemeral ports: a node stopped and restarted seven steps later ended with
    'Address already in use'. (The cluster in process: the same Cluster, its nodes tasks of one loop.)"""
    with nothing_left_behind(), LoopCluster(tmp_path, 3, proxy_seed=1) as cluster:
        port = cluster.nodes[1].ready["quic"]
        for take_down in (cluster.kill, cluster.stop):
            take_down(1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other, pytest.raises(OSError, match="in use"):
                other.bind(("127.0.0.1", port))
            cluster.restart(1)
            assert cluster.nodes[1].ready["quic"] == port
            assert cluster.op(1, "info")["peer_id"]


def test_a_cluster_closed_with_a_node_down_gives_its_port_back(tmp_path):
    """The port held for a node that is down is let go when the cluster closes (the in-process cluster's close
    is the one a realnet run ends with, often with a node down)."""
    with nothing_left_behind(), LoopCluster(tmp_path, 3, proxy_seed=1) as cluster:
        cluster.kill(1)
        assert cluster.held


def test_the_shared_ledger_serializes_two_processes_spending_one_coin(tmp_path):
    """Two views of one file stand for two processes: the second spend of a coin is a double spend."""
    import nacl.signing

    from implementations import pskt

    keys = [nacl.signing.SigningKey(bytes([i]) * 32) for i in range(3)]
    first = SharedLedger.create(tmp_path / "ledger.db", 2, [bytes(k.verify_key) for k in keys], [500])
    second = SharedLedger(tmp_path / "ledger.db")
    try:
        event = pskt.Event("hyperlane", "e", "kaspatest:d", 100, (), 0)
        template = pskt.build_template(event, first.view().utxos(), fee=10, fee_mode=pskt.SignersPay(),
                                       change_address=first.address)
        signatures = tuple(tuple((bytes(k.verify_key), k.sign(h).signature) for k in keys[:2]) for h in pskt.sighashes(template))
        tx = pskt.SignedTransaction(template, signatures)
        txid = first.submit(tx)
        assert second.view().has_transaction(txid) and second.balance() == 500 - 100 - 10  # the change, seen by the other
        with pytest.raises(LedgerError, match="double_spend"):
            second.submit(tx)
        assert first.accepted == second.accepted == [txid]
    finally:
        first.close()
        second.close()


def test_the_cluster_command_runs_a_workload_prints_a_table_and_leaves_nothing_behind(tmp_path, capsys):
    with nothing_left_behind():
        code = cluster_command.main(["--nodes", "3", "--duration", "2", "--rate", "15", "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sessions finalized" in out and "convergence seconds" in out and "no process or bound port left behind" in out
    rows = [line.split() for line in out.splitlines() if re.match(r"n\d ", line)]
    assert len(rows) == 3 and len({row[1] for row in rows}) == 1, f"every node holds the same operations:\n{out}"
