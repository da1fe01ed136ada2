"""The ledger keeps every submitted generation, across threads and restarts."""

from __future__ import annotations

import threading

from kling_ui.history import Ledger


def record(ledger: Ledger, gid: str, **changes):
    fields = {
        "backend": "demo",
        "prompt": "A kite rises",
        "negative_prompt": "",
        "duration": 5,
        "generate_audio": True,
    }
    fields.update(changes)
    return ledger.record_submitted(gid, **fields)


def test_submitted_generation_is_kept_with_its_settings(tmp_path):
    ledger = Ledger(tmp_path / "h.sqlite3")
    entry = record(ledger, "id-1:model", duration=10, generate_audio=False, credits=3.0)
    assert entry.status == "queued"
    assert (entry.duration, entry.generate_audio, entry.credits) == (10, False, 3.0)
    assert not entry.finished


def test_entry_survives_a_restart(tmp_path):
    record(Ledger(tmp_path / "h.sqlite3"), "id-1:model")
    again = Ledger(tmp_path / "h.sqlite3").get("id-1:model")
    assert again is not None and again.prompt == "A kite rises"


def test_update_changes_only_what_is_given(tmp_path):
    ledger = Ledger(tmp_path / "h.sqlite3")
    record(ledger, "id-1", credits=5.0)
    ledger.update("id-1", status="completed", video_path="/v.mp4")
    ledger.update("id-1", message="Done.")
    entry = ledger.get("id-1")
    assert (entry.status, entry.video_path, entry.credits, entry.message) == (
        "completed",
        "/v.mp4",
        5.0,
        "Done.",
    )
    assert entry.finished


def test_recording_the_same_id_twice_keeps_the_first(tmp_path):
    ledger = Ledger(tmp_path / "h.sqlite3")
    record(ledger, "id-1", prompt="first")
    record(ledger, "id-1", prompt="second")
    assert ledger.get("id-1").prompt == "first"
    assert len(ledger.recent()) == 1


def test_get_many_returns_only_known_ids(tmp_path):
    ledger = Ledger(tmp_path / "h.sqlite3")
    record(ledger, "a")
    record(ledger, "b")
    assert set(ledger.get_many(["a", "b", "zzz", 7])) == {"a", "b"}
    assert ledger.get_many([]) == {}


def test_many_threads_can_write_at_once(tmp_path):
    ledger = Ledger(tmp_path / "h.sqlite3")

    def work(n: int) -> None:
        record(ledger, f"id-{n}")
        ledger.update(f"id-{n}", status="completed")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = ledger.recent(limit=100)
    assert len(entries) == 40
    assert {e.status for e in entries} == {"completed"}


def test_phase_times_are_set_once_and_old_ledgers_get_the_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # a ledger from before phase times were kept
        db.execute(
            "CREATE TABLE generations (id TEXT PRIMARY KEY, created_at REAL NOT NULL,"
            " updated_at REAL NOT NULL, backend TEXT NOT NULL, prompt TEXT NOT NULL,"
            " negative_prompt TEXT NOT NULL DEFAULT '', duration INTEGER NOT NULL,"
            " generate_audio INTEGER NOT NULL, status TEXT NOT NULL,"
            " message TEXT NOT NULL DEFAULT '', credits REAL, video_path TEXT)"
        )
        db.execute("INSERT INTO generations VALUES ('old', 1, 1, 'live', 'p', '', 5, 1,"
                   " 'completed', '', NULL, NULL)")  # fmt: skip
    ledger = Ledger(path)
    assert ledger.get("old").generating_at is None
    ledger.record_submitted(
        "g", backend="live", prompt="p", negative_prompt="", duration=5, generate_audio=True,
        created_at=100.0,
    )  # fmt: skip
    ledger.mark_phase("g", "generating", 110.0)
    ledger.mark_phase("g", "generating", 150.0)  # a later sighting moves nothing
    ledger.mark_phase("g", "finished", 160.0)
    entry = ledger.get("g")
    assert (entry.generating_at, entry.finished_at) == (110.0, 160.0)
    assert entry.timings(now=999.0) == (60.0, 10.0, 50.0)
