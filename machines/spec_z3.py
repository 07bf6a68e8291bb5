"""z3 edges of the SPEC's arithmetic beyond the policy: PSKT amounts and fees, and the
threshold protocol's time windows (the policy's own are in ``machines.policy_z3``).

Two symbolic twins, each checked against its model on random concrete inputs
(``tests/test_spec_z3.py``), so the twin and the model cannot drift:

* ``symbolic_build`` is the arithmetic of ``models.pskt.build_template`` over exact
  integers (128-bit bit-vectors: ``fee * recipient_parts`` needs 96): the fee split
  ``recipient_fee = fee * rp // (rp + sp)``, the target ``amount + fee``, the recipient's
  output ``amount - recipient_fee``, the change ``total - amount - (fee - recipient_fee)``, and
  the refusals ``zero_amount``, ``amount_below_fee`` (``amount < recipient_fee``) and
  ``insufficient_funds`` (``total < amount + fee``), ``total`` being what the selected
  inputs hold (one coin here: which coins are selected is not arithmetic);
* ``symbolic_window`` is ``models.threshold``'s clocks: the expiry window a signer accepts
  (``now - 30 s <= expires_at <= now + 1 h + 30 s``), the coordinator's session deadline
  (``timed_out``: ``now >= expires_at``) and the signers' settlement (``expires_at + 30 s <= now``).

``search`` asks z3, one edge at a time (``PSKT_EDGES``, ``WINDOW_EDGES``), for concrete
values on the edge and a few answers apart (blocking clauses; realistic bounds: amounts of
at least 0.001 KAS, at most the 2**63 sompi no supply reaches, times from 2023 on). The
answers are written to ``machines/spec_edges.json`` and fed to the machines: the PSKT
machine funds, pays and splits fees with them, and the threshold machine moves its clock to
each deadline plus each offset the window edges found (``machines.spec_edges``)::

    python -m machines.spec_z3 --write machines/spec_edges.json

A float fee split (``fee * rp / (rp + sp)``) is exact while the share fits a double's 53
bits; the edge ``split-share-past-2^53`` asks for shares past that and keeps only answers
on which a float split, rounded or truncated, really differs from the integer one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import z3

from harness import Step, Trace
from models.clock import NS_PER_SECOND
from models.threshold import MAX_LIFETIME_NS, SKEW_NS

WIDE = 128
U32_MAX = 2**32 - 1
#: No sum of sompi reaches this (Kaspa's whole supply is below it; ``models/pskt.py``).
SUPPLY_BOUND = 2**63 - 1
TIMEOUT_MS = 5_000
KINDS = ("built", "zero_amount", "amount_below_fee", "insufficient_funds")
BUILT, ZERO, BELOW_FEE, INSUFFICIENT = range(len(KINDS))
#: (least coin, least fee) of the first, second and third answer of an edge.
ANCHORS = ((10**5, 1), (10**11, 10**4), (2**61, 2**40))
#: 2023-11-14T22:13:20Z, where the networked machines' clocks start.
START_NS = 1_700_000_000 * NS_PER_SECOND
I64_MAX = 2**63 - 1
OUT = Path(__file__).resolve().parent / "spec_edges.json"
#: Where the PSKT edges are committed as traces of the pskt machine (``pskt-z3-*.json``).
TRACES = Path(__file__).resolve().parent.parent / "regressions" / "traces"


#: The fee modes a search tries (a split by its parts): the SPEC's, and parts at their edges.
FEE_MODES = ("recipient", "signers", "split:1:2", "split:3:1", "split:4:1", "split:7:3", "split:0:1", "split:1:0",
             f"split:{U32_MAX}:1", f"split:1:{U32_MAX}", f"split:{U32_MAX}:{U32_MAX}", f"split:{U32_MAX}:{U32_MAX - 1}")


def parts_of(fee_mode: str) -> tuple[int, int] | None:
    """``(recipient_parts, signer_parts)`` of a split, None for the other modes."""
    if not fee_mode.startswith("split:"):
        return None
    _, rp, sp = fee_mode.split(":")
    return int(rp), int(sp)


def recipient_share(fee: z3.ArithRef, fee_mode: str) -> z3.ArithRef:
    """The recipient's part of ``fee`` in ``fee_mode`` (integers: ``fee * rp // (rp + sp)``)."""
    if fee_mode == "recipient":
        return fee
    if fee_mode == "signers":
        return z3.IntVal(0)
    rp, sp = parts_of(fee_mode)
    return (fee * rp) / (rp + sp)  # z3's integer division: the floor, for the non-negative values here


def symbolic_build(amount, fee, fee_mode: str, total) -> tuple[z3.ArithRef, z3.ArithRef, z3.ArithRef, z3.ArithRef]:
    """The kind of ``build_template``'s answer (``KINDS``), the recipient's fee share, the
    recipient's output and the change, for one selection holding ``total`` (exact integers;
    the fee mode is concrete, so every product is linear)."""
    share = recipient_share(fee, fee_mode)
    kind = z3.IntVal(BUILT)
    kind = z3.If(total < amount + fee, INSUFFICIENT, kind)
    kind = z3.If(amount < share, BELOW_FEE, kind)
    kind = z3.If(amount == 0, ZERO, kind)
    return kind, share, amount - share, total - amount - (fee - share)


class BuildScenario:
    """One coin of ``coin`` sompi, an event of ``amount``, a fee, in the fee mode ``fee_mode``."""

    def __init__(self, fee_mode: str) -> None:
        self.fee_mode = fee_mode
        self.coin, self.amount, self.fee = z3.Ints("coin amount fee")
        self.kind, self.share, self.to_recipient, self.change = symbolic_build(self.amount, self.fee, fee_mode, self.coin)
        self.realistic = [self.coin >= 10**5, self.coin <= SUPPLY_BOUND, self.amount >= 1, self.amount <= SUPPLY_BOUND,
                          self.fee >= 0, self.fee <= SUPPLY_BOUND]
        self.keys = (self.coin, self.amount, self.fee)

    def split(self) -> bool:
        return parts_of(self.fee_mode) is not None

    def remainder(self) -> z3.ArithRef:
        """What the integer split drops: ``fee * rp % (rp + sp)`` (0 for the other modes)."""
        parts = parts_of(self.fee_mode)
        return z3.IntVal(0) if parts is None else (self.fee * parts[0]) % sum(parts)


def _pskt_edges(s: BuildScenario) -> dict[str, list]:
    built = s.kind == BUILT
    parts = parts_of(s.fee_mode) or (1, 2)
    return {
        "recipient-gets-nothing": [built, s.to_recipient == 0, s.fee > 0],
        "amount-one-below-fee-share": [s.kind == BELOW_FEE, s.amount + 1 == s.share],
        "exact-funds-no-change": [built, s.change == 0, s.fee > 0],
        "one-sompi-short": [s.kind == INSUFFICIENT, s.coin + 1 == s.amount + s.fee],
        "change-of-one": [built, s.change == 1],
        "split-all-to-recipient": [s.split() and parts[1] == 0, built, s.fee > 0],
        "split-all-to-signers": [s.split() and parts[0] == 0, built, s.fee > 0],
        "split-parts-at-u32-max": [s.split() and U32_MAX in parts and 0 not in parts, built, s.remainder() != 0],
        "split-share-past-2^53": [s.split(), built, s.share >= 2**53, s.remainder() != 0],
        "sums-near-the-bound": [built, s.amount + s.fee >= 2**62, s.change == 0],
    }


PSKT_EDGES = tuple(_pskt_edges(BuildScenario("recipient")))


def float_split_differs(fee: int, rp: int, sp: int) -> bool:
    """Whether a float split, rounded or truncated, gives another share than the integer one."""
    exact = fee * rp // (rp + sp)
    return round(fee * rp / (rp + sp)) != exact or int(fee * rp / (rp + sp)) != exact


def symbolic_window(expires_at: z3.ArithRef, now: z3.ArithRef) -> dict[str, z3.BoolRef]:
    """``models.threshold``'s three clocks over exact integers."""
    return {
        "acceptable": z3.And(now - SKEW_NS <= expires_at, expires_at <= now + MAX_LIFETIME_NS + SKEW_NS),
        "timed_out": now >= expires_at,
        "settles": expires_at + SKEW_NS <= now,
    }


def _window_edges(e: z3.ArithRef, now: z3.ArithRef) -> dict[str, list[z3.BoolRef]]:
    w = symbolic_window(e, now)
    edges = {}
    for name, clock, holds in (("window-late", "acceptable", True), ("window-early", "acceptable", True),
                               ("session-deadline", "timed_out", False), ("settlement", "settles", False)):
        for side, value in (("last", holds), ("first", not holds)):
            edges[f"{name}-{side}-{'in' if value else 'out'}"] = [w[clock] == value]
    # each pair: the last instant the answer is one way and the first it is the other
    edges["window-late-last-in"] += [z3.Not(symbolic_window(e, now + 1)["acceptable"]), now > e]
    edges["window-late-first-out"] += [symbolic_window(e, now - 1)["acceptable"], now > e]
    edges["window-early-last-in"] += [z3.Not(symbolic_window(e + 1, now)["acceptable"]), e > now]
    edges["window-early-first-out"] += [symbolic_window(e - 1, now)["acceptable"], e > now]
    edges["session-deadline-last-out"] += [symbolic_window(e, now + 1)["timed_out"]]
    edges["session-deadline-first-in"] += [z3.Not(symbolic_window(e, now - 1)["timed_out"])]
    edges["settlement-last-out"] += [symbolic_window(e, now + 1)["settles"]]
    edges["settlement-first-in"] += [z3.Not(symbolic_window(e, now - 1)["settles"])]
    return edges


WINDOW_EDGES = tuple(_window_edges(z3.Int("e"), z3.Int("now")))


def _answers(solver: z3.Solver, keys: tuple, count: int, accept=lambda values: True, tries: int = 20) -> list[dict]:
    """Up to ``count`` distinct models of ``solver`` (each differing in every key) that ``accept`` takes."""
    found: list[dict] = []
    for _ in range(tries):
        if len(found) >= count or solver.check() != z3.sat:
            break
        m = solver.model()
        values = {str(k): m.eval(k, model_completion=True).as_long() for k in keys}
        if accept(values):
            found.append(values)
        solver.add(z3.Or(*(k != values[str(k)] for k in keys)))
    return found


def search_pskt(edge: str, count: int = 3, timeout_ms: int = TIMEOUT_MS) -> list[dict]:
    """Concrete PSKT scenarios on ``edge``: coin, amount, fee, fee mode, one per fee mode that
    has one (trying ``FEE_MODES`` in order) until ``count``."""
    answers: list[dict] = []
    for fee_mode in FEE_MODES:
        if len(answers) >= count:
            break
        s = BuildScenario(fee_mode)
        solver = z3.Solver()
        solver.set("timeout", timeout_ms)
        solver.add(*s.realistic, *_pskt_edges(s)[edge])
        parts = parts_of(fee_mode)
        accept = (lambda v, parts=parts: float_split_differs(v["fee"], *parts)) if edge == "split-share-past-2^53" else (
            lambda v: True)
        # z3's answers are minimal (coins of 10^5, fees of 0): each answer is anchored on a
        # scale of its own, and falls back to no anchor when the edge has no answer there
        coin_anchor, fee_anchor = ANCHORS[len(answers) % len(ANCHORS)]
        solver.push()
        solver.add(s.coin >= coin_anchor, s.fee >= fee_anchor)
        found = _answers(solver, s.keys, 1, accept)
        solver.pop()
        for values in found or _answers(solver, s.keys, 1, accept):
            answers.append({"edge": edge, **values, "fee_mode": fee_mode})
    return answers


def search_window(edge: str, count: int = 2, timeout_ms: int = TIMEOUT_MS) -> list[dict]:
    """Concrete (expires_at, now) pairs on ``edge`` and the offset ``now - expires_at``."""
    e, now = z3.Int("e"), z3.Int("now")
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(now >= START_NS, now <= START_NS + 3650 * 86_400 * NS_PER_SECOND, e >= 0, e <= I64_MAX,
               *_window_edges(e, now)[edge])
    return [{"edge": edge, "expires_at": v["e"], "now": v["now"], "offset_ns": v["now"] - v["e"]}
            for v in _answers(solver, (e, now), count)]


def search_all(count: int = 3, timeout_ms: int = TIMEOUT_MS) -> dict[str, list[dict]]:
    return {
        "pskt": [a for edge in PSKT_EDGES for a in search_pskt(edge, count, timeout_ms)],
        "threshold": [a for edge in WINDOW_EDGES for a in search_window(edge, 2, timeout_ms)],
    }


def pskt_trace(answer: dict, index: int) -> Trace:
    """A 1-of-1 group holding the answer's one coin pays the answer's event, signed by its member."""
    steps = (
        Step("start", {"group": 0, "funds": [answer["coin"]], "min_fee": 0}),
        Step("pay", {"amount": answer["amount"], "fee": answer["fee"], "fee_mode": answer["fee_mode"], "round": 0,
                     "orders": [0], "signers": [[0, "genuine", None]], "tamper": "none"}),
    )
    return Trace("pskt", "ledger", steps, note=f"z3 edge {answer['edge']} #{index}")


def write_traces(directory: Path, answers: list[dict]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("pskt-z3-*.json"):
        old.unlink()
    paths, count = [], {}
    for answer in answers:
        index = count[answer["edge"]] = count.get(answer["edge"], -1) + 1
        path = directory / f"pskt-z3-{answer['edge'].replace('^', '-')}-{index}.json"
        path.write_text(pskt_trace(answer, index).to_json(), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m machines.spec_z3", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="FILE", help=f"write the answers as JSON (the machines read {OUT.name})")
    parser.add_argument("--traces", metavar="DIRECTORY", help="write one pskt trace per PSKT answer (pskt-z3-*.json)")
    parser.add_argument("--count", type=int, default=3, help="answers per PSKT edge (at most %(default)s)")
    parser.add_argument("--timeout-ms", type=int, default=TIMEOUT_MS, help="z3 timeout per query")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    answers = search_all(args.count, args.timeout_ms)
    elapsed = time.perf_counter() - started
    for area, found in answers.items():
        for answer in found:
            print(f"{area:<10} {answer}")
    edges = {*PSKT_EDGES, *WINDOW_EDGES}
    missing = sorted(edges - {a["edge"] for found in answers.values() for a in found})
    print(f"z3 search: {sum(map(len, answers.values()))} scenarios in {elapsed:.2f} s")
    if args.write:
        Path(args.write).write_text(json.dumps(answers, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.write}")
    if args.traces:
        for path in write_traces(Path(args.traces), answers["pskt"]):
            print(f"wrote {path}")
    if missing:
        print(f"no scenario found for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
