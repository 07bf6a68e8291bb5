"""The threshold machine catches realistic bugs of a signing group, with short traces.

Each test patches one bug into the sans-I/O cores (a subclass), registers it as a separate
implementation built here (not in ``machines/adapters``), runs ``ThresholdMachine`` under
the ``ci`` profile and expects the run to fail, with a short trace written to ``tmp_path``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import settings

from harness import Implementation, run_machine
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
    """Checks the policy against the volume of finalized requests only (upstream): the
    approval does not reserve, so two concurrent sessions both pass."""

    def _approve(self, p):
        approved, message = super()._approve(p)
        if approved:
            self.policy.release(p.request_id, "rejected")  # nothing stays reserved while the session runs
        return approved, message


class SignsTwice(Signer):
    """Forgets the replay rule: signs an event again in another request."""

    def _already_processed(self, p):
        return False


class BugHunt(ThresholdMachine):
    """The threshold machine without the rules that only add noise to these four bugs
    (funding, restarts, tampering, re-delivery, duplication): a smaller search space, so the
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


def _impl(name, **classes):
    backend = SansIoBackend(**classes)
    return Implementation(machine="threshold", name=name, make_replica=lambda i, clock: backend)


def _run_and_expect_failure(impl, tmp_path, monkeypatch, max_steps=20):
    monkeypatch.setenv("MBT_TRACE_DIR", str(tmp_path))
    with pytest.raises(AssertionError) as failure:
        run_machine(BugHunt, impl, hypothesis_settings=settings(settings.get_profile("ci"), max_examples=300))
    traces = list(tmp_path.glob("threshold-*.json"))
    assert len(traces) == 1, traces
    steps = json.loads(traces[0].read_text())["steps"]
    assert len(steps) <= max_steps, f"trace of {len(steps)} steps: {steps}"
    notes = "\n".join(getattr(failure.value, "__notes__", []))
    assert "first divergence" in notes
    return failure.value, steps


def test_counting_duplicate_keys_is_caught(tmp_path, monkeypatch):
    _, steps = _run_and_expect_failure(_impl("counts-duplicate-keys", coordinator_class=CountsDuplicateKeys), tmp_path,
                                           monkeypatch)
    assert any(s["rule"] == "forge" and s["args"]["kind"] == "copy" for s in steps), steps


def test_counting_non_member_keys_is_caught(tmp_path, monkeypatch):
    _, steps = _run_and_expect_failure(_impl("counts-non-members", coordinator_class=CountsNonMembers), tmp_path,
                                           monkeypatch)
    assert any(s["rule"] == "forge" and s["args"]["kind"] == "non_member" for s in steps), steps


def test_volume_counted_only_at_finalization_is_caught(tmp_path, monkeypatch):
    error, steps = _run_and_expect_failure(_impl("volume-at-finalization", signer_class=VolumeAtFinalization), tmp_path,
                                           monkeypatch)
    assert sum(s["rule"] in ("new_event", "resubmit") for s in steps) >= 2, steps
    assert "daily volume exceeded" in str(error) or "volume" in str(error), error


def test_signing_a_second_template_for_an_event_is_caught(tmp_path, monkeypatch):
    _, steps = _run_and_expect_failure(_impl("signs-twice", signer_class=SignsTwice), tmp_path, monkeypatch)
    assert any(s["rule"] == "resubmit" for s in steps), steps
