"""The video host: fetching a finished video (or an agent's image link) from a public address.

What it guarantees:
- no credentials, ever: the fetch carries no Authorization header, so neither the CDN nor a
  redirect target sees the key;
- only public addresses (unless the API itself is local): each hop's name is resolved once,
  every address it gave checked, and the connection made to a checked address (``VideoHost``;
  TLS and ``Host`` still name the host), so a name that answers differently the second time
  (DNS rebinding) can't send us elsewhere;
- the download's time limit is for the whole of it: one watchdog thread (``_Watchdog``) cuts
  every connection of a download whose ``_Deadline`` has passed (a host that drips bytes);
- a size cap, counted as the body comes, and an MP4 check of a video's first bytes.

Imports ``config``, ``errors`` and ``client.transport`` (the retry policy, the user agent).
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .. import errors
from ..config import Settings
from .transport import USER_AGENT, poll_retry

log = logging.getLogger(__name__)

# What a host name resolves to: its addresses, as text, in the order to try them.
Resolve = Callable[[str, int], list[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """The system's answer for ``host`` (nothing when it doesn't resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def _looks_like_mp4(head: bytes) -> bool:
    # An ISO media file starts with a box whose type is ftyp (sometimes a leading free/skip).
    return len(head) >= 8 and head[4:8] in (b"ftyp", b"free", b"skip", b"wide", b"mdat")


_NOT_MP4 = "The video host sent something that is not an MP4 video. Resume the job to try again."


class TooLarge(errors.DownloadError):
    """A download past its size limit (declared, or counted as it came): stopped there."""


class TooSlow(errors.DownloadError):
    """A download not whole within its time limit: cut there."""


def _check_video_response(
    response: urllib3.BaseHTTPResponse, cap: int, what: str = "video"
) -> int | None:
    """Refuse a video host's error or an over-size declaration; return the declared size."""
    status = response.status
    if status in (401, 403):
        raise errors.DownloadError(
            f"The video host refused the download (HTTP {status}); the link may have expired. "
            "Resume the job to get a fresh link."
        )
    if status == 404:
        raise errors.DownloadError(
            "The video file was not found at the video host (HTTP 404). "
            "Resume the job to get a fresh link."
        )
    if status >= 300:
        raise errors.DownloadError(
            f"The video host answered HTTP {status}. Resume the job to try again."
        )
    declared = response.headers.get("Content-Length")
    size = int(declared) if declared and declared.isdigit() else None
    if size is not None and size > cap:
        raise TooLarge(
            f"The {what} is {size / 1e6:.0f} MB, over this app's {cap / 1e6:.0f} MB limit."
        )
    return size


def _copy_video(
    response: urllib3.BaseHTTPResponse, out: BinaryIO, cap: int, what: str = "video"
) -> tuple[int, bytes]:
    """Stream the body to ``out``, checking the MP4 header early (a video's) and the cap as
    it goes (the whole download's time is the watchdog's, ``_Deadline``)."""
    size, head = 0, b""
    for chunk in response.stream(1024 * 1024, decode_content=True):  # 1 MiB reads
        if len(head) < 12:
            head += chunk[:12]
            if what == "video" and len(head) >= 12 and not _looks_like_mp4(head):
                raise errors.DownloadError(_NOT_MP4)
        size += len(chunk)
        if size > cap:
            raise TooLarge(f"The {what} is larger than this app's {cap / 1e6:.0f} MB limit.")
        out.write(chunk)
    return size, head


_NOT_A_VIDEO_HOST = (
    "The API gave a video address this app won't fetch from (it must be a public http(s) "
    "address). Nothing was downloaded; check your AIML API dashboard for the video."
)
_TOO_LONG = "The video download took too long and was stopped. Resume the job to try again."
MAX_REDIRECTS = 5


def _addresses(host: str, port: int, resolve: Resolve = system_resolve) -> list[Address]:
    """What ``host`` resolves to (itself for an address; nothing when it doesn't resolve)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    found = []
    for text in resolve(host, port):
        try:
            found.append(ipaddress.ip_address(text))
        except ValueError:
            continue
    return found


def _local_api(settings: Settings, resolve: Resolve = system_resolve) -> bool:
    """The API itself is on this machine or a private network (the simulator, a test rig):
    then its videos may be too."""
    parts = urlsplit(settings.base_url)
    found = _addresses(parts.hostname, parts.port or 443, resolve) if parts.hostname else []
    return any(not a.is_global for a in found)


def check_video_address(url: str, *, local_ok: bool) -> str:
    """Refuse, with one text whatever the reason, a video address that isn't an http(s) one
    with a host, or (unless the API itself is local) isn't https. Whether its host is public
    is checked where it is connected to (``VideoHost``). Returns the address."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.DownloadError(_NOT_A_VIDEO_HOST)
    if not local_ok and parts.scheme != "https":
        raise errors.DownloadError(_NOT_A_VIDEO_HOST)
    return url


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Pinned:
    """A connection made to the addresses it was given (checked), never to a fresh lookup of
    its host's name; TLS's server name, the certificate's check and ``Host`` stay the name.
    Each connection made is shown to ``deadline``, which may cut it."""

    def __init__(
        self, *args: Any, addresses: tuple[str, ...] = (), deadline: _Deadline, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self._pinned = addresses
        self._deadline = deadline

    def _new_conn(self) -> socket.socket:
        if self._deadline.expired:  # a retry after the time is up: no new connection
            raise NewConnectionError(self, "the download's time limit has passed")
        failure: Exception = NewConnectionError(self, "no address to connect to")
        name = self._dns_host  # type: ignore[has-type]
        for address in self._pinned:
            self._dns_host = address
            try:
                sock = super()._new_conn()  # type: ignore[misc]
            except (NewConnectionError, ConnectTimeoutError) as exc:
                failure = exc
                continue
            finally:
                self._dns_host = name
            self._deadline.watch(self, sock)
            return sock
        raise failure

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        if self.sock is not None:  # TLS's wrapping, which is read from now on: shown too
            self._deadline.watch(self, self.sock)  # (a close-delimited body drops ``sock``)


class _PinnedHTTP(_Pinned, HTTPConnection):
    pass


class _PinnedHTTPS(_Pinned, HTTPSConnection):
    pass


class _Deadline:
    """The whole download's time limit: when it passes, every connection the download made
    is shut down under the thread reading it (a host that drips a byte at a time, in its
    headers or its body, never holds a worker past the limit)."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._done = False
        self._seconds = seconds

    def __enter__(self) -> _Deadline:
        _WATCHDOG.add(time.monotonic() + self._seconds, self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        _WATCHDOG.remove(self)

    def watch(self, connection: Any, sock: socket.socket) -> None:
        """A connection just made, with its socket (until the connection holds it, or its
        TLS wrapping)."""
        with self._lock:
            self._connections.append((connection, sock))
            if self.expired:  # made as the time ran out: cut at once
                self._cut(connection, sock)

    @staticmethod
    def _cut(connection: Any, sock: socket.socket) -> None:
        held = getattr(connection, "sock", None) or sock
        # The plain socket's shutdown, under TLS too: the reader wakes. (A socket handed to
        # TLS is detached, and refuses: its wrapping is the connection's by then.)
        with contextlib.suppress(OSError):
            socket.socket.shutdown(held, socket.SHUT_RDWR)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for connection, sock in self._connections:
                self._cut(connection, sock)


class _Watchdog:
    """One thread for every download's deadline (a thread per download would add one per
    job the runner fetches at once): a heap of (when, deadline), woken when one is added
    or when the soonest is due. Started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, when: float, deadline: _Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, id(deadline), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kling-download-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def remove(self, deadline: _Deadline) -> None:
        with self._cond:
            self._heap = [item for item in self._heap if item[2] is not deadline]
            heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, deadline = self._heap[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            deadline._expire()


_WATCHDOG = _Watchdog()


@dataclass
class VideoHost:
    """Fetches a finished video from where the API says it is, hop by hop (redirects
    followed here, at most ``MAX_REDIRECTS``): each hop's host resolved once with
    ``resolve``, refused unless every address is public (or the API itself is local), and
    connected to those very addresses. No credentials, ever."""

    settings: Settings
    resolve: Resolve = system_resolve

    def fetch(self, url: str, out: BinaryIO) -> None:
        settings = self.settings
        declared, size, head = self._fetch(
            url, out, settings.max_video_bytes, settings.download_total_timeout, "video"
        )
        if declared is not None and size != declared:
            raise errors.DownloadError(
                "The video download was cut off. Resume the job to try again."
            )
        if not _looks_like_mp4(head):
            raise errors.DownloadError(_NOT_MP4)

    def fetch_file(self, url: str, out: BinaryIO, *, most: int, seconds: float) -> int:
        """Any other public file (an agent's image link), as a video is fetched: the same
        pinning and redirects, at most ``most`` bytes (``TooLarge`` past them, streamed, so
        a huge file is never held) and ``seconds`` for the whole of it. Its size."""
        # Never this machine or a private network, even where the API is local (the
        # simulator): a link is the caller's, and the server would fetch it for them.
        local_ok = self.settings.allow_local_links
        declared, size, _ = self._fetch(url, out, most, seconds, "file", local_ok=local_ok)
        if declared is not None and size != declared:
            raise errors.DownloadError("The download was cut off.")
        return size

    def _fetch(
        self,
        url: str,
        out: BinaryIO,
        most: int,
        seconds: float,
        what: str,
        local_ok: bool | None = None,
    ) -> tuple[int | None, int, bytes]:
        """The body at ``url`` into ``out``: (its declared size, its size, its first bytes).
        Local addresses only where ``local_ok`` says (default: where the API itself is)."""
        if local_ok is None:
            local_ok = _local_api(self.settings, self.resolve)
        with _Deadline(seconds) as deadline:
            try:
                response = self._open(url, local_ok, deadline, seconds, what)
                try:
                    declared = _check_video_response(response, most, what)
                    size, head = _copy_video(response, out, most, what)
                finally:
                    response.release_conn()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if deadline.expired:
                    raise TooSlow(_TOO_LONG) from None
                log.warning("download failed (%s)", type(exc).__name__)
                raise errors.DownloadError(
                    f"The {what} download was interrupted. Resume the job to try again."
                ) from None
            if deadline.expired:
                raise TooSlow(_TOO_LONG)
        return declared, size, head

    def _open(
        self, url: str, local_ok: bool, deadline: _Deadline, seconds: float, what: str
    ) -> urllib3.BaseHTTPResponse:
        for _ in range(MAX_REDIRECTS + 1):
            checked = check_video_address(url, local_ok=local_ok)
            response = self._get(checked, local_ok, deadline, seconds, what)
            location = response.get_redirect_location()
            if not location:
                return response
            response.drain_conn()
            response.release_conn()
            url = urljoin(url, location)
        raise errors.DownloadError(
            "The video host sent too many redirects. Resume the job to try again."
        )

    def _get(
        self, url: str, local_ok: bool, deadline: _Deadline, seconds: float, what: str
    ) -> urllib3.BaseHTTPResponse:
        """One hop: resolve once, check, connect to what was checked."""
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        addresses = _addresses(host, port, self.resolve)
        if not addresses or not (local_ok or all(a.is_global for a in addresses)):
            raise errors.DownloadError(_NOT_A_VIDEO_HOST)
        s = self.settings
        read = min(s.download_timeout, seconds)
        options: dict[str, Any] = {
            "port": port,
            "timeout": urllib3.Timeout(connect=s.connect_timeout, read=read),
            "maxsize": 1,
            "addresses": tuple(str(a) for a in addresses),
            "deadline": deadline,
        }
        if https:
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                host, cert_reqs="CERT_REQUIRED", ca_certs=_ca_certs(), **options
            )
            pool.ConnectionCls = _PinnedHTTPS
        else:
            pool = urllib3.HTTPConnectionPool(host, **options)
            pool.ConnectionCls = _PinnedHTTP
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return pool.urlopen(
            "GET",
            target,
            headers={"Accept": ACCEPT[what], "User-Agent": USER_AGENT},
            retries=poll_retry(s),
            redirect=False,
            preload_content=False,
            assert_same_host=False,
        )


ACCEPT = {"video": "video/mp4,*/*", "file": "image/*,*/*"}


def _ca_certs() -> str:
    """The certificates a download trusts: ``REQUESTS_CA_BUNDLE`` where set, as ``requests``
    itself reads it (a company's own authority), else certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or requests.certs.where()
