"""z3 edges of the volume policy: a symbolic twin of ``models.policy.check`` and a search.

``symbolic_check`` is ``models.policy.check`` over 64-bit bit-vectors (amounts are u64
sompi, time is u64 nanoseconds). It returns the *kind* of the decision as a z3 integer
(``KINDS``); ``tests/test_policy_twin.py`` checks that it and the model agree on random
concrete inputs, so the two cannot drift.

``search`` asks z3 for concrete scenarios that random generation almost never hits, one
kind of edge at a time (``EDGES``). A scenario is: load a policy at time ``t0``, submit
request r0 of ``a1``, advance the clock by ``d``, submit r1 of ``a2``. The twin predicts both
decisions; each edge constrains the second (the limit reached exactly, one sompi over, the
last nanosecond of a day and the first of the next, amounts at and beyond the bounds, sums
that overflow 64 bits, ``min == max``). z3's answers are minimal by default (limits of 3,
times in 1970), so every query carries realistic bounds (times from 2026 on, amounts of at
least 0.001 KAS) and, per answer, an anchor on the scale of the limit; blocking clauses
keep the answers of one edge distinct. Each query has a timeout.

Each answer becomes a trace of the policy machine that ends with a restart and the
expiry of r0, so the machine replays the edge forever::

    python -m machines.policy_z3 --write regressions/traces
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import attrs
import z3

from harness import Step, Trace
from models.clock import NS_PER_DAY

U64_MAX = 2**64 - 1
BITS = 64
KINDS = ("approved", "destination", "below_minimum", "above_maximum", "reason", "volume")
APPROVED, DESTINATION, BELOW, ABOVE, REASON, VOLUME = range(len(KINDS))
TIMEOUT_MS = 5_000
START_2026 = 20_454 * NS_PER_DAY  # 2026-01-01T00:00:00Z
LIMIT_ANCHORS = (10**8, 10**10, 10**12)  # 1, 100, 10,000 KAS
DESTINATION_NAME = "kaspa:qpay1"
REASON_TEXT = "bridge payout"


def u64(name: str) -> z3.BitVecRef:
    return z3.BitVec(name, BITS)


@attrs.frozen
class SymbolicPolicy:
    min_amount: z3.BitVecRef
    max_amount: z3.BitVecRef
    max_daily_volume: z3.BitVecRef
    require_reason: z3.BoolRef
    has_allowlist: z3.BoolRef


def exceeds(current: z3.BitVecRef, amount: z3.BitVecRef, limit: z3.BitVecRef) -> z3.BoolRef:
    """``current + amount > limit`` over exact integers: a sum that wraps 64 bits exceeds every limit."""
    return z3.Or(z3.Not(z3.BVAddNoOverflow(current, amount, False)), z3.UGT(current + amount, limit))


def symbolic_check(p: SymbolicPolicy, listed: z3.BoolRef, amount, has_reason: z3.BoolRef, current) -> z3.ArithRef:
    """The kind of ``models.policy.check``'s answer: the first rule that fails, in the model's
    order (built from the last rule up, so an earlier rule overrides a later one)."""
    kind = z3.IntVal(APPROVED)
    kind = z3.If(exceeds(current, amount, p.max_daily_volume), VOLUME, kind)
    kind = z3.If(z3.And(p.require_reason, z3.Not(has_reason)), REASON, kind)
    kind = z3.If(z3.UGT(amount, p.max_amount), ABOVE, kind)
    kind = z3.If(z3.ULT(amount, p.min_amount), BELOW, kind)
    kind = z3.If(z3.And(p.has_allowlist, z3.Not(listed)), DESTINATION, kind)
    return kind


def kind_of(refusal: str | None) -> str:
    """The kind (``KINDS``) of a refusal message of ``models.policy.check`` (None: approved)."""
    if refusal is None:
        return "approved"
    for prefix, kind in (
        ("destination not allowed: ", "destination"),
        ("reason metadata required", "reason"),
        ("daily volume exceeded: ", "volume"),
    ):
        if refusal.startswith(prefix):
            return kind
    return "below_minimum" if " below minimum " in refusal else "above_maximum"


def day(t: z3.BitVecRef) -> z3.BitVecRef:
    return z3.UDiv(t, NS_PER_DAY)


class Scenario:
    """The symbolic two-request scenario every edge constrains."""

    def __init__(self) -> None:
        self.policy = SymbolicPolicy(u64("min"), u64("max"), u64("limit"), z3.Bool("require_reason"), z3.BoolVal(False))
        self.t0, self.d, self.a1, self.a2 = u64("t0"), u64("d"), u64("a1"), u64("a2")
        self.t1 = self.t0 + self.d
        yes = z3.BoolVal(True)
        self.first = symbolic_check(self.policy, yes, self.a1, yes, z3.BitVecVal(0, BITS))
        self.same_day = day(self.t1) == day(self.t0)
        self.current = z3.If(z3.And(self.first == APPROVED, self.same_day), self.a1, z3.BitVecVal(0, BITS))
        self.second = symbolic_check(self.policy, yes, self.a2, yes, self.current)
        p = self.policy
        self.realistic = [
            z3.ULE(p.min_amount, p.max_amount),
            z3.UGE(self.t0, START_2026),
            z3.ULE(self.t0, START_2026 + 3650 * NS_PER_DAY),
            z3.ULE(self.d, 3 * NS_PER_DAY),
            z3.UGE(self.a1, 10**5),
            z3.UGE(self.a2, 10**5),
        ]
        self.keys = (p.min_amount, p.max_amount, p.max_daily_volume, self.a1, self.a2, self.t0, self.d)

    def small(self) -> list[z3.BoolRef]:
        """Amounts of a real bridge: at most 10^15 sompi (10 million KAS)."""
        return [z3.ULE(x, 10**15) for x in (self.policy.max_amount, self.policy.max_daily_volume, self.a1, self.a2)]


def _edges(s: Scenario) -> dict[str, list[z3.BoolRef]]:
    p, DAY = s.policy, NS_PER_DAY
    approved_first = s.first == APPROVED
    return {
        "limit-exact": [*s.small(), approved_first, s.same_day, s.a1 + s.a2 == p.max_daily_volume, s.second == APPROVED],
        "limit-plus-one": [*s.small(), approved_first, s.same_day, s.a1 + s.a2 == p.max_daily_volume + 1, s.second == VOLUME],
        "last-ns-of-day": [*s.small(), approved_first, z3.URem(s.t1, DAY) == DAY - 1, s.same_day, s.d > 0,
                           z3.ULE(s.a2, p.max_daily_volume), s.second == VOLUME],
        "first-ns-of-next-day": [*s.small(), approved_first, z3.URem(s.t1, DAY) == 0, day(s.t1) == day(s.t0) + 1,
                                 z3.UGT(s.a1 + s.a2, p.max_daily_volume), s.second == APPROVED],
        "amount-at-min": [*s.small(), s.a2 == p.min_amount, p.min_amount < p.max_amount, s.second == APPROVED],
        "amount-below-min": [*s.small(), s.a2 + 1 == p.min_amount, s.second == BELOW],
        "amount-at-max": [*s.small(), s.a2 == p.max_amount, p.min_amount < p.max_amount, s.second == APPROVED],
        "amount-above-max": [*s.small(), s.a2 == p.max_amount + 1, s.second == ABOVE],
        "sum-overflows-u64": [approved_first, s.same_day, z3.Not(z3.BVAddNoOverflow(s.a1, s.a2, False)),
                              z3.UGE(p.max_daily_volume, 2**63), s.second == VOLUME],
        "min-equals-max": [*s.small(), p.min_amount == p.max_amount, s.a2 == p.max_amount, s.second == APPROVED],
    }  # fmt: skip


EDGES = tuple(_edges(Scenario()))


@attrs.frozen
class Answer:
    edge: str
    values: dict[str, int]
    first: str
    second: str

    def trace(self, index: int) -> Trace:
        v = self.values
        policy = {
            "allowed_destinations": [],
            "min_amount": v["min"],
            "max_amount": v["max"],
            "max_daily_volume": v["limit"],
            "require_reason": bool(v["require_reason"]),
        }
        t1 = v["t0"] + v["d"]
        submit = {"destination": DESTINATION_NAME, "reason": REASON_TEXT}
        steps = (
            Step("start", {"policy": policy, "now_ns": v["t0"]}),
            Step("submit", {"request_id": "r0", **submit, "amount": v["a1"], "sender_ts": v["t0"]}),
            Step("advance", {"ns": v["d"]}),
            Step("submit", {"request_id": "r1", **submit, "amount": v["a2"], "sender_ts": t1}),
            Step("restart", {"policy": policy}),
            Step("release", {"request_id": "r0", "why": "expired"}),
        )
        note = f"z3 edge {self.edge} #{index}: r0 {self.first}, r1 {self.second}"
        return Trace("policy", "sqlite", steps, note=note)


def search(edge: str, count: int = 3, timeout_ms: int = TIMEOUT_MS) -> list[Answer]:
    """Up to ``count`` distinct concrete scenarios of ``edge`` (fewer if z3 finds no more in time)."""
    s = Scenario()
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(*s.realistic, *_edges(s)[edge])
    answers: list[Answer] = []
    for index, anchor in enumerate(LIMIT_ANCHORS[:count]):
        solver.push()
        solver.add(z3.UGE(s.policy.max_daily_volume, anchor), s.policy.require_reason == (index % 2 == 1))
        found = solver.check() == z3.sat
        if found:
            m = solver.model()
            values = {str(k): m.eval(k, model_completion=True).as_long() for k in s.keys}
            values["require_reason"] = int(z3.is_true(m.eval(s.policy.require_reason, model_completion=True)))
            kinds = (KINDS[m.eval(s.first).as_long()], KINDS[m.eval(s.second).as_long()])
        solver.pop()
        if not found:
            continue
        answers.append(Answer(edge, values, *kinds))
        # blocking clause: the next answer differs in every amount and in the time
        solver.add(z3.And(*(k != values[str(k)] for k in (s.a1, s.a2, s.policy.max_daily_volume, s.t0))))
    return answers


def search_all(count: int = 3, timeout_ms: int = TIMEOUT_MS) -> dict[str, list[Answer]]:
    return {edge: search(edge, count, timeout_ms) for edge in EDGES}


def write_traces(directory: Path, answers: dict[str, list[Answer]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("policy-z3-*.json"):
        old.unlink()
    paths = []
    for edge, found in answers.items():
        for index, answer in enumerate(found):
            path = directory / f"policy-z3-{edge}-{index}.json"
            path.write_text(answer.trace(index).to_json(), encoding="utf-8")
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m machines.policy_z3", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="DIRECTORY", help="write one trace per answer (policy-z3-*.json)")
    parser.add_argument("--count", type=int, default=3, help="answers per edge (at most %(default)s)")
    parser.add_argument("--timeout-ms", type=int, default=TIMEOUT_MS, help="z3 timeout per query")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    answers = search_all(args.count, args.timeout_ms)
    elapsed = time.perf_counter() - started
    for edge, found in answers.items():
        print(f"{edge:<22} {len(found)} answer(s)" + "".join(f"\n    {a.values}" for a in found))
    print(f"z3 search: {sum(map(len, answers.values()))} scenarios in {elapsed:.2f} s")
    missing = [edge for edge, found in answers.items() if not found]
    if args.write:
        for path in write_traces(Path(args.write), answers):
            print(f"wrote {path}")
    if missing:
        print(f"no scenario found for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
