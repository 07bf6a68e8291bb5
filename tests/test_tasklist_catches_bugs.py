"""The task-list machine catches realistic task-list bugs, each with a short trace.

Each bug is patched into a subclass of the real ``TaskList`` (or, for attestation checks,
into ``Record.verifies`` or ``_without_dots`` for the length of one test) and registered inline, never through
``machines/adapters``, so the normal suite does not run it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import Phase, settings
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from harness import Implementation, expect_caught, load_trace, replay
from implementations import lww, orset
from implementations import tasklist as impl
from implementations.tasklist import DONE, Record, TaskList, TaskRefused
from machines.adapters.tasklist_x0x import X0xTaskListReplica
from machines.tasklist import TaskListMachine

#: The ci profile, one bug reported per run, and no "explain" phase (it would double the time).
CI = settings(
    settings.get_profile("ci"),
    stateful_step_count=40,  # pinned (each bug below pins its own): tuning the ci profile must not reshuffle these
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
#: Below every pinned step count: the bound says the shrinker did its work.
MAX_TRACE_STEPS = 12
REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


class LaterClaimWins(TaskList):
    """(a) Claims ordered the wrong way round: the latest claim wins (Done still beats Claimed)."""

    def _states(self) -> dict[bytes, Record]:
        best: dict[bytes, Record] = {}
        for element in self._checkbox.value():
            record = Record.from_bytes(element)
            current = best.get(record.task)
            if current is None or (-record.kind, -record.ts_ms, record.agent) < (-current.kind, -current.ts_ms, current.agent):
                best[record.task] = record
        return best


class CompleteUnclaimed(TaskList):
    """(c) The "must claim first" guard forgotten: any task that is not done can be completed."""

    def complete(self, task: bytes) -> None:
        self._require(task)
        if self.checkbox(task)[0] == "done":
            raise TaskRefused("already_done", "already done")
        self._attest(DONE, task)


class OneClockPerField(TaskList):
    """(f) Every register stamped by its own hybrid logical clock instead of the replica's one:
    a write is only above the writes of its own field that the replica has seen."""

    def _register(self) -> lww.LWWRegister:
        return lww.LWWRegister(self.peer_id, self.clock)

    def _write(self, task: bytes, name: str, value) -> None:
        self._fields.setdefault((task, impl.FIELDS.index(name)), self._register())
        super()._write(task, name, value)

    def apply(self, message) -> None:
        for task, number, _ in message.fields:
            self._fields.setdefault((task, number), self._register())
        super().apply(message)


def replica_of(tasklist_class):
    def make(replica_id, clock):
        replica = X0xTaskListReplica(replica_id, clock)
        replica.tasks = tasklist_class(replica.tasks.list_id, replica.tasks.signing_key, clock, peer_id=replica_id)
        return replica

    return make


def trusts_every_attestation(self, list_id: bytes) -> bool:
    """(b) Merge keeps states whose attestation does not verify."""
    return True


def signature_only(record: Record, list_id: bytes) -> bool:
    """(b') The signature is checked with the key that travels with the state, but nobody
    checks that the key is the named agent's (agent id == BLAKE3(key))."""
    message = impl.attestation_message(record.kind, list_id, record.task, record.agent, record.ts_ms)
    try:
        VerifyKey(record.public_key).verify(message, record.signature)
    except (CryptoError, ValueError):
        return False
    return True


def drops_entries_only(store: orset.DotStore, dots: set) -> orset.DotStore:
    """(e) States that do not verify are dropped, but their dots stay in the causal context:
    a tampered copy that arrives first makes the genuine state look already seen."""
    clean = store.copy()
    for dot in dots:
        if dot in clean.owner:
            clean.discard(dot)
    return clean


#: Each bug, how it is patched in, how many ci examples the search gets and how many steps
#: each run has. The tampered copy needs a forgery to reach a replica before the genuine
#: state does: 300 examples. Finding a bug takes a few examples; shrinking it is nearly all
#: of a test's time, and costs more the longer the first failing run: each bug gets the step
#: count that finds it cheapest within the first half of its examples (measured over 15 to
#: 40 steps; see benchmarks/README.md, "The suite's cost").
#: One clock per field is not here: it needs two fields written at one replica right after
#: it saw a write with a later clock, which random runs rarely make (300 examples miss it);
#: the committed scenario ``tasklist-fields-share-one-clock`` catches it (below).
BUGS = {
    "later-claim-wins": (replica_of(LaterClaimWins), None, 60, 20),
    "complete-unclaimed": (replica_of(CompleteUnclaimed), None, 60, 40),
    "keeps-unverified-states": (X0xTaskListReplica, trusts_every_attestation, 60, 20),
    "agent-id-unchecked": (X0xTaskListReplica, signature_only, 60, 20),
    "tampered-copy-shadows-genuine": (X0xTaskListReplica, drops_entries_only, 300, 15),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_the_tasklist_machine_catches(bug, tmp_path, monkeypatch):
    make, patch, examples, run_steps = BUGS[bug]
    if patch is drops_entries_only:
        monkeypatch.setattr(impl, "_without_dots", patch)
    elif patch is not None:
        monkeypatch.setattr(Record, "verifies", patch)
    buggy = Implementation("tasklist", f"buggy-{bug}", make, level="exact")
    search = settings(CI, max_examples=examples, stateful_step_count=run_steps)
    steps = expect_caught(TaskListMachine, buggy, hypothesis_settings=search, trace_dir=tmp_path).trace.steps
    assert len(steps) <= MAX_TRACE_STEPS, [s.describe() for s in steps]


#: Committed scenarios (``regressions/traces``) and bugs each must expose when replayed.
SCENARIOS = [
    ("tasklist-fields-share-one-clock", replica_of(OneClockPerField), None),
    ("tasklist-claims-are-not-locks", replica_of(LaterClaimWins), None),
    ("tasklist-partition-conflicting-claims", replica_of(LaterClaimWins), None),
    ("tasklist-forged-attestations", X0xTaskListReplica, trusts_every_attestation),
    ("tasklist-forged-attestations", X0xTaskListReplica, signature_only),
    ("tasklist-forged-attestations", X0xTaskListReplica, drops_entries_only),
]


@pytest.mark.parametrize(("scenario", "make", "patch"), SCENARIOS,
                         ids=[f"{name}-{(patch or make).__name__}" for name, make, patch in SCENARIOS])
def test_the_committed_scenarios_fail_against_the_bugs(scenario, make, patch, monkeypatch):
    if patch is drops_entries_only:
        monkeypatch.setattr(impl, "_without_dots", patch)
    elif patch is not None:
        monkeypatch.setattr(Record, "verifies", patch)
    trace = load_trace(REGRESSIONS / f"{scenario}.json")
    outcome = replay(trace, TaskListMachine, Implementation("tasklist", "buggy", make, level="exact"))
    assert outcome.status == "failed", outcome
