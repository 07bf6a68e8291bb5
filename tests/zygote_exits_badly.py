"""Preloaded by a zygote in ``tests/test_transport_process.py``: the zygote's own exit status becomes 3
(an ``atexit`` handler; its forked children leave by ``os._exit``, which runs none)."""

import atexit
import os

atexit.register(os._exit, 3)
