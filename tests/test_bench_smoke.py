"""The benchmarks in ``bench/`` in their quick smoke mode, so they never rot: each run as
the README gives it, ``python bench/run.py --quick``, from the repository's root in a child
process with a clean environment.

Benchmarks are not tests: these check that each one runs and returns positive numbers under
the expected keys, never that a target is met. The browser ones need Chromium: without it
it skips, except on CI (``CI=true``), where it fails. The playback benchmark's quick run
plays the repository's sample clip, so its full run's test clip (``make_clip``) is checked
on its own: it must come from what ``requirements-dev.txt`` installs, not an ``ffmpeg``
program a fresh machine lacks.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bench import run as run_py

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300
pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]

EXPECTED = {
    "bench_images": [
        "ours_median_s",
        "baseline_median_s",
        "ratio",
        "body_bytes",
        "memory_worst_peak_rss_bytes",
        "memory_idle_rss_bytes",
    ],
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
        "capped_many_s",
        "capped_floor_s",
    ],
    "bench_download": [
        "ours_seconds",
        "plain_seconds",
        "throughput_ratio",
        "ours_growth_bytes",
        "plain_growth_bytes",
    ],
    "bench_startup": ["app_median_s", "minimal_median_s", "ratio"],
    "bench_runner": [
        "threads_peak",
        "baseline_threads_peak",
        "rss_growth_bytes",
        "poll_spacing_median_s",
        "done_median_s",
        "done_p95_s",
        "baseline_done_median_s",
        "long_polls_per_job",
        "long_fixed_polls_per_job",
        "long_polls_ratio",
        "long_done_median_s",
    ],
    "bench_flood": [
        "flood_s",
        "resume_median_s",
        "resume_max_s",
        "idle_resume_median_s",
        "threads_before",
        "threads_peak",
        "threads_after",
        "jobs_made",
        "refused",
        "baseline_resume_median_s",
        "baseline_resume_max_s",
        "baseline_threads_peak",
        "baseline_jobs_made",
    ],
    "bench_stitch": [
        "copy_median_s",
        "copy_growth_bytes",
        "encode_s",
        "encode_growth_bytes",
        "parts_bytes",
        "length_s",
    ],
    "bench_replicas": [
        "one_wall_s",
        "three_wall_s",
        "one_peak_rss_bytes",
        "three_peak_rss_bytes_max",
    ],
    "bench_models": [
        "cold_median_s",
        "warm_median_s",
        "second_read_median_s",
        "plain_gets_median_s",
        "snapshot_read_median_s",
    ],
    "bench_form_switch": ["switch_median_s", "switch_p95_s", "round_trip_median_s"],
    "bench_export": [
        "board_median_s",
        "board_growth_bytes",
        "decode_median_s",
        "decode_growth_bytes",
        "long_board_growth_bytes",
        "gif_s",
        "webm_s",
    ],
}
BROWSER = ("bench_playback", "bench_form_switch")  # need Playwright and Chromium
ROW_KEYS = {"benchmark", "ours", "baseline", "ratio", "target", "met"}


def clean_env() -> dict[str, str]:
    """This process's environment as a fresh shell has it: no PYTHONPATH, none of the app's
    settings, no coverage hooks. (pytest's ``pythonpath`` is set in this process only: run
    in here, ``tests/browsing.py``'s ``import apprunner`` passed, and from a fresh clone it
    failed.)"""
    return {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("AIMLAPI_", "KLING_UI_", "COV_CORE_"))
    }


@pytest.mark.parametrize("module_name", list(EXPECTED))
def test_quick_run_from_the_repo_root_returns_positive_numbers(
    module_name: str, tmp_path, short_tmp
) -> None:
    """Each benchmark as the README gives the command, ``python bench/run.py --quick``, in a
    child process from the repository's root: not imported into pytest, whose path setting
    hides an import that only works here."""
    module = importlib.import_module(f"bench.{module_name}")
    if module_name in BROWSER:
        reason = module.available()
        if reason:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"the browser benchmark must run on CI: {reason}", pytrace=False)
            pytest.skip(f"the browser benchmark needs Playwright and Chromium: {reason}")
    key = next(k for k, name in run_py.BENCHMARKS.items() if name == module_name)
    numbers = tmp_path / "results.json"

    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", key, "--json", str(numbers)],
        cwd=ROOT,
        # Its own temporary folder: the benchmarks cache inputs under fixed names there.
        env={**clean_env(), "TMPDIR": str(short_tmp)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT - 10,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "did not run" not in done.stdout and "Traceback" not in done.stderr
    (result,) = json.loads(numbers.read_text())["benchmarks"]
    assert isinstance(result["name"], str) and result["name"]
    assert result["rows"] and all(set(r) >= ROW_KEYS for r in result["rows"])
    assert result["notes"] and all(isinstance(n, str) for n in result["notes"])
    metrics = result["metrics"]
    for name in EXPECTED[module_name]:
        value = metrics[name]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (name, value)
        assert math.isfinite(value), (name, value)
        # A growth is a difference of two readings: near nothing, it can come out below zero.
        assert value > 0 or name.endswith("growth_bytes"), (name, value)


def test_run_py_prints_the_table_and_machine(capsys) -> None:
    assert run_py.main(["--quick", "--only", "download"]) == 0
    out = capsys.readouterr().out
    assert "| benchmark | ours (median) |" in out
    assert "4. Download" in out
    assert "Python " in out and "Gradio " in out and "cores" in out


def top_level_boxes(data: bytes) -> list[str]:
    """The types of an MP4's top-level boxes, in file order."""
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
        elif size == 0:
            size = len(data) - pos
        assert size >= 8, (pos, size)
        boxes.append(kind.decode("latin-1"))
        pos += size
    assert pos == len(data), "a box runs past the end of the file"
    return boxes


def test_make_clip_writes_a_faststart_h264_aac_mp4(tmp_path, monkeypatch) -> None:
    from bench import _common

    monkeypatch.setattr(_common, "CACHE", tmp_path / "cache")
    target_mb, seconds = 0.3, 2

    path = _common.make_clip(target_mb, seconds)

    assert path.parent == tmp_path / "cache" and path.suffix == ".mp4"
    assert list(path.parent.iterdir()) == [path], "a temporary file was left behind"
    size = path.stat().st_size
    assert 0.8 < size / (target_mb * 1024**2) < 1.2, size
    boxes = top_level_boxes(path.read_bytes())
    assert boxes[0] == "ftyp", boxes
    assert "moov" in boxes and "mdat" in boxes, boxes
    assert boxes.index("moov") < boxes.index("mdat"), f"not faststart: {boxes}"

    import av

    with av.open(str(path)) as container:
        (video,) = container.streams.video
        (audio,) = container.streams.audio
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert audio.codec_context.name == "aac"
        assert container.duration / 1e6 == pytest.approx(seconds, abs=0.1)
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (video.width, video.height) and frame.width > 0
        container.seek(0)
        assert next(container.decode(audio=0)).samples > 0

    mtime = path.stat().st_mtime_ns
    assert _common.make_clip(target_mb, seconds) == path
    assert path.stat().st_mtime_ns == mtime, "the cached clip was made again"
