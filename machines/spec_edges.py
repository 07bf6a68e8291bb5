"""The z3 answers of ``machines.spec_z3`` (``spec_edges.json``), as the machines draw them.

Regenerate with ``python -m machines.spec_z3 --write machines/spec_edges.json``;
``tests/test_spec_z3.py`` checks that every committed answer still sits on its edge.
"""

from __future__ import annotations

import json
from pathlib import Path

EDGES_FILE = Path(__file__).resolve().with_name("spec_edges.json")
_DATA = json.loads(EDGES_FILE.read_text(encoding="utf-8"))

#: Each PSKT scenario z3 found: ``edge``, ``coin``, ``amount``, ``fee``, ``fee_mode``.
PSKT = tuple(_DATA["pskt"])
#: Coins, amounts, fees and fee modes of those scenarios, each set sorted.
COINS = tuple(sorted({a["coin"] for a in PSKT}))
AMOUNTS = tuple(sorted({a["amount"] for a in PSKT}))
FEES = tuple(sorted({a["fee"] for a in PSKT}))
FEE_MODES = tuple(sorted({a["fee_mode"] for a in PSKT}))
#: Each time-window scenario: ``edge``, ``expires_at``, ``now`` and ``offset_ns = now - expires_at``.
WINDOWS = tuple(_DATA["threshold"])
#: Where, relative to a request's expiry, the threshold protocol's clocks change their answer.
WINDOW_OFFSETS = tuple(sorted({a["offset_ns"] for a in WINDOWS}))
