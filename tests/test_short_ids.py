"""Issue 23 item 17: one short id per job (``Job.short_id``, or the first 8 characters of
the vendor's id), accepted wherever an id is: the page's Resume in a browser whose history
doesn't hold the job yet, and the API's ``/status`` and ``/resume``; never for a job the
caller may not see. (The service's own rules: test_service; agents: test_mcp.) A short id is
looked up in the ids' indexes, so a miss costs no scan of the ledger."""

from __future__ import annotations

import sqlite3

import pytest
from apprunner import generate, user_client
from test_ui import Tab

from kling_ui.history import Job, Ledger
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


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path):
    """A fresh ledger's database: a SQLite file, or a database of the throwaway cluster."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return tmp_path / "l.sqlite3"


def adopted(ledger: Ledger, generation_id: str, job_id: str | None = None) -> Job:
    return ledger.add(None, backend="live", state="submitted", job_id=job_id,
                      generation_id=generation_id)  # fmt: skip


def test_a_short_id_finds_its_one_job_by_either_id_and_nothing_else(where):
    ledger = Ledger(where)
    job = adopted(ledger, "vendor-abcdefgh-1", job_id="kui-0123456789ab")
    twins = [adopted(ledger, gid) for gid in ("ZZZZZZZZ-1", "ZZZZZZZZ:2", "ZZZZZZZZ-")]
    assert ledger.find_short("01234567") == job  # ours, without "kui-"
    assert ledger.find_short("kui-01234567") == job
    assert ledger.find_short("vendor-a") == job  # the vendor's first characters
    assert ledger.find_short("ZZZZZZZZ") is None  # three start so: none is the one
    assert ledger.find_short("ZZZZZZZZ:") == twins[1] and ledger.find_short("ZZZZZZZZ-1")
    assert ledger.find_short("ZZZZZZZZ-") is None  # "ZZZZZZZZ-" and "ZZZZZZZZ-1"
    assert ledger.find_short("01234568") is None and ledger.find_short("vendor-b") is None
    assert ledger.find_short("0123456") is None  # fewer than 8: nothing


class QueryLog:
    """The ledger's database, with every query it is asked noted (and then run)."""

    def __init__(self, db) -> None:
        self.db, self.queries = db, []

    def __getattr__(self, name):
        return getattr(self.db, name)

    def rows(self, sql, params=()):
        self.queries.append((sql, list(params)))
        return self.db.rows(sql, params)


def test_a_short_id_that_finds_nothing_reads_an_index_not_every_job(tmp_path):
    """A miss (a guess, a typo) must not cost a scan of the whole ledger (review 1, item 10):
    SQLite's plan for each query find_short runs is a search of an id's index."""
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path)
    for n in range(20):
        adopted(ledger, f"vendor-{n:04d}")
    ledger._db = log = QueryLog(ledger._db)
    for guess in ("deadbeef", "kui-deadbeef", "vendor-9"):
        assert ledger.find_short(guess) is None
    assert len(log.queries) == 3
    with sqlite3.connect(path) as db:
        for sql, params in log.queries:
            plan = " / ".join(row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "SCAN" not in plan and "SEARCH jobs USING" in plan, plan
