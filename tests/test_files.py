"""The one atomic-write helper: whole or not at all, private, and one winner for a secret."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from kling_ui.files import atomic_file, create_once, shared_secret, write_atomic


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


def test_a_shared_secret_is_made_once_and_read_back_the_same(tmp_path):
    path = tmp_path / "data" / "secret"
    first = shared_secret(path, 16)
    assert len(first) == 16 and shared_secret(path, 16) == first
    assert path.read_text() == first.hex()


@pytest.mark.parametrize("damaged", ["", "not hex at all", "abcd", "00" * 15])
def test_a_damaged_shared_secret_is_made_again_never_used_short(tmp_path, damaged):
    """An empty or cut secret (a power cut, a hand edit) would be a weak or empty HMAC key:
    it is replaced by a whole new one."""
    path = tmp_path / "secret"
    path.write_text(damaged)
    value = shared_secret(path, 16)
    assert len(value) == 16 and path.read_text() == value.hex()


def test_create_once_works_where_hard_links_are_refused(tmp_path, monkeypatch):
    """Some network volumes refuse hard links: the name is then created exclusively."""

    def no_links(*_args, **_kwargs):
        raise PermissionError("hard links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "secret"
    assert create_once(path, "first") is True
    assert create_once(path, "second") is False
    assert path.read_text() == "first"
    assert os.listdir(tmp_path) == ["secret"]
