"""Files as one ZIP, streamed: each chunk goes out as it is written, so a hundred videos
take no more memory than one chunk (``zipfile`` writes to a stream it can't seek with data
descriptors after each file). Stored, not compressed: MP4s don't shrink. Imports nothing of
ours."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK = 1024 * 1024


class _Pipe:
    """A write-only stream that keeps what was written until it is taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._at = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._at += len(data)
        return len(data)

    def tell(self) -> int:
        return self._at

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def stream_zip(files: Iterable[tuple[Path, str]]) -> Iterator[bytes]:
    """The ZIP of ``files`` ((path, name in the archive)), chunk by chunk. A file gone
    before its turn is left out."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[arg-type]
        for path, name in files:
            try:
                source = open(path, "rb")  # noqa: SIM115 (closed below, after the copy)
            except OSError:
                continue
            with source, archive.open(name, mode="w", force_zip64=True) as entry:
                while chunk := source.read(CHUNK):
                    entry.write(chunk)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()
