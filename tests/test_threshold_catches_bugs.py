"""The threshold machine catches realistic bugs of a signing group, with short traces.

Each test patches one bug into the sans-I/O cores (a subclass), registers it as a separate
implementation built here (not in ``machines/adapters``), runs ``ThresholdMachine`` under
the ``ci`` profile and expects the run to fail, with a short trace written to ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from blake3 import blake3
from hypothesis import settings
from hypothesis.internal.conjecture import engine

from harness import Implementation, expect_caught, load_trace, replay
from implementations import threshold
from implementations.limits import U64_MAX
from implementations.pskt import event_hash, verify_signature
from implementations.threshold import SKEW_NS, Coordinator, EventRefused, Signer, decode_proposal
from implementations.threshold_envelope import EnvelopeRejected, ReplayCache, decode_envelope
from implementations.wire import DecodeError
from machines.adapters.threshold_sansio import SansIoBackend
from machines.threshold import ThresholdMachine

REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


class CountsDuplicateKeys(Coordinator):
    """Keeps every valid member signature it receives and counts signatures, not distinct keys."""

    def _fresh_signatures(self, request_id, answer, hashes):
        return [(i, k, s) for i, k, s in answer.signatures
                if i < len(hashes) and self._counts(k) and verify_signature(k, s, hashes[i])]

    def _store_signature(self, request_id, index, key, signature):
        self.store.execute("INSERT INTO partial_signatures VALUES (?, ?, ?, ?)", (request_id, index, key, signature))

    def counting_keys(self, request_id, input_index):
        rows = self.store.execute(
            "SELECT public_key FROM partial_signatures WHERE request_id = ? AND input_index = ?", (request_id, input_index)
        ).fetchall()
        order = {k: i for i, k in enumerate(self.group.members)}
        return sorted((r[0] for r in rows if r[0] in order), key=order.__getitem__)


class CountsNonMembers(Coordinator):
    """Counts every distinct key with a valid signature, member of the group or not."""

    def _counts(self, key):
        return True

    def counting_keys(self, request_id, input_index):
        rows = self.store.execute(
            "SELECT DISTINCT public_key FROM partial_signatures WHERE request_id = ? AND input_index = ?",
            (request_id, input_index),
        ).fetchall()
        order = {k: i for i, k in enumerate(self.group.members)}
        return sorted((r[0] for r in rows), key=lambda k: order.get(k, len(order)))


class VolumeAtFinalization(Signer):
    """Counts the volume only once a transaction is paid (upstream): the approval checks
    the policy but reserves nothing, so two concurrent sessions both pass."""

    def _approve(self, p):
        approved, message = super()._approve(p)
        if approved:
            self.policy.release(p.request_id, "rejected")  # checked, not reserved
            self.unpaid = {**getattr(self, "unpaid", {}), p.request_id: (p.event.destination, p.event.amount)}
        return approved, message

    def tick(self, now):
        self._time.value = now
        with self.store.transaction():
            due = self.store.execute(
                "SELECT request_id, template FROM answers WHERE approved = 1 AND settled = 0 AND expires_at <= ?",
                (now - SKEW_NS,),
            ).fetchall()
            for request_id, template in due:
                destination, amount = getattr(self, "unpaid", {}).get(request_id, ("", 0))
                if template is not None and self.node.has_transaction(blake3(template).digest()):
                    self.policy.submit(request_id + "/paid", destination, amount)  # counted now, at finalization
                self.store.execute("UPDATE answers SET settled = 1 WHERE request_id = ?", (request_id,))
        return []


class SignsTwice(Signer):
    """Forgets the replay rule: signs an event again in another request."""

    def _already_processed(self, p):
        return False

    def _record_signed(self, p):
        self.store.execute("INSERT OR IGNORE INTO signed_events VALUES (?, ?, ?)", (p.event_hash, p.template_hash, p.request_id))


# ----- issue 7: crashes inside an operation and two processes on one file -----------------


class ChecksEventBeforeLocking(Signer):
    """Issue 7, defect 1: "event already processed" is read before the transaction that
    records the signature, and the record is INSERT OR IGNORE: two processes on one signer
    file both sign one event."""

    def handle(self, data, now):
        try:
            self._stale = super()._already_processed(decode_proposal(decode_envelope(data).payload))
        except DecodeError:
            self._stale = None
        try:
            return super().handle(data, now)
        finally:
            self._stale = None

    def _already_processed(self, p):
        return self._stale if getattr(self, "_stale", None) is not None else super()._already_processed(p)

    def _record_signed(self, p):
        self.store.execute("INSERT OR IGNORE INTO signed_events VALUES (?, ?, ?)", (p.event_hash, p.template_hash, p.request_id))


class ReservesBeforeAnswering(Signer):
    """Issue 7, defect 4: the policy's reservation commits in its own transaction before
    the answer's: a crash between the two leaves volume reserved that no answer names, so
    no tick ever settles it."""

    def handle(self, data, now):
        self._early = None
        try:
            proposal = decode_proposal(decode_envelope(data).payload)
            fresh = self._refusal(proposal, now)[0] is None and self.policy.state_of(proposal.request_id) is None
        except DecodeError:
            fresh = False
        if fresh:
            self._time.value = now
            with self.store.transaction():
                self._early = super()._approve(proposal)
        try:
            return super().handle(data, now)
        finally:
            self._early = None

    def _approve(self, p):
        return self._early or super()._approve(p)


class ChecksReplayBeforeLocking(Signer):
    """The replay check is made before the transaction that remembers the envelope: two
    processes on one signer file both accept one envelope."""

    def __init__(self, *args):
        super().__init__(*args)
        self.replay = RemembersOnly(self.store)

    def handle(self, data, now):
        try:
            key = decode_envelope(data).replay_key
        except DecodeError:
            key = None
        if key is not None and self.replay.seen(key, now):
            raise EnvelopeRejected("replayed envelope")
        return super().handle(data, now)


class RemembersOnly(ReplayCache):
    def admit(self, key, now):
        self.store.execute("INSERT OR REPLACE INTO seen_envelopes VALUES (?, ?, ?, ?)", (key[0], key[1], str(key[2]), now))


class StoresOutsidersSignatures(Coordinator):
    """Issue 7, defect 9: checks and stores every valid signature, a non-member's too (they
    still never count): an outsider fills the coordinator's file."""

    def _counts(self, key):
        return True


class ForgetsDecidedSubmissions(Coordinator):
    """Issue 7, defect 5: a restarted coordinator does not look at the node for the
    submissions it had decided: a crash between the submission and its record leaves the
    transaction on the ledger, its volume never counted, and the request expires."""

    def _recover(self, request_id, proposal, expires_at, decided_at, submission, now):
        if now >= expires_at:
            self.store.execute("UPDATE requests SET decided_at = NULL WHERE request_id = ?", (request_id,))


class OpensEventsOutsideTheLock(Coordinator):
    """The old ``submit_event``: "already processing this event" and the next sequence
    number are read before the transaction: two coordinator processes on one file open two
    requests for one event (or one request id twice)."""

    def submit_event(self, event, now):
        the_hash = event_hash(event)
        busy = self.store.execute("SELECT request_id, state FROM requests WHERE event_hash = ? AND state IN "
                                  "('Pending', 'Approved', 'Finalized')", (the_hash,)).fetchone()
        if busy:
            raise EventRefused(f"event already processed: request {busy[0]} is {busy[1]}")
        seq = self.store.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM requests").fetchone()[0]
        self.store.execute = _with_seq(self.store.execute, seq)
        try:
            return super().submit_event(event, now)
        finally:
            del self.store.execute


def _with_seq(execute, seq):
    """``execute`` answering the two checks with what was read before the lock."""

    class Row:
        def __init__(self, row):
            self.row = row

        def fetchone(self):
            return self.row

    def stale(sql, params=()):
        if "MAX(seq)" in sql:
            return Row((seq,))
        if "WHERE event_hash = ? AND state IN" in sql:
            return Row(None)  # it was not busy when we looked
        return execute(sql, params)

    return stale


class BugHunt(ThresholdMachine):
    """The threshold machine without the rules that only add noise to the first four bugs
    (funding, restarts, tampering, re-delivery, duplication, drops, time, crashes, a second
    process): a smaller search space, so the ``ci`` profile finds and shrinks each bug in
    seconds. Every invariant is the same."""

    def fund(self):  # not a rule here
        pass

    def restart(self):
        pass

    def tamper(self):
        pass

    def redeliver(self):
        pass

    def duplicate(self):
        pass

    def drop(self):
        pass

    def advance_clock(self):
        pass

    def crash(self):
        pass

    def interleave(self):
        pass


class FaultHunt(ThresholdMachine):
    """The threshold machine for the storage-seam bugs: crashes, a second process and time,
    without the adversary's rules (they cannot help here)."""

    def fund(self):
        pass

    def restart(self):
        pass

    def tamper(self):
        pass

    def forge(self):
        pass

    def redeliver(self):
        pass

    def drop(self):
        pass


class ConcurrentSessionsOnly(BugHunt):
    """The machine without its per-step comparison of each signer's reserved volume, so the
    volume bug must be caught where it does harm: a second concurrent session passes the
    policy (the model's verdict is "daily volume exceeded") and the day's paid volume
    exceeds the limit."""

    def observe(self):
        return [o for o in super().observe() if "volume" not in o.label and "reservations" not in o.label]


def _impl(name, **classes):
    backend = SansIoBackend(**classes)
    return Implementation(machine="threshold", name=name, make_replica=lambda i, clock: backend)


#: Each run is at most 19 rule steps after ``start``, and Hypothesis may spend at most this
#: long shrinking it (its own limit is 300 s; a threshold example costs milliseconds of
#: SQLite and Ed25519, so unbounded shrinking would dominate the suite's time).
SHRINK_SECONDS = 15


def _run_and_expect_failure(impl, tmp_path, monkeypatch, max_steps=20, machine=None):
    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", SHRINK_SECONDS, raising=False)
    bounded = settings(settings.get_profile("ci"), max_examples=300, stateful_step_count=max_steps - 1,
                       report_multiple_bugs=False)
    caught = expect_caught(machine or BugHunt, impl, hypothesis_settings=bounded, trace_dir=tmp_path)
    steps = [{"rule": step.rule, "args": step.args} for step in caught.trace.steps]
    assert len(steps) <= max_steps, f"trace of {len(steps)} steps: {steps}"
    return caught.error, steps


def test_counting_duplicate_keys_is_caught(tmp_path, monkeypatch):
    _, steps = _run_and_expect_failure(_impl("counts-duplicate-keys", coordinator_class=CountsDuplicateKeys), tmp_path,
                                           monkeypatch)
    assert any(s["rule"] == "forge" and s["args"]["kind"] == "copy" for s in steps), steps


def test_counting_non_member_keys_is_caught(tmp_path, monkeypatch):
    _, steps = _run_and_expect_failure(_impl("counts-non-members", coordinator_class=CountsNonMembers), tmp_path,
                                           monkeypatch)
    assert any((s["rule"] == "forge" and s["args"]["kind"] == "non_member")
               or (s["rule"] == "lie" and s["args"]["lie"] == "outsider_answer") for s in steps), steps


def test_volume_counted_only_at_finalization_is_caught(tmp_path, monkeypatch):
    impl = _impl("volume-at-finalization", signer_class=VolumeAtFinalization)
    error, _ = _run_and_expect_failure(impl, tmp_path / "any", monkeypatch)
    # and where it does harm, with the per-step volume comparison switched off:
    error, steps = _run_and_expect_failure(impl, tmp_path / "concurrent", monkeypatch, machine=ConcurrentSessionsOnly)
    assert sum(s["rule"] in ("new_event", "resubmit") for s in steps) >= 2, steps
    assert "daily volume exceeded" in str(error) or "above the limit" in str(error), error


def test_signing_a_second_template_for_an_event_is_caught(tmp_path, monkeypatch):
    _, steps = _run_and_expect_failure(_impl("signs-twice", signer_class=SignsTwice), tmp_path, monkeypatch)
    assert any(s["rule"] == "resubmit" for s in steps), steps


# ----- issue 7 -------------------------------------------------------------------------

#: Each committed regression trace with the implementation variant that reverts its fix.
REVERTED_FIXES = [
    ("threshold-two-signer-processes-one-event", {"signer_class": ChecksEventBeforeLocking}),
    ("threshold-one-envelope-two-signer-processes", {"signer_class": ChecksReplayBeforeLocking}),
    ("threshold-crash-between-reservation-and-answer", {"signer_class": ReservesBeforeAnswering}),
    ("threshold-crash-between-submission-and-its-record", {"coordinator_class": ForgetsDecidedSubmissions}),
    ("threshold-two-coordinator-processes-one-event", {"coordinator_class": OpensEventsOutsideTheLock}),
    ("threshold-outsider-answers-leave-no-trace", {"coordinator_class": StoresOutsidersSignatures}),
]


@pytest.mark.parametrize(("trace", "variant"), REVERTED_FIXES, ids=[t for t, _ in REVERTED_FIXES])
def test_the_committed_trace_fails_with_its_fix_reverted(trace, variant):
    """``pytest regressions/`` shows each trace passes; here each fails without its fix."""
    loaded = load_trace(REGRESSIONS / f"{trace}.json")
    outcome = replay(loaded, ThresholdMachine, _impl(f"reverted-{trace}", **variant))
    assert outcome.status == "failed", outcome
    first_fault = min(i for i, step in enumerate(loaded.steps) if step.rule in ("crash", "interleave", "lie"))
    assert outcome.step >= first_fault, outcome


def test_an_expiry_beyond_sqlite_integers_fails_without_the_decode_bound(monkeypatch):
    """Defect 10 with its fix reverted (``expires_at`` decoded as any u64): the signer
    raises OverflowError halfway through its transaction instead of refusing the bytes."""
    monkeypatch.setattr(threshold, "I64_MAX", U64_MAX)
    loaded = load_trace(REGRESSIONS / "threshold-proposal-expiring-beyond-sqlite-integers.json")
    outcome = replay(loaded, ThresholdMachine, _impl("u64-expiry"))
    assert outcome.status == "failed" and "OverflowError" in outcome.message, outcome


def test_the_machine_finds_a_reservation_committed_before_its_answer(tmp_path, monkeypatch):
    """Defect 4 found by the search itself (``crash``), not only by its committed trace."""
    _, steps = _run_and_expect_failure(_impl("reserves-before-answering", signer_class=ReservesBeforeAnswering),
                                       tmp_path, monkeypatch, machine=FaultHunt)
    assert any(s["rule"] == "crash" and s["args"]["role"] == "signer" for s in steps), steps
