"""The threshold cores at the storage seam, one core at a time: a settlement is one commit and
tick never raises (issue 7, defect 6), and every limit on what a peer may make a core
store is enforced with the documented error and changes nothing (defects 9 and 10)."""

from __future__ import annotations

import nacl.signing
import pytest

from harness import faults
from implementations import limits, pskt, threshold
from implementations.ledger import Ledger, MultisigGroup
from implementations.policy import Policy, PolicyEnforcer
from implementations.threshold import Answer, Coordinator, GroupConfig, LedgerView, Signer, decode_answer, encode_answer
from implementations.threshold_envelope import EnvelopeRejected, decode_envelope, seal
from implementations.wire import DecodeError
from models.clock import ManualClock

NOW = 1_700_000_000 * 10**9
SEED = bytes(range(32))


class SwitchableNode(LedgerView):
    """A node whose answer to ``has_transaction`` the test may force (a payment landing late)."""

    forced: bool | None = None

    def has_transaction(self, txid: bytes) -> bool:
        return super().has_transaction(txid) if self.forced is None else self.forced


@pytest.fixture
def group(tmp_path):
    key = nacl.signing.SigningKey(SEED)
    ledger = Ledger()
    address = ledger.add_group(MultisigGroup(1, (bytes(key.verify_key),)))
    for amount in (400, 600, 800):
        ledger.fund(address, amount)
    config = GroupConfig((bytes(key.verify_key),), 1, address, 10, pskt.RecipientPays(), 60 * 10**9)
    node = SwitchableNode(ledger, address)
    cores = {"signer": Signer(SEED, config, node, str(tmp_path / "s.db"), Policy()),
             "coordinator": Coordinator(SEED, config, node, str(tmp_path / "c.db"))}
    yield cores, node, config, key, tmp_path
    for core in cores.values():
        core.close()


def _event(k: int = 0) -> pskt.Event:
    return pskt.Event("hyperlane", f"ext-{k}", "kaspatest:dest", 100 + k, (("reason", "bridge"),), NOW)


def _proposed_and_answered(cores):
    request_id, out = cores["coordinator"].submit_event(_event(), NOW)
    cores["signer"].handle(out[0][1], NOW)
    return request_id, out[0][1]


def test_a_settlement_is_one_commit_so_a_crash_cannot_wedge_later_ticks(group):
    cores, node, config, _, tmp_path = group
    request_id, _ = _proposed_and_answered(cores)
    due = NOW + config.session_timeout_ns + threshold.SKEW_NS
    node.forced = False  # not paid: the reservation is given back ...
    run = faults.run_operation(cores["signer"].store, lambda: cores["signer"].tick(due), crash=faults.CrashPoint("after", 1))
    assert run.crashed and run.commits == 1
    cores["signer"].close()
    cores["signer"] = Signer(SEED, config, node, str(tmp_path / "s.db"), Policy())
    node.forced = True  # ... and the node's answer changes before the restarted signer ticks
    assert cores["signer"].tick(due + 1) == []
    assert cores["signer"].live_reservations() == []
    assert cores["signer"].policy.state_of(request_id) == "expired"


def test_tick_settles_a_reservation_someone_else_already_settled(group):
    cores, node, config, _, tmp_path = group
    request_id, _ = _proposed_and_answered(cores)
    operator = PolicyEnforcer(Policy(), ManualClock(NOW), str(tmp_path / "s.db"))  # an operator's tool on the file
    operator.release(request_id, "rejected")
    operator.close()
    node.forced = True
    assert cores["signer"].tick(NOW + config.session_timeout_ns + threshold.SKEW_NS) == []
    assert cores["signer"].policy.state_of(request_id) == "rejected"
    assert cores["signer"].store.execute("SELECT settled FROM answers").fetchall() == [(1,)]


def test_a_peer_over_its_envelopes_per_session_is_refused_and_changes_nothing(group):
    cores, _, config, key, _ = group
    request_id, first = _proposed_and_answered(cores)
    payload = decode_envelope(first).payload
    for seq in range(1, limits.MAX_ENVELOPES_PER_PEER_SESSION):  # the first was seq 0
        cores["signer"].handle(seal(key, config.group_id, request_id, seq, NOW, payload), NOW)
    before = cores["signer"].store.digest()
    with pytest.raises(EnvelopeRejected, match="MAX_ENVELOPES_PER_PEER_SESSION") as refused:
        cores["signer"].handle(seal(key, config.group_id, request_id, 10**6, NOW, payload), NOW)
    assert refused.value.reason == "peer over its limit"
    assert cores["signer"].store.digest() == before


def test_a_coordinator_over_its_live_requests_is_refused_and_changes_nothing(group, monkeypatch):
    cores, *_ = group
    monkeypatch.setattr(threshold, "MAX_LIVE_REQUESTS_PER_COORDINATOR", 2)
    for k in range(3):
        _, out = cores["coordinator"].submit_event(_event(k), NOW)
        if k < 2:
            cores["signer"].handle(out[0][1], NOW)
    before = cores["signer"].store.digest()
    with pytest.raises(EnvelopeRejected, match="MAX_LIVE_REQUESTS_PER_COORDINATOR"):
        cores["signer"].handle(out[0][1], NOW)
    assert cores["signer"].store.digest() == before


def test_answers_beyond_the_decode_limits_are_refused_naming_the_limit():
    base = Answer("r-0", bytes(32), bytes(32), False, "", ())
    cases = {
        "MAX_REASON_CHARS": Answer("r-0", bytes(32), bytes(32), False, "x" * (limits.MAX_REASON_CHARS + 1), ()),
        "MAX_SESSION_ID_CHARS": Answer("r" * (limits.MAX_SESSION_ID_CHARS + 1), bytes(32), bytes(32), True, "", ()),
        "MAX_ANSWER_SIGNATURES": Answer("r-0", bytes(32), bytes(32), True, "",
                                        ((0, bytes(32), bytes(64)),) * (limits.MAX_ANSWER_SIGNATURES + 1)),
    }
    assert decode_answer(encode_answer(base)) == base
    for limit, answer in cases.items():
        with pytest.raises(DecodeError, match=limit):
            decode_answer(encode_answer(answer))


def test_an_answer_with_more_signatures_than_its_request_can_use_is_refused(group):
    cores, _, config, key, _ = group
    request_id, proposal_bytes = _proposed_and_answered(cores)
    proposal = threshold.decode_proposal(decode_envelope(proposal_bytes).payload)
    n_inputs = len(proposal.template.inputs)
    sigs = tuple((0, bytes(key.verify_key), bytes(64)) for _ in range(n_inputs + 1))
    answer = Answer(request_id, proposal.event_hash, proposal.template_hash, True, "", sigs)
    before = cores["coordinator"].store.digest()
    with pytest.raises(DecodeError, match="at most"):
        cores["coordinator"].handle(seal(key, config.group_id, request_id, 99, NOW, encode_answer(answer)), NOW)
    assert cores["coordinator"].store.digest() == before and cores["coordinator"].signatures_checked == 0
