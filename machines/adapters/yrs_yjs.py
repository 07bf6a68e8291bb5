"""Adapter: pycrdt (Yrs, Rust) and Yjs (JavaScript) replicas in one run, on the Yjs v1 update format.

Replica ``i`` of a run is a pycrdt replica in this process when ``i`` is even and a Yjs
replica in a Node.js child when ``i`` is odd; they exchange Yjs updates, and the machines
check them as usual (see ``machines/cross_language.py``). Level ``convergent``, as both parts.
"""

from __future__ import annotations

from harness import register
from machines.adapters.pycrdt_array import PYCRDT_ARRAY
from machines.adapters.pycrdt_map_register import PYCRDT_MAP_REGISTER
from machines.adapters.pycrdt_map_set import PYCRDT_MAP_SET
from machines.adapters.pycrdt_text import PYCRDT_TEXT
from machines.adapters.yjs import YJS_ARRAY, YJS_MAP_REGISTER, YJS_MAP_SET, YJS_TEXT
from machines.cross_language import mixed

YRS_YJS_TEXT = register(mixed("yrs-yjs-text", [PYCRDT_TEXT, YJS_TEXT], "pycrdt Text and Yjs Y.Text, alternating replicas"))
YRS_YJS_ARRAY = register(mixed("yrs-yjs-array", [PYCRDT_ARRAY, YJS_ARRAY], "pycrdt Array and Yjs Y.Array, alternating replicas"))
YRS_YJS_MAP_SET = register(mixed("yrs-yjs-map", [PYCRDT_MAP_SET, YJS_MAP_SET], "pycrdt Map and Yjs Y.Map as sets, alternating"))
YRS_YJS_MAP_REGISTER = register(mixed("yrs-yjs-map", [PYCRDT_MAP_REGISTER, YJS_MAP_REGISTER],
                                      "pycrdt Map and Yjs Y.Map keys as registers, alternating"))
