"""The bug catalogue (``catalogue.py``), its sweeps (``sweep.py``) and benchmark (``benchmark.py``).

Test code by Hypothesis's rule (it lives under ``tests/``), so loading it never changes the
constants Hypothesis mines from the project's modules: see ``catalogue``'s docstring.
"""
