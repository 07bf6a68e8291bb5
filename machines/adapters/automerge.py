"""Adapter: Automerge 3 (JavaScript) in a Node.js child process, for the ``rga``, ``orset`` and ``lww`` machines.

``js/automerge.js`` holds the replicas: a collaborative string and a list of one-character
strings as sequences, a map as a set (tagged key present = element present) and one key of
a map as a register. Every replica starts from one shared base document; a delta is the
change of one local edit, the state is ``save()``.

Levels, and what the machines found (``tests/test_js_adapters.py`` pins each):

* text and list: ``convergent``. Automerge delivers changes causally: a change waits until
  every change it depends on (all earlier changes of its actor included) has arrived, so
  a replica holds back inserts the RGA model already shows.
* map as a set: ``add-wins``. A delete removes only the entries its replica had seen, so a
  concurrent add survives; but a change also waits for its actor's earlier changes, so a
  replica shows less than the model until they arrive: not ``exact``.
* map key as a register: ``convergent``: concurrent writes are arbitrated by (Lamport counter,
  actor), not by (timestamp, writer).
"""

from __future__ import annotations

from machines.adapters._js import register_js

AUTOMERGE_TEXT = register_js("rga", "automerge-text", "automerge.js", "text", "@automerge/automerge", "convergent",
                             "Automerge 3.5 text (a collaborative string) in Node.js, one change per edit")
AUTOMERGE_LIST = register_js("rga", "automerge-list", "automerge.js", "list", "@automerge/automerge", "convergent",
                             "Automerge 3.5 list of one-character strings in Node.js, one change per edit")
AUTOMERGE_MAP_SET = register_js("orset", "automerge-map", "automerge.js", "map-set", "@automerge/automerge", "add-wins",
                                "Automerge 3.5 map as a set in Node.js: key present = element present")
AUTOMERGE_MAP_REGISTER = register_js("lww", "automerge-map", "automerge.js", "map-register", "@automerge/automerge",
                                     "convergent", "Automerge 3.5 map key as a register in Node.js")
