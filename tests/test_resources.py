"""Resources anyone can use up, and what leaks past them (issue 23, items 7 to 11): image
decodes shared fairly between visitors, request bodies capped and read within a deadline,
uploads limited per address, downloads pinned to the address they checked and limited in
total time, chains kept as their parts and one stitched copy, and vendor text redacted and
stripped of terminal escapes."""

from __future__ import annotations

import time

import pytest

from kling_ui.config import Settings
from kling_ui.service import GenerationService
from kling_ui.simulator import Fault

# Mixed case and nothing shaped like a key: only the redaction of this very key can hide it.
MIXED_KEY = "Kx7QmVw2PzR9LtB4"


def wait_for(predicate, seconds: float = 20.0, step: float = 0.02):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out waiting")


@pytest.fixture
def service(simulator, tmp_path):
    settings = Settings(
        base_url=simulator.url,
        api_key=MIXED_KEY,
        data_dir=tmp_path / "data",
        poll_interval=0.05,
        retry_backoff=0.0,
        retry_after_cap=0.01,
        lookup_window=1.0,
    )
    service = GenerationService(settings)
    yield service
    service.close()


# --- 11. the vendor's words, redacted and printable ------------------------------------------


def test_a_status_word_echoing_the_key_in_another_case_is_redacted(simulator, service, photo):
    simulator.script_poll(*[Fault.weird_status(MIXED_KEY.upper())] * 400)
    answer = service.submit(photo, "The sea ripples.")
    (item,) = answer["items"]
    job_id = item.get("job_id") or item.get("id")

    def noted():
        (job,) = [j for j in service.ledger.recent() if job_id in (j.job_id, j.generation_id)]
        return job.message if "status we don't know" in job.message else None

    message = wait_for(noted)
    assert MIXED_KEY.lower() not in message.lower()
    assert "[redacted]" in message
