"""``python -m benchmarks``: every benchmark and one Markdown report (see ``benchmarks/run_all.py``)."""

from benchmarks.run_all import main

raise SystemExit(main())
