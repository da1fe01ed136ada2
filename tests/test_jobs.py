"""The vendor's job shape, parsed: every status, usage figure and error, and any junk.

The polling that used these lives in the runner (tests/test_service.py, test_runner.py)."""

from __future__ import annotations

import pytest

from kling_ui.jobs import parse_generation

# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, phase",
    [
        ({"id": "a", "status": "queued"}, "queued"),
        ({"id": "a", "status": "waiting"}, "queued"),
        ({"id": "a", "status": "generating"}, "generating"),
        ({"id": "a", "status": "active"}, "generating"),
        ({"id": "a", "status": "COMPLETED", "video": {"url": "https://cdn/x.mp4"}}, "completed"),
        ({"id": "a", "status": "completed", "video": None}, "unknown"),
        ({"id": "a", "status": "error", "error": {"name": "X", "message": "m"}}, "failed"),
        ({"id": "a", "status": "paused"}, "unknown"),
        ({"id": "a"}, "unknown"),
        ({"status": 7}, "unknown"),
        ([], "unknown"),
        (None, "unknown"),
        ("completed", "unknown"),
    ],
)
def test_parse_generation_maps_vendor_status_to_phase(payload, phase):
    assert parse_generation(payload, "fallback").phase == phase


@pytest.mark.parametrize(
    "meta, credits",
    [
        ({"usage": {"credits_used": 42}}, 42.0),
        ({"usage": {"tokens_used": 7.5}}, 7.5),
        ({"usage": {"credits_used": "lots"}}, None),
        ({"usage": None}, None),
        (None, None),
    ],
)
def test_parse_generation_reads_either_usage_figure(meta, credits):
    assert parse_generation({"id": "a", "status": "queued", "meta": meta}).credits == credits


def test_parse_generation_keeps_the_vendor_error_text():
    job = parse_generation(
        {"id": "a", "status": "error", "error": {"name": "Moderation", "message": "flagged"}}
    )
    assert (job.error_name, job.error_message) == ("Moderation", "flagged")


# --- the watcher ----------------------------------------------------------------------------
