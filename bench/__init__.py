"""kling-ui's benchmarks (issue 5). Run them all with ``python bench/run.py [--quick]``.

Each ``bench_*`` module has ``run(quick: bool) -> dict`` returning
``{"name", "rows", "metrics", "notes"}``: ``rows`` are the lines of the results table,
``metrics`` the raw numbers (what the smoke test checks), ``notes`` how it was measured.
Benchmarks are not tests: nothing here asserts a target.

The tests' harness (``tests/apprunner.py``, ``tests/browsing.py``, ``tests/pg.py``) imports
its own modules by their plain names, as pytest's ``pythonpath`` ("tests") allows. Importing
``bench`` puts that folder on the path the same way, and the benchmarks import the harness by
the same plain names, so it imports alike under pytest and from ``python bench/run.py`` in a
fresh clone (``tests.browsing`` once failed there on its own ``import apprunner``).
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
