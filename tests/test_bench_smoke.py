"""The benchmarks in ``bench/`` in their quick smoke mode, so they never rot.

Benchmarks are not tests: these check that each one runs and returns positive numbers under
the expected keys, never that a target is met. The browser one needs Chromium: without it
it skips, except on CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EXPECTED = {
    "bench_images": ["ours_median_s", "baseline_median_s", "ratio", "body_bytes"],
    "bench_playback": [
        "median_s",
        "p95_s",
        "vendor_median_s",
        "vendor_p95_s",
        "polls_per_job_second",
        "mean_poll_interval_s",
    ],
    "bench_users": [
        "one_s",
        "many_s",
        "ratio",
        "peak_rss_bytes",
        "defaults_one_s",
        "defaults_many_s",
        "defaults_peak_rss_bytes",
    ],
    "bench_download": [
        "ours_seconds",
        "plain_seconds",
        "throughput_ratio",
        "ours_growth_bytes",
        "plain_growth_bytes",
    ],
    "bench_startup": ["app_median_s", "minimal_median_s", "ratio"],
}
ROW_KEYS = {"benchmark", "ours", "baseline", "ratio", "target", "met"}


@pytest.mark.parametrize("module_name", list(EXPECTED))
def test_quick_run_returns_positive_numbers(module_name: str) -> None:
    module = importlib.import_module(f"bench.{module_name}")
    if module_name == "bench_playback":
        reason = module.available()
        if reason:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"the browser benchmark must run on CI: {reason}", pytrace=False)
            pytest.skip(f"the browser benchmark needs Playwright and Chromium: {reason}")

    result = module.run(quick=True)

    assert isinstance(result["name"], str) and result["name"]
    assert result["rows"] and all(set(r) >= ROW_KEYS for r in result["rows"])
    assert result["notes"] and all(isinstance(n, str) for n in result["notes"])
    metrics = result["metrics"]
    for key in EXPECTED[module_name]:
        value = metrics[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)


def test_run_py_prints_the_table_and_machine(capsys) -> None:
    from bench import run

    assert run.main(["--quick", "--only", "download"]) == 0
    out = capsys.readouterr().out
    assert "| benchmark | ours (median) |" in out
    assert "4. Download" in out
    assert "Python " in out and "Gradio " in out and "cores" in out
