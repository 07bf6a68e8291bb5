"""The crash script: real signer and coordinator processes under load, SIGKILLed at random.

A 2-of-3 group runs as OS processes on SQLite files in a temporary directory: two
coordinators (nodes 0 and 1, each on its own file) and, for each member, **two** signer
processes sharing that member's file. Messages travel through a mailbox file (taking a
message deletes it, so a process killed while holding one loses it, as a network would);
the node is a ledger in its own file (``FileLedger``). The driver feeds every event to
both coordinators, so each member's two processes race on two proposals of one event, and
SIGKILLs a random process at random moments (seeded), starting it again at once. Then it
stops the load, lets the processes drain, stops them, ticks every file once past every
expiry (each core's own recovery), and audits the files:

* reservations leaked: a reservation still live, or a day whose recorded volume differs
  from the sum of its live and kept reservations;
* volume counted twice: a transaction paid by two requests; counted never: a transaction
  on the ledger that no coordinator recorded, or whose volume a signer that signed it
  gave back;
* events signed twice: an event a member's file signed in two requests or with two
  templates.

Every count must be 0. The process group (``implementations.transport.process``) reaps every child, also on
errors; each child stops by itself when the driver dies or its deadline passes.

    python -m benchmarks.crash_signers --kills 200 [--seed 7] [--keep DIR | --dir PARENT]

(Nothing here is timed: the table counts. About a minute on 2 cores for 200 kills.)
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nacl.signing
from blake3 import blake3

from harness import faults
from implementations import pskt
from implementations.ledger import Ledger, LedgerError, MultisigGroup
from implementations.policy import Policy
from implementations.storage import Store
from implementations.threshold import Coordinator, EventRefused, GroupConfig, Signer
from implementations.transport.process import ProcessGroup, parent_alive
from implementations.wire import DecodeError

M, N = 2, 3
COORDINATORS = (0, 1)
PROCESSES_PER_SIGNER = 2
TIMEOUT_NS = 5 * 10**9  # session timeout: short, so some requests expire during the run
POLICY = Policy(max_amount=280, max_daily_volume=10**15)  # a few amounts are refused
FEE = 10
COINS = 150
TICK_EVERY_S = 0.05
CHILD_LIFETIME_S = 600  # a child exits by itself at the latest after this


def member_seed(i: int) -> bytes:
    return blake3(f"crash-signers:member:{i}".encode()).digest()


def group_config() -> GroupConfig:
    keys = tuple(bytes(nacl.signing.SigningKey(member_seed(i)).verify_key) for i in range(N))
    address = MultisigGroup(M, keys).address
    return GroupConfig(keys, M, address, FEE, pskt.SignersPay(), TIMEOUT_NS)


# ----- the node: a ledger in a file ----------------------------------------------------------

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS utxos (txid BLOB, idx INTEGER, amount INTEGER, owner TEXT, spent INTEGER DEFAULT 0,
                                  PRIMARY KEY (txid, idx));
CREATE TABLE IF NOT EXISTS accepted (n INTEGER PRIMARY KEY AUTOINCREMENT, txid BLOB UNIQUE);
"""


class FileLedger:
    """A ``Node`` over a ledger file shared by every process: UTXOs, membership, submission
    (each submission one transaction, checked like ``implementations.ledger.Ledger``: every
    input unspent and signed by ``m`` distinct group keys)."""

    def __init__(self, path: str, group: MultisigGroup, order_seed: int) -> None:
        self.store = Store(path, LEDGER_SCHEMA)
        self.group, self.address, self.order_seed = group, group.address, order_seed

    def fund(self, count: int, amount: int) -> None:
        with self.store.transaction():
            for k in range(count):
                txid = blake3(b"crash-signers:faucet:" + k.to_bytes(8, "little")).digest()
                self.store.execute("INSERT OR IGNORE INTO utxos (txid, idx, amount, owner) VALUES (?, 0, ?, ?)",
                                   (txid, amount, self.address))

    def utxos(self) -> list[pskt.Utxo]:
        rows = self.store.execute("SELECT txid, idx, amount FROM utxos WHERE owner = ? AND spent = 0 ORDER BY txid, idx",
                                  (self.address,)).fetchall()
        utxos = [pskt.Utxo(txid, idx, amount) for txid, idx, amount in rows]
        random.Random(self.order_seed).shuffle(utxos)
        return utxos

    def has_transaction(self, txid: bytes) -> bool:
        return self.store.execute("SELECT 1 FROM accepted WHERE txid = ?", (txid,)).fetchone() is not None

    def submit(self, tx: pskt.SignedTransaction) -> bytes:
        template = tx.template
        txid = pskt.tx_template_hash(template)
        with self.store.transaction():
            for i, utxo in enumerate(template.inputs):
                row = self.store.execute("SELECT amount, spent FROM utxos WHERE txid = ? AND idx = ?",
                                         (utxo.txid, utxo.index)).fetchone()
                if row is None or row[1] or row[0] != utxo.amount:
                    raise LedgerError("double_spend", f"input {i} is spent or unknown")
                sighash = pskt.input_sighash(template, i, txid)
                if Ledger.signers_of(self.group, tx.signatures[i], sighash) < self.group.m:
                    raise LedgerError("signatures", f"input {i} lacks {self.group.m} group signatures")
            for utxo in template.inputs:
                self.store.execute("UPDATE utxos SET spent = 1 WHERE txid = ? AND idx = ?", (utxo.txid, utxo.index))
            for i, output in enumerate(template.outputs):
                self.store.execute("INSERT INTO utxos (txid, idx, amount, owner) VALUES (?, ?, ?, ?)",
                                   (txid, i, output.amount, output.address))
            self.store.execute("INSERT INTO accepted (txid) VALUES (?)", (txid,))
        return txid


# ----- the network: a mailbox file ---------------------------------------------------------

MAIL_SCHEMA = """
CREATE TABLE IF NOT EXISTS mail (id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT, data BLOB);
CREATE INDEX IF NOT EXISTS mail_by_recipient ON mail (recipient, id);
"""


class Mailbox:
    def __init__(self, path: str) -> None:
        self.store = Store(path, MAIL_SCHEMA)

    def post(self, messages: list[tuple[str, bytes]]) -> None:
        if messages:
            with self.store.transaction():
                for recipient, data in messages:
                    self.store.execute("INSERT INTO mail (recipient, data) VALUES (?, ?)", (recipient, data))

    def pending(self, recipient: str) -> int:
        return self.store.execute("SELECT COUNT(*) FROM mail WHERE recipient = ?", (recipient,)).fetchone()[0]

    def take(self, recipient: str) -> bytes | None:
        if self.store.execute("SELECT 1 FROM mail WHERE recipient = ? LIMIT 1", (recipient,)).fetchone() is None:
            return None  # nothing there: no write lock taken
        with self.store.transaction():
            row = self.store.execute("SELECT id, data FROM mail WHERE recipient = ? ORDER BY id LIMIT 1", (recipient,)).fetchone()
            if row is not None:
                self.store.execute("DELETE FROM mail WHERE id = ?", (row[0],))
        return None if row is None else row[1]


# ----- a worker process --------------------------------------------------------------------


def _files(directory: Path) -> dict[str, str]:
    return {"ledger": str(directory / "ledger.db"), "mail": str(directory / "mail.db")}


def _core(role: str, index: int, directory: Path, order_seed: int):
    config = group_config()
    node = FileLedger(_files(directory)["ledger"], MultisigGroup(M, config.members), order_seed)
    if role == "signer":
        return Signer(member_seed(index), config, node, str(directory / f"signer-{index}.db"), POLICY)
    return Coordinator(member_seed(index), config, node, str(directory / f"coordinator-{index}.db"))


def worker(role: str, index: int, directory: Path, parent: int, order_seed: int) -> None:
    """One process's loop: take its mail, handle it, post the answers, tick now and then."""
    config = group_config()
    core = _core(role, index, directory, order_seed)
    mail = Mailbox(_files(directory)["mail"])
    core.tick(time.time_ns())  # a restarted core's first act
    inbox = f"{role}-{index}"
    deadline, next_tick = time.monotonic() + CHILD_LIFETIME_S, 0.0
    while parent_alive(parent) and time.monotonic() < deadline:
        busy = False
        if role == "coordinator":
            event = mail.take(f"events-{index}")
            if event is not None:
                busy = True
                try:
                    _, out = core.submit_event(pskt.decode_event(event), time.time_ns())
                    mail.post([(f"signer-{config.members.index(to)}", data) for to, data in out])
                except (EventRefused, pskt.TemplateRefused):
                    pass
        data = mail.take(inbox)
        if data is not None:
            busy = True
            try:
                out = core.handle(data, time.time_ns())
            except DecodeError:  # a replay of a message handled before a crash, say
                out = []
            mail.post([(f"coordinator-{config.members.index(to)}", reply) for to, reply in out])
        if time.monotonic() >= next_tick:
            core.tick(time.time_ns())
            next_tick = time.monotonic() + TICK_EVERY_S
        if not busy:
            time.sleep(0.002)


# ----- the driver and the audit ------------------------------------------------------------


def prepare(directory: Path) -> None:
    config = group_config()
    FileLedger(_files(directory)["ledger"], MultisigGroup(M, config.members), 0).fund(COINS, 1_000)
    Mailbox(_files(directory)["mail"])


def start_workers(host: ProcessGroup, directory: Path, roles: list[tuple[str, int]]) -> list[str]:
    names = []
    for role, index in roles:
        copies = PROCESSES_PER_SIGNER if role == "signer" else 1
        for copy in range(copies):
            name = f"{role}-{index}-{copy}"
            host.spawn(name, "benchmarks.crash_signers", ["worker", "--role", role, "--index", str(index), "--dir",
                       str(directory), "--parent", str(os.getpid()), "--order-seed", str(index * 10 + copy)])
            names.append(name)
    return names


def event(k: int, rng: random.Random) -> pskt.Event:
    return pskt.Event("crash-script", f"ext-{k}", f"kaspatest:dest{k}", rng.choice([100, 150, 200, 250, 300]),
                      (("reason", "bridge"),), time.time_ns())


def run(kills: int, seed: int, directory: Path, drain_s: float = 4.0) -> dict[str, int]:
    """Run the load with ``kills`` SIGKILLs and return the audit's counts."""
    rng = random.Random(seed)
    prepare(directory)
    mail = Mailbox(_files(directory)["mail"])
    sent = 0
    with ProcessGroup(directory / "logs") as host:
        names = start_workers(host, directory, [("coordinator", c) for c in COORDINATORS] + [("signer", i) for i in range(N)])
        next_kill = time.monotonic() + rng.uniform(0.02, 0.25)
        done = 0
        stop_at = time.monotonic() + 30 + kills  # bounded, whatever happens
        while done < kills and time.monotonic() < stop_at:
            if mail.pending("events-0") < 4:  # a steady feed, as fast as the coordinators take it
                data = pskt.encode_event(event(sent, rng))
                mail.post([(f"events-{c}", data) for c in COORDINATORS])
                sent += 1
            if time.monotonic() >= next_kill:
                victim = rng.choice(names)
                host[victim].kill()
                host[victim].restart()
                done += 1
                next_kill = time.monotonic() + rng.uniform(0.02, 0.25)
            time.sleep(0.01)
        time.sleep(drain_s)
        host.close()
        restarts = sum(child.starts for child in host.children.values()) - len(names)
    counts = audit(directory)
    return {"kills": done, "restarts": restarts, "events": sent, **counts}


def audit(directory: Path) -> dict[str, int]:
    """Tick every file past every expiry (each core's own recovery), then count the violations."""
    final = time.time_ns() + 10 * 60 * 10**9
    for role, index in [("coordinator", c) for c in COORDINATORS] + [("signer", i) for i in range(N)]:
        core = _core(role, index, directory, 0)
        core.tick(final)
        core.close()
    db = {name: sqlite3.connect(str(directory / f"{name}.db")) for name in
          ["ledger", *(f"coordinator-{c}" for c in COORDINATORS), *(f"signer-{i}" for i in range(N))]}
    accepted = [r[0] for r in db["ledger"].execute("SELECT txid FROM accepted")]
    payments = Counter(r[0] for c in COORDINATORS for r in db[f"coordinator-{c}"].execute("SELECT txid FROM payments"))
    finalized = sum(db[f"coordinator-{c}"].execute("SELECT COUNT(*) FROM requests WHERE state = 'Finalized'").fetchone()[0]
                    for c in COORDINATORS)
    leaked = signed_twice = released_though_paid = 0
    paid = set(accepted)
    for i in range(N):
        s = db[f"signer-{i}"]
        leaked += s.execute("SELECT COUNT(*) FROM reservations WHERE state = 'approved'").fetchone()[0]
        for day, reserved in s.execute("SELECT day, reserved FROM daily_volume"):
            held = sum(int(a) for (a,) in s.execute(
                "SELECT amount FROM reservations WHERE day = ? AND state IN ('approved', 'finalized')", (day,)))
            leaked += held != int(reserved)
        signed_twice += s.execute("SELECT COUNT(*) FROM (SELECT event_hash FROM answers WHERE template IS NOT NULL"
                                  " GROUP BY event_hash HAVING COUNT(*) > 1)").fetchone()[0]
        for request_id, template in s.execute("SELECT request_id, template FROM answers WHERE template IS NOT NULL"):
            state = s.execute("SELECT state FROM reservations WHERE request_id = ?", (request_id,)).fetchone()[0]
            released_though_paid += blake3(template).digest() in paid and state != "finalized"
    for handle in db.values():
        handle.close()
    return {
        "transactions on the ledger": len(accepted),
        "requests finalized": finalized,
        "reservations leaked": leaked,
        "volume counted twice": sum(n - 1 for n in payments.values() if n > 1),
        "volume counted never": len(paid - set(payments)) + released_though_paid,
        "events signed twice": signed_twice,
    }


MUST_BE_ZERO = ("reservations leaked", "volume counted twice", "volume counted never", "events signed twice")
#: Without a payment the counts above are vacuous.
MUST_HAPPEN = "transactions on the ledger"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    w = sub.add_parser("worker", help="(internal) one signer or coordinator process")
    w.add_argument("--role", choices=["signer", "coordinator"], required=True)
    w.add_argument("--index", type=int, required=True)
    w.add_argument("--dir", required=True)
    w.add_argument("--parent", type=int, required=True)
    w.add_argument("--order-seed", type=int, default=0)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", default=None, help="keep the files in this directory (default: a removed temporary one)")
    parser.add_argument("--dir", default=faults.store_directory(),
                        help="where the temporary directory goes (default: /dev/shm where there is one; a SIGKILL "
                             "loses nothing a disk would keep, and every commit syncs)")
    args = parser.parse_args(argv)
    if args.command == "worker":
        worker(args.role, args.index, Path(args.dir), args.parent, args.order_seed)
        return 0
    from tabulate import tabulate

    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="crash-signers-", dir=args.dir))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        counts = run(args.kills, args.seed, directory)
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    rows = [[name, value, "must be 0" if name in MUST_BE_ZERO else "must be > 0" if name == MUST_HAPPEN else ""]
            for name, value in counts.items()]
    print(tabulate(rows, headers=["", "count", ""]))
    if not counts[MUST_HAPPEN]:
        print("no payment was made, so the audit checked nothing: the processes were killed faster than they got "
              "work done (a loaded machine?); run with fewer --kills or on a quieter machine", file=sys.stderr)
    return 0 if counts[MUST_HAPPEN] and all(counts[name] == 0 for name in MUST_BE_ZERO) else 1


if __name__ == "__main__":
    sys.exit(main())
