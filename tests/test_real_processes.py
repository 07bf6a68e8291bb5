"""Two real OS processes on one signer file, racing on two proposals of the same event.

The machines interleave two instances of a core at transaction boundaries, in one process;
this test does it for real: two ``benchmarks.crash_signers`` signer workers share member
0's file and its mailbox, and each round posts the two proposals of one event (from two
coordinators) at once, so each process takes one. The file must show each event signed in
one request only, the other refused "event already processed", and the reserved volume
equal to the live reservations. Bounded (every wait has a deadline) and cleaned up (the
process group reaps both workers, also on failure).
"""

from __future__ import annotations

import os
import sqlite3
import time

from benchmarks import crash_signers as cs
from implementations import pskt
from implementations.threshold import decode_answer
from implementations.threshold_envelope import decode_envelope
from implementations.transport.process import ProcessGroup

ROUNDS = 12
DEADLINE_S = 60


def test_two_signer_processes_on_one_file_never_sign_an_event_twice(tmp_path):
    cs.prepare(tmp_path)
    coordinators = [cs._core("coordinator", c, tmp_path, 0) for c in cs.COORDINATORS]
    mail = cs.Mailbox(cs._files(tmp_path)["mail"])
    signer0 = coordinators[0].group.members[0]
    with ProcessGroup(tmp_path / "logs") as host:
        for copy in range(2):
            host.spawn(f"signer-0-{copy}", "benchmarks.crash_signers", ["worker", "--role", "signer", "--index", "0",
                       "--dir", str(tmp_path), "--parent", str(os.getpid()), "--order-seed", str(copy)])
        for k in range(ROUNDS):
            event = pskt.Event("race", f"ext-{k}", f"kaspatest:dest{k}", 100, (("reason", "bridge"),), time.time_ns())
            proposals = []
            for coordinator in coordinators:
                _, out = coordinator.submit_event(event, time.time_ns())
                proposals += [("signer-0", data) for to, data in out if to == signer0]
            mail.post(proposals)  # both at once: each process takes one
        deadline = time.monotonic() + DEADLINE_S
        while sum(mail.pending(f"coordinator-{c}") for c in cs.COORDINATORS) < 2 * ROUNDS:
            assert time.monotonic() < deadline, "the signer processes did not answer in time"
            assert host["signer-0-0"].alive and host["signer-0-1"].alive, "a signer process died"
            time.sleep(0.02)
    for coordinator in coordinators:
        coordinator.close()
    answers = [decode_answer(decode_envelope(data).payload)
               for c in cs.COORDINATORS for data in _all_mail(tmp_path, f"coordinator-{c}")]
    assert len(answers) == 2 * ROUNDS
    accepted = sorted(a.event_hash for a in answers if a.accept)
    assert len(accepted) == len(set(accepted)) == ROUNDS, "an event was signed twice (or never)"
    assert sorted(a.reason for a in answers if not a.accept) == ["event already processed"] * ROUNDS
    signer = sqlite3.connect(str(tmp_path / "signer-0.db"))
    try:
        twice = signer.execute("SELECT COUNT(*) FROM (SELECT event_hash FROM answers WHERE template IS NOT NULL"
                               " GROUP BY event_hash HAVING COUNT(*) > 1)").fetchone()[0]
        live = sum(int(a) for (a,) in signer.execute("SELECT amount FROM reservations WHERE state = 'approved'"))
        reserved = sum(int(r) for (r,) in signer.execute("SELECT reserved FROM daily_volume"))
    finally:
        signer.close()
    assert twice == 0
    assert live == reserved == 100 * ROUNDS


def _all_mail(directory, recipient: str) -> list[bytes]:
    db = sqlite3.connect(str(directory / "mail.db"))
    try:
        return [r[0] for r in db.execute("SELECT data FROM mail WHERE recipient = ? ORDER BY id", (recipient,))]
    finally:
        db.close()
