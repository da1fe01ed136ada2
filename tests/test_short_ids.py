"""Issue 23 item 17: one short id per job (``Job.short_id``, or the first 8 characters of
the vendor's id), accepted wherever an id is: the page's Resume in a browser whose history
doesn't hold the job yet, and the API's ``/status`` and ``/resume``; never for a job the
caller may not see. (The service's own rules: test_service; agents: test_mcp.)"""

from __future__ import annotations

import pytest
from apprunner import generate, user_client
from test_ui import Tab

from kling_ui.ui import Handlers

pytestmark = pytest.mark.timeout(180)


def test_the_pages_resume_takes_a_short_id_with_an_empty_history(live_app, photo):
    handlers = Handlers(live_app.service)
    tab = Tab(handlers)
    gid = list(tab.generate(photo, "Waves.", "", 5, True, ""))[-1][0]
    job = live_app.service.entry(gid)
    for short in (job.short_id, gid[:8]):
        typed = handlers.expand_id(short, [])  # nothing in this browser's history yet
        *_, last = list(tab.resume(typed))
        assert last[0] == gid and last[1].startswith("Status: completed"), last[1]
    # Another browser: a short id opens nothing (the whole id is the secret).
    *_, other = list(Tab(handlers).resume(job.short_id))
    assert other[0] == "" and other[1].startswith("Status: not resumed")


def test_the_api_takes_a_short_id_from_the_same_caller(live_app, photo):
    client = user_client(live_app.url, 41)
    gid = generate(client, photo)[-1][0]
    job = live_app.service.entry(gid)
    for short in (job.short_id, gid[:8]):
        assert client.predict(short, "", api_name="/status")["generation_id"] == gid
        out = client.predict(generation_id=short, api_key="", api_name="/resume")
        assert out[0] == gid and out[1].startswith("Status: completed")
    stranger = user_client(live_app.url, 42)
    assert "error" in stranger.predict(job.short_id, "", api_name="/status")
