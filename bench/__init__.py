"""kling-ui's benchmarks (issue 5). Run them all with ``python bench/run.py [--quick]``.

Each ``bench_*`` module has ``run(quick: bool) -> dict`` returning
``{"name", "rows", "metrics", "notes"}``: ``rows`` are the lines of the results table,
``metrics`` the raw numbers (what the smoke test checks), ``notes`` how it was measured.
Benchmarks are not tests: nothing here asserts a target.
"""
