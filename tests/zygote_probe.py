"""A program for ``tests/test_transport_process.py``: ``python -m tests.zygote_probe FILE CODE`` writes
what it was started as (its ``__name__``, arguments, working directory and ``MBT_ZYGOTE_PROBE``) to
FILE as JSON, then exits with CODE."""

import json
import os
import sys

if __name__ == "__main__":
    with open(sys.argv[1], "w") as out:
        json.dump({"name": __name__, "argv": sys.argv, "cwd": os.getcwd(), "probe": os.environ.get("MBT_ZYGOTE_PROBE")}, out)
    sys.exit(int(sys.argv[2]))
