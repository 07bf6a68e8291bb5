"""Task-list bugs: claim order, the must-claim rule, attestations, one clock per replica."""

from __future__ import annotations

import blake3
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from implementations import lww
from implementations import tasklist as impl
from implementations.tasklist import DONE, Record, TaskList, TaskRefused
from machines.adapters.tasklist_x0x import X0xTaskListReplica
from tests.bugs.catalogue import Bug, patched, variant


class LaterClaimWins(TaskList):
    """Claims ordered the wrong way round: the latest claim wins (Done still beats Claimed)."""

    @staticmethod
    def _join_record(records, record: Record) -> bool:
        current = records.get((record.task, record.kind))
        if current is not None and (-current.ts_ms, current.agent) <= (-record.ts_ms, record.agent):
            return False  # BUG: the earlier claim (smaller ts_ms) must rank first
        records[(record.task, record.kind)] = record
        return True

    def _worth_verifying(self, record: Record) -> bool:
        return True


class CompleteUnclaimed(TaskList):
    """The "must claim first" guard forgotten: any task that is not done can be completed."""

    def complete(self, task: bytes) -> None:
        self._require(task)
        if self.checkbox(task)[0] == "done":
            raise TaskRefused("already_done", "already done")
        self._attest(DONE, task)


class OneClockPerField(TaskList):
    """Every register stamped by its own hybrid logical clock instead of the replica's one."""

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
    """Merge keeps states whose attestation does not verify."""
    return True


def signature_only(record: Record, list_id: bytes) -> bool:
    """The signature is checked with the key that travels with the state, but nobody checks
    that the key is the named agent's (agent id == BLAKE3(key))."""
    message = impl.attestation_message(record.kind, list_id, record.task, record.agent, record.ts_ms)
    try:
        VerifyKey(record.public_key).verify(message, record.signature)
    except (CryptoError, ValueError):
        return False
    return True


class RemembersRefusedRecords(TaskList):
    """A forger's flood is not verified twice: a record that did not verify is remembered by
    its task, kind, agent and time, which a forger controls, not by its bytes, so a tampered
    copy that arrives first makes the genuine record be skipped unverified."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._refused: set[tuple] = set()

    def _worth_verifying(self, record: Record) -> bool:
        key = (record.task, record.kind, record.agent, record.ts_ms)
        if key in self._refused:
            return False  # BUG: the key must cover the signature (or nothing be remembered)
        if not super()._worth_verifying(record):
            return False
        if not record.verifies(self.list_id):
            self._refused.add(key)
        return True


class MergeReplacesCheckboxes(TaskList):
    """A full state's checkbox records replace the ones held instead of joining them: a
    state that lacks a signed Done (stale, or a liar's) erases it."""

    def apply(self, message) -> None:
        if isinstance(message.order, impl.rga_impl.State):
            self._checkbox = {}  # BUG: a merge is a join, never a replacement
        super().apply(message)


class BelievesEveryMessage(TaskList):
    """Issue 7, defects 2, 3 and 7 with the limits turned off: a membership context claiming
    this agent's own dots or dots far ahead is believed, and field timestamps far in the
    future are joined."""

    def admit(self, message, what: str) -> None:
        pass  # BUG: no limit is checked


def task_id_without_creator(title: str, creator: bytes, created_at_ms: int) -> bytes:
    """A task's id from its title and creation millisecond only: two agents who add a task
    of the same title in the same millisecond make one task."""
    return blake3.blake3(title.encode() + created_at_ms.to_bytes(8, "big")).digest()


def _bug(name, description, kind, plant, involves=()):
    return Bug(f"tasklist-{name}", "tasklist", description, kind, plant, correct="x0x", involves=frozenset(involves))


def _x0x_with(attribute_owner, attribute, value, name):
    return patched(attribute_owner, attribute, value, "tasklist", name, X0xTaskListReplica)


def _variant(name, cls):
    return variant("tasklist", name, replica_of(cls))


BUGS = [
    _bug("later-claim-wins", "of two concurrent claims the later wins (the earlier must)", "tie-break",
         _variant("later-claim-wins", LaterClaimWins), {"claim"}),
    _bug("complete-unclaimed", "a task that nobody claimed can be completed", "off-by-one",
         _variant("complete-unclaimed", CompleteUnclaimed)),
    _bug("one-clock-per-field", "each field register has its own hybrid logical clock, not the replica's one",
         "timestamp-source", _variant("one-clock-per-field", OneClockPerField)),
    _bug("keeps-unverified-states", "a merge keeps checkbox states whose attestation does not verify",
         "signature-coverage", _x0x_with(Record, "verifies", trusts_every_attestation, "keeps-unverified-states"),
         {"inject_forged"}),
    _bug("agent-id-unchecked", "an attestation's key is not checked to be the named agent's", "signature-coverage",
         _x0x_with(Record, "verifies", signature_only, "agent-id-unchecked"), {"inject_forged"}),
    _bug("tampered-copy-shadows-genuine", "a refused record is remembered by what a forger controls (task, kind, "
         "agent, time), so a tampered copy arriving first hides the genuine one", "replay-cache",
         _variant("tampered-copy-shadows-genuine", RemembersRefusedRecords), {"inject_forged"}),
    _bug("task-id-without-creator", "a task id is a hash of title and millisecond only: two agents' tasks collide",
         "wall-clock-tag", _x0x_with(impl, "task_id", task_id_without_creator, "task-id-without-creator"),
         {"add_task"}),
    _bug("merge-replaces-checkboxes", "a full state's checkbox records replace the ones held instead of joining them: "
         "a stale or lying state erases a signed Done", "lost-update",
         _variant("merge-replaces-checkboxes", MergeReplacesCheckboxes)),
    _bug("believes-every-message", "a message's membership context and field timestamps are believed unchecked: "
         "a peer's lie about this agent's own dots, or a clock far ahead, hides its later work", "believes-a-lie",
         _variant("believes-every-message", BelievesEveryMessage), {"hostile"}),
]
