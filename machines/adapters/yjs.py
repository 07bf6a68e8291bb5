"""Adapter: Yjs (JavaScript) in a Node.js child process, for the ``rga``, ``orset`` and ``lww`` machines.

``js/yjs.js`` holds the replicas: ``Y.Text`` and ``Y.Array`` as sequences, a ``Y.Map`` as a
set (tagged key present = element present) and one key of a ``Y.Map`` as a register. The
document layout, client ids and encodings are those of the pycrdt (Yrs) adapters, so the
two exchange updates in one run (``machines/cross_language.py``).

Levels, and what the machines found (``tests/test_js_adapters.py`` pins each):

* text and array: ``convergent``. YATA orders concurrent inserts its own way, and an
  insert waits for both neighbours it was made between, as in Yrs.
* map as a set: ``convergent``, not ``add-wins``: as in Yrs, a concurrent set of the same key
  by a higher client id overwrites the lower one's entry, so a remove that never observed
  that entry deletes it.
* map key as a register: ``convergent``: concurrent writes are arbitrated by client id, not
  by timestamp.
"""

from __future__ import annotations

from machines.adapters._js import register_js

YJS_TEXT = register_js("rga", "yjs-text", "yjs.js", "text", "yjs", "convergent",
                       "Yjs 13.6 Y.Text in Node.js, one transaction per edit, Yjs v1 updates")
YJS_ARRAY = register_js("rga", "yjs-array", "yjs.js", "array", "yjs", "convergent",
                        "Yjs 13.6 Y.Array of one-character strings in Node.js, Yjs v1 updates")
YJS_MAP_SET = register_js("orset", "yjs-map", "yjs.js", "map-set", "yjs", "convergent",
                          "Yjs 13.6 Y.Map as a set in Node.js: key present = element present")
YJS_MAP_REGISTER = register_js("lww", "yjs-map", "yjs.js", "map-register", "yjs", "convergent",
                               "Yjs 13.6 Y.Map key as a register in Node.js: Yjs arbitration of concurrent writes")
