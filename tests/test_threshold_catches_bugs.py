"""The threshold machine catches realistic bugs of a signing group, with short traces.

Each test patches one bug into the sans-I/O cores (a subclass), registers it as a separate
implementation built here (not in ``machines/adapters``), runs ``ThresholdMachine`` under
the ``ci`` profile and expects the run to fail, with a short trace written to ``tmp_path``.
"""

from __future__ import annotations

from blake3 import blake3
from hypothesis import settings

from harness import Implementation, expect_caught
from implementations.threshold import Coordinator, Signer
from machines.adapters.threshold_sansio import SansIoBackend
from machines.threshold import ThresholdMachine


class CountsDuplicateKeys(Coordinator):
    """Counts every valid member signature on an input, not every distinct key."""

    def counting_keys(self, request_id, input_index):
        rows = self.db.execute(
            "SELECT public_key FROM partial_signatures WHERE request_id = ? AND input_index = ? AND valid = 1",
            (request_id, input_index),
        ).fetchall()
        order = {k: i for i, k in enumerate(self.group.members)}
        return sorted((r[0] for r in rows if r[0] in order), key=order.__getitem__)


class CountsNonMembers(Coordinator):
    """Counts every distinct key with a valid signature, member of the group or not."""

    def counting_keys(self, request_id, input_index):
        rows = self.db.execute(
            "SELECT DISTINCT public_key FROM partial_signatures WHERE request_id = ? AND input_index = ? AND valid = 1",
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
        due = self.db.execute(
            "SELECT request_id, template FROM answers WHERE approved = 1 AND settled = 0 AND expires_at <= ?", (now,)
        ).fetchall()
        for request_id, template in due:
            destination, amount = getattr(self, "unpaid", {}).get(request_id, ("", 0))
            if template is not None and self.node.has_transaction(blake3(template).digest()):
                self.policy.submit(request_id + "/paid", destination, amount)  # counted now, at finalization
            self.db.execute("UPDATE answers SET settled = 1 WHERE request_id = ?", (request_id,))
        return []


class SignsTwice(Signer):
    """Forgets the replay rule: signs an event again in another request."""

    def _already_processed(self, p):
        return False


class BugHunt(ThresholdMachine):
    """The threshold machine without the rules that only add noise to these four bugs
    (funding, restarts, tampering, re-delivery, duplication, drops, time): a smaller search space, so the
    ``ci`` profile finds and shrinks each bug in seconds. Every invariant is the same."""

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


class ConcurrentSessionsOnly(BugHunt):
    """The machine without its per-step comparison of each signer's reserved volume, so the
    volume bug must be caught where it does harm: a second concurrent session passes the
    policy (the model's verdict is "daily volume exceeded") and the day's paid volume
    exceeds the limit."""

    def observe(self):
        return [o for o in super().observe() if not o.label.endswith("volume")]


def _impl(name, **classes):
    backend = SansIoBackend(**classes)
    return Implementation(machine="threshold", name=name, make_replica=lambda i, clock: backend)


#: Each run is at most 19 rule steps after ``start``, and may spend at most this many examples
#: after its first failure, shrinking it (a threshold example costs milliseconds of SQLite
#: and Ed25519, so unbounded shrinking would dominate the suite's time; these bugs took 50 to
#: 400); the harness's minimizer then removes what shrinking left.
SHRINK_EXAMPLES = 1_000


def _run_and_expect_failure(impl, tmp_path, monkeypatch, max_steps=20, machine=None, examples=300):
    bounded = settings(settings.get_profile("ci"), max_examples=examples, stateful_step_count=max_steps - 1,
                       report_multiple_bugs=False)
    caught = expect_caught(machine or BugHunt, impl, hypothesis_settings=bounded, trace_dir=tmp_path,
                           shrink_examples=SHRINK_EXAMPLES)
    steps = [{"rule": step.rule, "args": step.args} for step in caught.trace.steps]
    assert len(steps) <= max_steps, f"trace of {len(steps)} steps: {steps}"
    return caught.error, steps


def test_counting_duplicate_keys_is_caught(tmp_path, monkeypatch):
    # 500 examples: with 300, Hypothesis's search no longer reached it once the harness's new
    # modules changed the constants it draws from (with 400 or more it is caught at about 105).
    _, steps = _run_and_expect_failure(_impl("counts-duplicate-keys", coordinator_class=CountsDuplicateKeys), tmp_path,
                                       monkeypatch, examples=500)
    assert any(s["rule"] == "forge" and s["args"]["kind"] == "copy" for s in steps), steps


def test_counting_non_member_keys_is_caught(tmp_path, monkeypatch):
    _, steps = _run_and_expect_failure(_impl("counts-non-members", coordinator_class=CountsNonMembers), tmp_path,
                                           monkeypatch)
    assert any(s["rule"] == "forge" and s["args"]["kind"] == "non_member" for s in steps), steps


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
