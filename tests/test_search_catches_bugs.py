"""Bugs the machines reach only since their search was sharpened (issue 13), one per cause.

Each bug is planted in a subclass (nothing in ``implementations/`` changes) and the machine
must catch it under the ``ci`` profile's own settings (derandomized, 250 examples of 50
steps), with a short trace that shows the cause:

* **value domains**: a float fee split truncated with ``int()`` is exact while the recipient's
  share fits a double's 53 bits. Before issue 13 the PSKT machine paid fees of 0 to 101
  sompi and caught it only through a 36-step trace of repeated funding (measured on commit
  9cd0486 under ``ci``); now fees, coins and amounts reach the edges of their types and
  z3's edges (``machines/spec_z3.py``), and the trace is at most 12 steps with a fee of at
  least 2^52.
* **actors that move together**: a coordinator that leaves a request's expiry to its tick
  counts an answer that arrives after the deadline and before the tick; the threshold
  machine ticked every core whenever the clock moved, so no answer ever arrived there.
  Now each core ticks when the machine says, and the clock stops at each deadline.
* **all-or-nothing misbehaviour**: a coordinator that checks one signature per key and
  answer and takes the key's others on trust is fooled only by an answer right about one
  input and wrong about another; forged answers were wrong about every input. The machine
  finds it under ``ci`` too, but only after 70 to 280 s (a two-input request needs a payment
  first; the shortest trace is 24 steps), so this test replays the committed trace it found
  (``regressions/traces/threshold-forged-answer-right-about-one-input-of-two.json``).

The two threshold bugs were out of the old machine's reach by construction (its clock rule
ticked every core, its forge rule had no ``inputs``). Rule balance has no planted bug here:
its floors are checked by ``tests/test_balance.py`` and every ``ci`` machine run.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import settings

from harness import Implementation, expect_caught, load_trace, replay
from harness.registry import implementation
from implementations import pskt
from implementations.limits import I64_MAX
from implementations.pskt import verify_signature
from implementations.threshold import ALIVE, Coordinator
from machines.adapters.pskt_ledger import implementation_with
from machines.adapters.threshold_sansio import SansIoBackend
from machines.pskt import PsktMachine
from machines.threshold import ThresholdMachine

#: The ci profile as it is, reporting one failure.
CI = settings(settings.get_profile("ci"), report_multiple_bugs=False)
MAX_TRACE_STEPS = 12
REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


_recipient_fee_share = pskt.recipient_fee_share


def truncated_float_split(fee, fee_mode):
    """The float split; every other fee mode (an unknown one too: TypeError) as the real one."""
    if isinstance(fee_mode, pskt.Split):
        return int(fee * fee_mode.recipient_parts / (fee_mode.recipient_parts + fee_mode.signer_parts))
    return _recipient_fee_share(fee, fee_mode)


class ExpiresOnlyAtTick(Coordinator):
    """Trusts its state column: a live request expires when the coordinator's tick marks it,
    so an answer that arrives after ``expires_at`` and before the next tick still counts."""

    def _request(self, request_id):
        row = super()._request(request_id)
        if row is None or row[3] not in ALIVE:
            return row
        proposal, n_inputs, _, state, decided_at = row
        return proposal, n_inputs, I64_MAX, state, decided_at


class VouchesForAKeysOtherSignatures(Coordinator):
    """Checks one signature per key and answer: once a key's signature on one input verifies,
    its signatures on the answer's other inputs are taken unchecked (a batch shortcut)."""

    def _fresh_signatures(self, request_id, answer, hashes):
        held = set(self.store.execute("SELECT input_index, public_key FROM partial_signatures WHERE request_id = ?",
                                      (request_id,)).fetchall())
        fresh, vouched = [], set()
        for index, key, signature in answer.signatures:
            if index >= len(hashes) or not self._counts(key) or (index, key) in held:
                continue
            held.add((index, key))
            if key in vouched:
                fresh.append((index, key, signature))
                continue
            self.signatures_checked += 1
            if verify_signature(key, signature, hashes[index]):
                vouched.add(key)
                fresh.append((index, key, signature))
        return fresh


def passes_without_the_bug(caught, machine_cls, correct: Implementation) -> None:
    """The trace is a scenario of the machine, not of the bug: the correct code passes it."""
    outcome = replay(caught.trace, machine_cls, correct)
    assert outcome.status == "passed", outcome


def threshold_with(name: str, **classes) -> Implementation:
    backend = SansIoBackend(**classes)
    return Implementation(machine="threshold", name=name, make_replica=lambda i, clock: backend)


def test_a_truncated_float_fee_split_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(pskt, "recipient_fee_share", truncated_float_split)
    caught = expect_caught(PsktMachine, implementation_with("buggy-float-split"), hypothesis_settings=CI, trace_dir=tmp_path)
    steps = caught.trace.steps
    assert len(steps) <= MAX_TRACE_STEPS, [s.describe() for s in steps]
    pay = next(s for s in steps if s.rule == "pay")
    assert pay.args["fee_mode"].startswith("split:") and pay.args["fee"] >= 2**52, pay.describe()
    monkeypatch.undo()
    passes_without_the_bug(caught, PsktMachine, implementation("pskt", "ledger"))


def test_an_answer_between_the_deadline_and_the_tick_is_caught(tmp_path):
    impl = threshold_with("expires-only-at-tick", coordinator_class=ExpiresOnlyAtTick)
    # found within ci's examples; 40 examples of shrinking (then harness.minimize) keep the test
    # at about 8 s instead of 30
    caught = expect_caught(ThresholdMachine, impl, hypothesis_settings=CI, trace_dir=tmp_path, shrink_examples=40)
    steps = caught.trace.steps
    assert len(steps) <= MAX_TRACE_STEPS, [s.describe() for s in steps]
    # the clock passed the deadline without the coordinator ticking
    assert any(s.rule == "advance_clock" and s.args.get("ticks") is not None and ["coordinator", 0] not in s.args["ticks"]
               for s in steps), [s.describe() for s in steps]
    passes_without_the_bug(caught, ThresholdMachine, implementation("threshold", "sans-io"))


def test_an_answer_right_about_one_input_and_wrong_about_another_is_caught():
    trace = load_trace(REGRESSIONS / "threshold-forged-answer-right-about-one-input-of-two.json")
    forged = [s for s in trace.steps if s.rule == "forge"]
    assert forged and all(s.args.get("inputs") is not None for s in forged), [s.describe() for s in forged]
    impl = threshold_with("vouches-for-a-keys-other-signatures", coordinator_class=VouchesForAKeysOtherSignatures)
    outcome = replay(trace, ThresholdMachine, impl)
    assert outcome.status == "failed" and outcome.step == len(trace.steps) - 1, outcome
    assert "the implementation has 'Aborted', the model says 'Pending'" in outcome.message, outcome
    assert replay(trace, ThresholdMachine, implementation("threshold", "sans-io")).status == "passed"
