"""The registration line of the user's JavaScript OR-Set (``examples/node_orset.mjs``).

That program and this line are all a user writes to check an implementation in another
language; ``tests/test_process_guide.py`` runs it, as the README's adapter guide shows.
"""

from pathlib import Path

from harness import register
from harness.process import process_implementation

NODE_ORSET = register(process_implementation("orset", "node-orset", ["node", "node_orset.mjs"], cwd=Path(__file__).parent))
