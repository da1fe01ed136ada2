"""Files written whole or not at all: the one atomic-write helper.

Every file the app keeps (a video, a poster, a kept image, a secret, a batch item waiting)
is written under a fresh hidden name beside its place, made exclusively (``O_EXCL``, so two
writers never share a part file) and private to the app's user (0600), then moved into
place with ``os.replace``. A reader sees the old file or the whole new one, never half; a
writer that fails leaves nothing behind. Imports nothing of ours.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

PRIVATE = 0o600


@contextlib.contextmanager
def atomic_file(path: Path | str, *, mode: int = PRIVATE) -> Iterator[BinaryIO]:
    """Yield a binary file to write; on a clean exit it replaces ``path`` whole.

    On any error (or an interrupt) the part file is removed and ``path`` is untouched."""
    path = Path(path)
    part = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: Path | str, *, mode: int = PRIVATE) -> Iterator[Path]:
    """Yield the part file's name, for a writer that needs one (an MP4 muxer that goes back
    over its own output); on a clean exit it replaces ``path`` whole, else it is removed."""
    path = Path(path)
    part = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    try:
        yield part
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def write_atomic(path: Path | str, data: bytes | str, *, mode: int = PRIVATE) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all."""
    with atomic_file(path, mode=mode) as out:
        out.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def write_with(
    path: Path | str, writer: Callable[[BinaryIO], object], *, mode: int = PRIVATE
) -> Path:
    """Let ``writer`` fill the file (a download, an encoder), then put it in place whole."""
    with atomic_file(path, mode=mode) as out:
        writer(out)
    return Path(path)


def create_once(path: Path | str, data: bytes | str, *, mode: int = PRIVATE) -> bool:
    """Create ``path`` with ``data`` only if no file is there yet; True if this call made it.

    For a value that must be the same for every process (a secret two replicas start with
    at once): the loser of the race reads the winner's file instead of replacing it. The
    part file is written and synced, then linked into place (``os.link`` fails when the
    name exists), so a reader never sees an empty or half-written file, even after a power
    cut. On a volume without hard links the name itself is created exclusively instead."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    part = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(part, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some network volumes): O_EXCL on the name
            return _create_exclusive(path, raw, mode)
        return True
    finally:
        part.unlink(missing_ok=True)


def _create_exclusive(path: Path, raw: bytes, mode: int) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    return True


def shared_secret(path: Path | str, size: int) -> bytes:
    """A secret of ``size`` random bytes kept (as hex) at ``path`` for every process on this
    data folder: read when it is there and whole; made once (``create_once``) when missing;
    made again when the file holds no secret of that size (damaged: a new name for keys and
    browsers is better than an empty HMAC key)."""
    path = Path(path)
    for _ in range(3):
        try:
            value = bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = secrets.token_bytes(size)
            if create_once(path, fresh.hex()):
                return fresh
            continue  # another process made it first: read theirs
        except (ValueError, UnicodeDecodeError):
            value = b""
        if len(value) == size:
            return value
        fresh = secrets.token_bytes(size)
        write_atomic(path, fresh.hex())
        return fresh
    raise OSError(f"could not read or make {path.name}")
