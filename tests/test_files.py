"""The one atomic-write helper: whole or not at all, private, and one winner for a secret."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from kling_ui.files import atomic_file, create_once, write_atomic


def test_a_written_file_is_whole_and_private(tmp_path):
    path = write_atomic(tmp_path / "a.bin", b"x" * 1000)
    assert path.read_bytes() == b"x" * 1000
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["a.bin"]  # no part file left


def test_a_failed_write_leaves_the_old_file_and_no_part(tmp_path):
    path = write_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_file(path) as out:
        out.write(b"half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_create_once_has_one_winner_and_every_reader_sees_its_value(tmp_path):
    path = tmp_path / "secret"
    made = []

    def race(n: int) -> None:
        made.append(create_once(path, f"value-{n}"))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made.count(True) == 1
    assert path.read_text().startswith("value-")
    assert os.listdir(tmp_path) == ["secret"]
    assert create_once(path, "later") is False
    assert path.read_text() != "later"
