"""Threshold-signing bugs: counting signers, the volume a signer reserves, replays, expiry,
and what a crash or a second process on one file exposes."""

from __future__ import annotations

import contextlib
from unittest import mock

from blake3 import blake3

from harness import Implementation
from implementations import threshold_envelope, wire
from implementations.ledger import LedgerError, MultisigGroup
from implementations.ledger_file import SharedLedger, decode_transaction, encode_transaction
from implementations.pskt import event_hash, tx_template_hash, verify_signature
from implementations.threshold import SKEW_NS, Coordinator, EventRefused, Signer, decode_proposal
from implementations.threshold_envelope import EnvelopeRejected, ReplayCache, decode_envelope
from implementations.wire import DecodeError
from machines.adapters.threshold_sansio import SansIoBackend
from machines.adapters.threshold_shared_ledger import SharedLedgerBackend
from tests.bugs.catalogue import Bug


class CountsDuplicateKeys(Coordinator):
    """Keeps every valid member signature it receives and counts signatures, not distinct keys."""

    def _fresh_signatures(self, request_id, answer, hashes):
        fresh = []
        for i, k, s in answer.signatures:
            if i < len(hashes) and self._counts(k):
                self.signatures_checked += 1  # the work it does is counted as the correct coordinator's is
                if verify_signature(k, s, hashes[i]):
                    fresh.append((i, k, s))
        return fresh

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


class RecoversAfterExpiry(Coordinator):
    """A restarted coordinator submits a decided request whatever the clock says: back after
    the request expired, it pays a transaction whose volume the signers have already given
    back (they settle at expiry), so the payment counts against no one's daily limit."""

    def _recover(self, request_id, proposal, expires_at, decided_at, submission, now):
        chosen = super()._recover(request_id, proposal, expires_at, decided_at, submission, min(now, expires_at - 1))
        if chosen is not None:  # handed over at once, before the tick expires what timed out
            self._submit(request_id, proposal, *chosen)


class RecoveryCountsOnItsOwnDay(Coordinator):
    """A restarted coordinator records a recovered payment on the day it came back, not on the
    day it decided: a crash before midnight moves the volume into the next day's window."""

    def _recover(self, request_id, proposal, expires_at, decided_at, submission, now):
        return super()._recover(request_id, proposal, expires_at, now, submission, now)


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


class SignsExpiredProposals(Signer):
    """Check 4 forgotten on the late side: a proposal whose ``expires_at`` is already past
    (beyond the clock skew) is signed."""

    def _refusal(self, p, now):
        refusal, mine = super()._refusal(p, now)
        if refusal == "expires_at outside the accepted window" and p.expires_at < now - SKEW_NS:
            return super()._refusal(p, p.expires_at)  # BUG: judged as if it had arrived in time
        return refusal, mine


class TakesAnswersAtExpiry(Coordinator):
    """The coordinator's expiry check is ``now > expires_at``: an answer that arrives at the very
    instant the request expires still counts (its own tick expires the request at that instant)."""

    def _request(self, request_id):
        row = super()._request(request_id)
        if row is None:
            return row
        proposal, n_inputs, expires_at, *rest = row
        return (proposal, n_inputs, expires_at + 1, *rest)  # BUG: handle's "now >= expires_at" becomes "now > expires_at"


class SettlesWithoutSkew(Signer):
    """A reservation is settled at ``expires_at`` instead of ``expires_at`` plus the clock
    skew: a coordinator whose clock is behind may still pay it after it was given back."""

    def tick(self, now):
        return super().tick(now + SKEW_NS)


def forgetful_admit(self, key, now):
    """The replay cache is asked but never told: every envelope looks new."""
    with self.store.transaction(join=True):
        if self.seen(key, now):
            raise EnvelopeRejected("replayed envelope", "seen")


def stale_submit(self, tx):
    """A process checks a transaction against its own copy of the ledger, as it last read the
    file, and appends it: a coin another process spent since is spent again (the catch-up under
    the write lock is missing)."""
    with self.store.transaction():
        self.ledger.check(tx)
        self.store.execute("INSERT INTO log (kind, body) VALUES ('tx', ?)", (encode_transaction(tx),))
    self.catch_up()
    return tx_template_hash(tx.template)


def unchecked_fund(self, amount):
    """A faucet coin's amount written to the shared file unchecked: an amount no coin holds (a
    caller's mistake) is a row every process then stops at, for good."""
    with self.store.transaction():
        self.catch_up()
        self.store.execute("INSERT INTO log (kind, body) VALUES ('fund', ?)", (wire.encode("ledger.fund", 1, [amount]),))
    self.catch_up()


def loose_catch_up(self):
    """The file's rows replayed trusting their writer: a coin row's items unpacked and its amount
    taken as they are, any kind but two read as a transaction, a refusal naming neither the file
    nor the row."""
    rows = self.store.execute("SELECT seq, kind, body FROM log WHERE seq > ? ORDER BY seq", (self.last_seq,)).fetchall()
    for seq, kind, body in rows:
        if kind == "group":
            m, keys = wire.expect_list(wire.decode(body, "ledger.group", 1), "ledger.group", length=2)
            self.address = self.ledger.add_group(MultisigGroup(m, tuple(keys)))
        elif kind == "fund":
            (amount,) = wire.decode(body, "ledger.fund", 1)
            self.ledger.fund(self.address, amount)
        else:
            self.ledger.submit(decode_transaction(body))
        self.last_seq = seq


def sans_io_with(name, **classes):
    backend = SansIoBackend(**classes)
    return Implementation(machine="threshold", name=f"bug-{name}", make_replica=lambda i, clock: backend)


def _bug(name, description, kind, involves=(), patch=None, **classes):
    @contextlib.contextmanager
    def plant():
        with contextlib.ExitStack() as stack:
            if patch is not None:
                stack.enter_context(mock.patch.object(*patch))
            yield sans_io_with(name, **classes)

    return Bug(f"threshold-{name}", "threshold", description, kind, plant, correct="sans-io", involves=frozenset(involves))


def _shared_ledger_bug(name, description, kind, involves=(), patch=None):
    """A bug of the ledger file the node processes share, under the threshold machine's
    ``shared-ledger`` implementation (the sans-io cores, a handle on the file per member)."""
    @contextlib.contextmanager
    def plant():
        with mock.patch.object(*patch):
            backend = SharedLedgerBackend()
            yield Implementation(machine="threshold", name=f"bug-{name}", make_replica=lambda i, clock: backend)

    return Bug(f"threshold-{name}", "threshold", description, kind, plant, correct="shared-ledger",
               errors=(AssertionError, LedgerError), involves=frozenset(involves))


BUGS = [
    _bug("counts-duplicate-keys", "the coordinator counts signatures, not distinct keys", "threshold-counting",
         coordinator_class=CountsDuplicateKeys),
    _bug("counts-non-members", "the coordinator counts valid signatures by keys outside the group", "threshold-counting",
         coordinator_class=CountsNonMembers),
    _bug("volume-at-finalization", "a signer counts the volume only once a transaction is paid (upstream)",
         "session-race", signer_class=VolumeAtFinalization),
    _bug("signs-twice", "a signer signs an event again in another request", "replay-cache", {"resubmit"},
         signer_class=SignsTwice),
    _bug("checks-event-before-locking", "'event already processed' is read before the transaction that records the "
         "signature: two processes on one file both sign", "session-race", {"interleave"},
         signer_class=ChecksEventBeforeLocking),
    _bug("reserves-before-answering", "the policy's reservation commits before the answer: a crash between leaks it",
         "persistence", {"crash"}, signer_class=ReservesBeforeAnswering),
    _bug("checks-replay-before-locking", "the replay check is made outside the transaction that remembers the envelope",
         "session-race", {"interleave"}, signer_class=ChecksReplayBeforeLocking),
    _bug("stores-outsiders-signatures", "a coordinator stores valid signatures of non-members", "threshold-counting",
         coordinator_class=StoresOutsidersSignatures),
    _bug("forgets-decided-submissions", "a restarted coordinator does not look for submissions it had decided",
         "persistence", {"crash"}, coordinator_class=ForgetsDecidedSubmissions),
    _bug("recovers-after-expiry", "a coordinator back from a crash after its decision submits even once the request "
         "expired", "expiry", {"crash"}, coordinator_class=RecoversAfterExpiry),
    _bug("recovery-counts-on-its-own-day", "a coordinator back from a crash records the payment's volume on the day it "
         "came back, not the day of the decision", "day-window", {"crash"}, coordinator_class=RecoveryCountsOnItsOwnDay),
    _bug("opens-events-outside-the-lock", "'already processing this event' and the next sequence number are read "
         "before the transaction", "session-race", {"interleave"}, coordinator_class=OpensEventsOutsideTheLock),
    _bug("signs-expired-proposals", "a signer signs a proposal whose expires_at is already past", "expiry",
         signer_class=SignsExpiredProposals),
    _bug("takes-answers-at-expiry", "a coordinator counts an answer that arrives at the instant its request expires "
         "(now > expires_at for now >= expires_at)", "off-by-one", {"advance_clock"}, coordinator_class=TakesAnswersAtExpiry),
    _bug("settles-without-skew", "a signer settles a reservation at expires_at, without the clock skew", "expiry",
         {"advance_clock"}, signer_class=SettlesWithoutSkew),
    _bug("replay-cache-forgets", "envelopes are checked against the replay cache but never remembered", "replay-cache",
         patch=(ReplayCache, "admit", forgetful_admit)),
    _bug("replay-window-in-seconds", "the replay window is 86,400 ns (a day in seconds taken as nanoseconds)",
         "replay-cache", patch=(threshold_envelope, "REPLAY_WINDOW_NS", 86_400)),
    _shared_ledger_bug("ledger-file-checks-a-stale-copy", "a process checks a submission against its copy of the shared "
                       "ledger as it last read it, not after catching up under the write lock: a coin another process "
                       "spent is spent again", "session-race", patch=(SharedLedger, "submit", stale_submit)),
    _shared_ledger_bug("ledger-file-writes-any-faucet-amount", "a faucet coin's amount is written to the shared file "
                       "unchecked: a caller's amount no coin holds (-1) is a row every process stops at, for good",
                       "arithmetic", involves=("fund",), patch=(SharedLedger, "fund", unchecked_fund)),
    _shared_ledger_bug("ledger-file-trusts-its-rows", "a process replays the shared file's rows trusting their writer: "
                       "a foreign coin row's items and amount taken unchecked, an unknown kind read as a transaction, "
                       "no refusal naming the file or the row", "believes-a-lie", involves=("fund",),
                       patch=(SharedLedger, "catch_up", loose_catch_up)),
]


