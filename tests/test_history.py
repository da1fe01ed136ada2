"""The ledger: jobs kept across restarts, and the job's state machine enforced."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from kling_ui.history import ALLOWED, FINAL, SCHEMA_VERSION, IllegalTransition, Ledger
from kling_ui.request import Request
from kling_ui.states import Reason

# The tests of the ledger's behaviour run on both its databases; those of SQLite's own past
# (ledgers from older versions, the file's rights) on SQLite only.
DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(params=DATABASES)
def where(request, tmp_path):
    """Where a fresh ledger is: a SQLite file, or a fresh database of the throwaway cluster."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return tmp_path / "l.sqlite3"


def add(ledger: Ledger, **changes):
    fields = ("prompt", "negative_prompt", "duration", "generate_audio")
    asked = {name: changes.pop(name) for name in fields if name in changes}
    fields = dict(backend="live", key_ref="server")
    fields.update(changes)
    return ledger.add(Request.make(asked.pop("prompt", "Waves."), **asked), **fields)


def test_a_job_is_kept_with_its_settings_and_survives_a_restart(where):
    ledger = Ledger(where)
    job = add(ledger, prompt="A fox runs.", negative_prompt="blur", duration=10)
    assert job.state == "queued_here" and job.job_id.startswith("kui-")
    again = Ledger(where).get(job.job_id)
    assert again == job and again.duration == 10 and again.negative_prompt == "blur"


def test_the_happy_path_is_allowed_and_each_phase_is_timed_once(where):
    ledger = Ledger(where)
    job = add(ledger, created_at=100.0)
    for state, at in [("submitting", 101.0), ("submitted", 102.0), ("queued", 103.0),
                      ("generating", 110.0), ("generating", 150.0), ("downloading", 160.0),
                      ("done", 161.0)]:  # fmt: skip
        job = ledger.transition(job.job_id, state, at=at)
    assert job.state == "done" and job.final
    assert (job.submitted_at, job.generating_at, job.finished_at) == (102.0, 110.0, 160.0)
    assert job.timings(now=999.0) == (58.0, 8.0, 50.0)


@pytest.mark.parametrize(
    "path, bad",
    [
        (["submitting"], "done"),  # skipped
        (["submitting", "submitted", "generating"], "queued"),  # backward
        (["submitting", "submitted", "generating", "downloading", "done"], "generating"),
        ([], "submitted"),  # a create must be under way first
        (["cancelled"], "submitting"),  # a cancelled item is never sent
    ],
)
def test_a_skipped_or_backward_step_is_refused(where, path, bad):
    ledger = Ledger(where)
    job = add(ledger)
    for state in path:
        ledger.transition(job.job_id, state)
    with pytest.raises(IllegalTransition):
        ledger.transition(job.job_id, bad)
    assert ledger.get(job.job_id).state == (path[-1] if path else "queued_here")


def test_every_final_state_is_a_dead_end():
    for state, sources in ALLOWED.items():
        assert not (sources & FINAL), (state, sources & FINAL)


def test_ids_are_found_by_ours_or_the_vendors(where):
    ledger = Ledger(where)
    job = add(ledger)
    ledger.transition(job.job_id, "submitting")
    ledger.transition(job.job_id, "submitted", generation_id="g-1")
    assert ledger.find("g-1").job_id == job.job_id == ledger.find(job.job_id).job_id
    assert set(ledger.find_many(["g-1", job.job_id, "nope"])) == {"g-1", job.job_id}
    assert [j.job_id for j in ledger.unfinished()] == [job.job_id]


def test_a_ledger_from_before_the_runner_is_brought_in(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the ledger before the runner (and before phase times)
        db.execute(
            "CREATE TABLE generations (id TEXT PRIMARY KEY, created_at REAL NOT NULL,"
            " updated_at REAL NOT NULL, backend TEXT NOT NULL, prompt TEXT NOT NULL,"
            " negative_prompt TEXT NOT NULL DEFAULT '', duration INTEGER NOT NULL,"
            " generate_audio INTEGER NOT NULL, status TEXT NOT NULL,"
            " message TEXT NOT NULL DEFAULT '', credits REAL, video_path TEXT)"
        )
        rows = [("done-1", "completed", "/v/a.mp4"), ("gen-1", "generating", None),
                ("stop-1", "stopped", None), ("fail-1", "failed", None)]  # fmt: skip
        for gid, status, video in rows:
            db.execute("INSERT INTO generations VALUES (?, 1, 1, 'live', 'p', '', 5, 1, ?, '',"
                       " NULL, ?)", (gid, status, video))  # fmt: skip
    ledger = Ledger(path)
    states = {j.generation_id: j.state for j in ledger.recent()}
    assert states == {"done-1": "done", "gen-1": "generating", "stop-1": "submitted",
                      "fail-1": "failed"}  # fmt: skip
    assert {j.generation_id for j in ledger.unfinished()} == {"gen-1", "stop-1"}
    assert len(Ledger(path).recent()) == 4  # brought in once


def test_many_threads_can_write_at_once(where):
    ledger = Ledger(where)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                job = add(ledger, prompt=f"{n}-{i}")
                ledger.transition(job.job_id, "submitting")
                ledger.note(job.job_id, "sending")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(ledger.recent(limit=500)) == 160


def test_a_create_under_way_cannot_be_entered_twice(where):
    """Two steps racing to send one job: the second is refused by the ledger, not sent."""
    ledger = Ledger(where)
    job = add(ledger)
    ledger.transition(job.job_id, "submitting")
    with pytest.raises(IllegalTransition):
        ledger.transition(job.job_id, "submitting")


def test_the_ledger_is_for_the_apps_user_only(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    add(ledger)
    assert (tmp_path / "l.sqlite3").stat().st_mode & 0o077 == 0


def test_a_ledger_from_before_owners_is_brought_up_to_date(tmp_path):
    """Rows made before jobs had owners: each is claimed by the first browser that shows it;
    a finished video gets a token when it is first served."""
    path = tmp_path / "l.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, generation_id TEXT UNIQUE, batch_id TEXT,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL, backend TEXT NOT NULL,"
        " key_ref TEXT NOT NULL DEFAULT '', prompt TEXT NOT NULL,"
        " negative_prompt TEXT NOT NULL DEFAULT '', duration INTEGER NOT NULL,"
        " generate_audio INTEGER NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',"
        " reason TEXT, credits REAL, video_path TEXT, recovered INTEGER NOT NULL DEFAULT 0,"
        " sent_at REAL, submitted_at REAL, queued_at REAL, generating_at REAL, finished_at REAL)"
    )
    db.execute(
        "INSERT INTO jobs (job_id, created_at, updated_at, backend, prompt, duration,"
        " generate_audio, state) VALUES ('kui-old', 1, 1, 'live', 'Old.', 5, 1, 'done')"
    )
    db.commit()
    db.close()
    ledger = Ledger(path)
    job = ledger.get("kui-old")
    assert job.owner == "legacy" and job.video_token is None
    assert job.parent_id is None and ledger.chain("kui-old") == [job]
    # And the columns since: a continuation of the old job can be written and followed.
    child = add(ledger, prompt="Next.", parent_id="kui-old")
    assert [j.job_id for j in ledger.chain(child.job_id)] == ["kui-old", child.job_id]
    assert not ledger.may_see(job, "browser:b")
    assert ledger.claim("kui-old", "browser:a") and not ledger.claim("kui-old", "browser:b")
    job = ledger.get("kui-old")
    assert ledger.may_see(job, "browser:a") and not ledger.may_see(job, "browser:b")
    ledger.grant("kui-old", "browser:b")
    assert ledger.may_see(job, "browser:b") and not ledger.may_see(job, "")
    assert add(ledger, owner="browser:c").owner == "browser:c"  # new rows: their maker


def test_leases_give_each_job_to_one_runner_at_a_time(where):
    """Two runners (processes) on one ledger: a held job is not another's until its lease
    lapses or its holder is known to be gone; claiming is all or nothing per job."""
    ledger = Ledger(where)
    a, b = add(ledger), add(ledger)
    assert ledger.hold(a.job_id, "h:1:x", now=100, until=130)
    assert not ledger.hold(a.job_id, "h:2:y", now=110, until=140)  # held, not lapsed
    assert ledger.hold(a.job_id, "h:1:x", now=120, until=150)  # renewed by its holder
    taken = ledger.claim_free("h:2:y", now=121, until=151)
    assert [j.job_id for j in taken] == [b.job_id]  # the free one only
    assert ledger.claim_free("h:3:z", now=121, until=151) == []
    assert [j.job_id for j in ledger.claim_free("h:3:z", now=121, until=151,
                                                dead={"h:1:x"})] == [a.job_id]  # fmt: skip
    assert ledger.hold(b.job_id, "h:1:x", now=200, until=230)  # h:2:y's lapsed at 151
    ledger.transition(b.job_id, "cancelled")
    assert not ledger.hold(b.job_id, "h:1:x", now=201, until=231)  # an ended job: no one's
    ledger.release("h:3:z")
    assert ledger.get(a.job_id).lease_owner is None and ledger.holders() == set()


def test_the_schema_has_a_version_and_todays_sqlite_ledger_is_upgraded(tmp_path):
    """A ledger as the app left it before versions (parent_id and the leases not yet there),
    with a row: opened, it is brought to the current version with its row intact."""
    path = tmp_path / "l.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, generation_id TEXT UNIQUE, batch_id TEXT,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL, backend TEXT NOT NULL,"
        " key_ref TEXT NOT NULL DEFAULT '', prompt TEXT NOT NULL,"
        " negative_prompt TEXT NOT NULL DEFAULT '', duration INTEGER NOT NULL,"
        " generate_audio INTEGER NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',"
        " reason TEXT, credits REAL, video_path TEXT, recovered INTEGER NOT NULL DEFAULT 0,"
        " sent_at REAL, submitted_at REAL, queued_at REAL, generating_at REAL, finished_at REAL,"
        " owner TEXT NOT NULL DEFAULT '', video_token TEXT, estimate_usd REAL, charged_usd REAL)"
    )
    db.execute(
        "INSERT INTO jobs (job_id, created_at, updated_at, backend, prompt, duration,"
        " generate_audio, state, owner, charged_usd) VALUES"
        " ('kui-v1', 1, 1, 'live', 'Before.', 10, 0, 'done', 'browser:a', 1.4)"
    )
    db.commit()
    db.close()
    ledger = Ledger(path)
    assert ledger.version == SCHEMA_VERSION == 4
    job = ledger.get("kui-v1")
    assert (job.prompt, job.duration, job.generate_audio, job.charged_usd) == (
        "Before.", 10, False, 1.4
    )  # fmt: skip
    assert job.parent_id is None and job.lease_owner is None
    assert job.address == ""  # not known for a job from before addresses were kept
    assert Ledger(path).version == 4  # opening again changes nothing


def test_a_ledger_from_a_newer_version_is_refused(where):
    ledger = Ledger(where)
    ledger._db.execute("UPDATE ledger_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(RuntimeError, match="newer kling-ui"):
        Ledger(where)


def test_a_new_row_can_be_held_from_its_insert(where):
    """A runner adding a job holds it from the start: no other runner's claim can take it
    before the job's request is saved (a claim then would find nothing to send)."""
    ledger = Ledger(where)
    job = add(ledger, lease=("h:1:x", 10**10))
    assert job.lease_owner == "h:1:x"
    assert ledger.claim_free("h:2:y", now=100, until=130) == []


def test_a_version_2_ledger_gains_the_address_column_in_both_databases(where):
    """Issue 23 item 1: each job keeps the address it came from (its digest), so limits
    count per address too. A version 2 ledger (no address column) is upgraded in place."""
    ledger = Ledger(where)
    old = add(ledger, owner="browser:a")
    ledger._db.execute("DROP INDEX IF EXISTS jobs_address_state")
    ledger._db.execute("ALTER TABLE jobs DROP COLUMN address")
    ledger._db.execute("UPDATE ledger_meta SET value = '2' WHERE name = 'schema_version'")
    ledger.close()
    again = Ledger(where)
    assert again.version == SCHEMA_VERSION and again.get(old.job_id).address == ""

    class Asker(str):  # the service's Visitor: an owner with where it asks from
        place = "address:p1"

    made = add(again, owner=Asker("browser:b"))
    assert (made.owner, made.address) == ("browser:b", "address:p1")
    add(again, owner=Asker("browser:c"))
    assert again.unfinished_of("address:p1", column="address") == 2
    assert again.unfinished_of("browser:b") == 1
    assert again.jobs_since(0, key_ref="server", owner="address:p1", column="address") == 2
    assert again.waiting() == 3


# A jobs table as schema 3 left it (before the request was stored whole).
SCHEMA_3_JOBS = (
    "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, generation_id TEXT UNIQUE, batch_id TEXT,"
    " created_at REAL NOT NULL, updated_at REAL NOT NULL, backend TEXT NOT NULL,"
    " key_ref TEXT NOT NULL DEFAULT '', prompt TEXT NOT NULL,"
    " negative_prompt TEXT NOT NULL DEFAULT '', duration INTEGER NOT NULL,"
    " generate_audio INTEGER NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',"
    " reason TEXT, credits REAL, video_path TEXT, recovered INTEGER NOT NULL DEFAULT 0,"
    " sent_at REAL, submitted_at REAL, queued_at REAL, generating_at REAL, finished_at REAL,"
    " owner TEXT NOT NULL DEFAULT '', video_token TEXT, estimate_usd REAL, charged_usd REAL,"
    " parent_id TEXT, lease_owner TEXT, lease_until REAL, address TEXT NOT NULL DEFAULT '')"
)


def test_a_request_is_stored_whole_and_read_back(where):
    """Issue 24 item 1: the ledger keeps the request as JSON (an image link with it; a data
    URI is kept as a file elsewhere), and the old columns beside it."""
    ledger = Ledger(where)
    asked = Request.make(
        "A kite rises.", negative_prompt="fog", duration="10", generate_audio=False,
        images={"image": "https://example.com/kite.png"},
    )  # fmt: skip
    job = ledger.add(asked, backend="live", key_ref="server")
    again = Ledger(where).get(job.job_id)
    assert again.request == asked and again.request.image_url == "https://example.com/kite.png"
    assert (again.prompt, again.negative_prompt, again.duration, again.generate_audio) == (
        "A kite rises.", "fog", 10, False
    )  # fmt: skip
    sent = ledger.add(asked.with_image("data:image/png;base64,AAAA"), backend="live")
    assert sent.request.images == {}  # the bytes are never in the row


def test_an_adopted_id_has_no_stored_request_and_reads_as_before(where):
    ledger = Ledger(where)
    job = ledger.add(None, backend="live", state="submitted", generation_id="g-9")
    assert job.request_json is None and (job.prompt, job.duration) == ("", 5)
    assert (job.request.prompt, job.request.duration, job.request.generate_audio) == (
        "", 5, True
    )  # fmt: skip


def test_a_schema_3_sqlite_ledger_gets_its_requests_from_the_old_columns(tmp_path):
    """A ledger file as schema 3 left it, with two rows: opened, each row's request is
    filled in from its prompt, negative prompt, duration and audio switch, and reads so."""
    path = tmp_path / "l.sqlite3"
    db = sqlite3.connect(path)
    db.execute(SCHEMA_3_JOBS)
    db.execute("CREATE TABLE ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO ledger_meta VALUES ('schema_version', '3')")
    db.execute(
        "INSERT INTO jobs (job_id, created_at, updated_at, backend, prompt, negative_prompt,"
        " duration, generate_audio, state, reason) VALUES"
        " ('kui-a', 1, 1, 'live', 'Rain on glass.', 'blur', 10, 0, 'done', NULL),"
        " ('kui-b', 2, 2, 'live', 'Snow.', '', 5, 1, 'not_created', 'refused')"
    )
    db.commit()
    db.close()
    ledger = Ledger(path)
    assert ledger.version == SCHEMA_VERSION == 4
    a, b = ledger.get("kui-a"), ledger.get("kui-b")
    assert a.request_json is not None  # migrated, not only read from the columns
    assert (a.request.prompt, a.request.negative_prompt, a.request.duration) == (
        "Rain on glass.", "blur", 10
    )  # fmt: skip
    assert a.request.generate_audio is False and b.request.generate_audio is True
    assert b.reason is Reason.REFUSED and a.reason is None
    assert Ledger(path).get("kui-a") == a  # opening again changes nothing


def test_a_version_3_ledger_is_migrated_and_rows_without_a_request_still_read(where):
    """The same upgrade on both databases, from a live ledger set back to schema 3; a row an
    older replica writes afterwards (no request) reads from its old columns."""
    ledger = Ledger(where)
    old = add(ledger, prompt="Tide.", duration=10, generate_audio=False)
    ledger._db.execute("ALTER TABLE jobs DROP COLUMN request")
    ledger._db.execute("UPDATE ledger_meta SET value = '3' WHERE name = 'schema_version'")
    ledger.close()
    again = Ledger(where)
    assert again.version == SCHEMA_VERSION
    job = again.get(old.job_id)
    assert job.request_json is not None and job.request == old.request
    again._db.execute(
        "INSERT INTO jobs (job_id, created_at, updated_at, backend, prompt, duration,"
        " generate_audio, state) VALUES ('kui-older', 1, 1, 'live', 'Dunes.', 10, 1, 'done')"
    )
    older = again.get("kui-older")
    assert older.request_json is None
    assert (older.request.prompt, older.request.duration) == ("Dunes.", 10)


def test_a_failure_reason_is_typed_and_an_unknown_one_is_refused(where):
    """Issue 24 item 2: the reason column holds ``Reason`` values, read back typed."""
    ledger = Ledger(where)
    job = add(ledger)
    with pytest.raises(ValueError):
        ledger.transition(job.job_id, "not_created", reason="went wrong")
    assert ledger.get(job.job_id).state == "queued_here"
    ended = ledger.transition(job.job_id, "not_created", reason="not sent")
    assert ended.reason is Reason.NOT_SENT and ended.reason == "not sent"
    assert Ledger(where).get(job.job_id).reason is Reason.NOT_SENT


def test_sqlite_keeps_its_connections_but_never_one_left_in_a_transaction(tmp_path):
    """The SQLite ledger reuses its connections (a new one read the schema again each call);
    one given back mid-transaction is closed (rolled back), never handed to the next caller;
    many threads at once each get one of their own; after close, calls still work."""
    from concurrent.futures import ThreadPoolExecutor

    from kling_ui.database import SQLite

    db = SQLite(tmp_path / "pool.sqlite3")
    db.execute("CREATE TABLE t (v INTEGER)")
    with db._connection() as first:
        pass
    with db._connection() as again:
        assert again is first  # kept, not opened anew
    with db._connection() as left_open:
        left_open.execute("BEGIN")
        left_open.execute("INSERT INTO t VALUES (1)")
    with db._connection() as after:
        assert after is not left_open and not after.in_transaction
    assert db.value("SELECT COUNT(*) FROM t") == 0  # rolled back

    def write_and_read(n: int) -> int:
        db.execute("INSERT INTO t VALUES (?)", (n,))
        return len(db.rows("SELECT v FROM t"))

    with ThreadPoolExecutor(16) as pool:
        seen = list(pool.map(write_and_read, range(200)))
    assert db.value("SELECT COUNT(*) FROM t") == 200 and max(seen) == 200
    assert len(db._idle) <= SQLite.IDLE
    db.close()
    assert db._idle == [] and db.value("SELECT COUNT(*) FROM t") == 200
    assert db._idle == []  # after close, none is kept
