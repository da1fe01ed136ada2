"""The job lifecycle: status parsing and the polling generator, on a fake clock.

The simulator and the watcher share one fake clock (conftest's ``clock``), so a ten-minute
job runs in milliseconds and no test sleeps.
"""

from __future__ import annotations

import pytest

from kling_ui import errors
from kling_ui.client import AIMLClient, GenerationRequest
from kling_ui.config import MODEL, Settings
from kling_ui.jobs import parse_generation, submit_generation, watch_generation
from kling_ui.simulator import DownloadFault, Fault, Schedule, Simulator

KEY = "sk-jobs-test-key"
IMAGE = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcG"


@pytest.fixture
def sim(clock):
    with Simulator(schedule=Schedule(queued_s=10, generating_s=60), clock=clock) as sim:
        yield sim


@pytest.fixture
def client(sim) -> AIMLClient:
    settings = Settings(base_url=sim.url, retry_after_cap=0.01, retry_backoff=0.0, poll_retries=2)
    return AIMLClient(KEY, settings)


def submit(client: AIMLClient) -> str:
    request = GenerationRequest(image_url=IMAGE, prompt="A slow dolly zoom on a lighthouse.")
    return submit_generation(client, request).generation_id


def watch(client, gid, clock, **kwargs):
    kwargs.setdefault("poll_interval", 2.0)
    return list(watch_generation(client, gid, clock=clock, sleep=clock.sleep, **kwargs))


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


def test_job_goes_queued_generating_completed_in_order(sim, client, clock, tmp_path):
    gid = submit(client)
    updates = watch(client, gid, clock, download_to=tmp_path / "v.mp4")
    phases = [u.phase for u in updates]
    assert phases[0] == "queued"
    assert "generating" in phases
    assert phases.index("queued") < phases.index("generating") < phases.index("downloading")
    assert phases[-1] == "completed"
    final = updates[-1]
    assert final.video_path == tmp_path / "v.mp4" and final.video_path.exists()
    assert final.queued_for == pytest.approx(10, abs=2.1)
    assert final.generating_for == pytest.approx(60, abs=2.1)
    assert final.credits is not None
    assert final.generation_id == gid


def test_watch_polls_about_every_two_seconds(sim, client, clock):
    gid = submit(client)
    updates = watch(client, gid, clock)
    assert updates[-1].phase == "completed"
    # 70 s of job, one poll each 2 s: noticed within one interval, no hammering.
    assert 34 <= sim.polls <= 37
    assert all(s <= 2.0 for s in clock.sleeps)


def test_elapsed_counts_from_the_jobs_creation_after_a_resume(sim, client, clock):
    gid = submit(client)
    created = clock.now
    clock.now += 30
    updates = watch(client, gid, clock, started_at=created)
    assert updates[0].elapsed == pytest.approx(30, abs=0.5)
    assert updates[0].phase == "generating"


def test_vendor_error_fails_the_job_with_its_message(sim, client, clock):
    sim.script_outcome("error")
    gid = submit(client)
    final = watch(client, gid, clock)[-1]
    assert final.phase == "failed"
    assert isinstance(final.error, errors.GenerationFailed)
    assert "not charged" in final.message
    assert "moderation" in final.message.lower()
    assert not final.resumable


def test_soft_deadline_stops_watching_without_failing_the_job(sim, client, clock):
    sim.script_outcome("never")
    gid = submit(client)
    updates = watch(client, gid, clock, deadline=120)
    final = updates[-1]
    assert final.phase == "stopped"
    assert isinstance(final.error, errors.GenerationTimeout)
    assert "may still finish" in final.message
    assert final.resumable
    assert all(u.phase != "failed" for u in updates)
    assert 118 <= clock.now - 1_000_000.0 <= 124


def test_unknown_status_keeps_watching_and_says_so(sim, client, clock):
    gid = submit(client)
    sim.script_poll(Fault.weird_status("paused"))
    updates = watch(client, gid, clock)
    assert updates[0].phase == "unknown" and "'paused'" in updates[0].message
    assert updates[-1].phase == "completed"


def test_transient_poll_failures_keep_watching(sim, client, clock):
    gid = submit(client)
    sim.script_poll(*[Fault.status(503)] * 3, Fault.non_json())
    updates = watch(client, gid, clock)
    retrying = [u for u in updates if u.phase == "retrying"]
    assert len(retrying) == 2  # the 503 burst outlasts the retries once, then the bad body
    assert all("Still watching" in u.message for u in retrying)
    assert updates[-1].phase == "completed"


@pytest.mark.parametrize(
    "fault, error_type",
    [
        (Fault.status(401), errors.AuthenticationError),
        (Fault.status(403), errors.OutOfCreditsError),
    ],
)
def test_permanent_poll_error_ends_the_watch_but_stays_resumable(
    sim, client, clock, fault, error_type
):
    gid = submit(client)
    sim.script_poll(fault)
    (final,) = watch(client, gid, clock)
    assert final.phase == "failed" and isinstance(final.error, error_type)
    assert final.resumable


def test_unknown_id_is_not_resumable(sim, client, clock):
    (final,) = watch(client, "11111111-2222-3333-4444-555555555555:" + MODEL, clock)
    assert isinstance(final.error, errors.NotFoundError)
    assert not final.resumable


def test_failed_download_is_reported_and_resumable(sim, client, clock, tmp_path):
    gid = submit(client)
    sim.script_download(DownloadFault.status(404))
    final = watch(client, gid, clock, download_to=tmp_path / "v.mp4")[-1]
    assert final.phase == "failed" and isinstance(final.error, errors.DownloadError)
    assert final.resumable
    assert final.video_url


def test_without_download_the_video_url_is_handed_over(sim, client, clock):
    gid = submit(client)
    final = watch(client, gid, clock)[-1]
    assert final.phase == "completed" and final.video_url.startswith(sim.url)
    assert final.video_path is None
