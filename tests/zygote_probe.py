"""A program for ``tests/test_transport_process.py``: ``python -m tests.zygote_probe FILE CODE`` writes
what it was started as (its ``__name__``, arguments, working directory and ``MBT_ZYGOTE_PROBE``) and
its first draws of ``random`` and of trio's scheduler (``None`` when trio is not imported) to FILE as
JSON, then exits with CODE."""

import json
import os
import random
import sys

if __name__ == "__main__":
    scheduler = sys.modules.get("trio._core._run")
    draws = {"random": random.getrandbits(64), "trio": scheduler._r.getrandbits(64) if scheduler else None}
    with open(sys.argv[1], "w") as out:
        json.dump({"name": __name__, "argv": sys.argv, "cwd": os.getcwd(), "probe": os.environ.get("MBT_ZYGOTE_PROBE"),
                   "draws": draws}, out)
    sys.exit(int(sys.argv[2]))
