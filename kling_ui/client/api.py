"""The only module that speaks HTTP: create a generation, poll it, download its video.

What it guarantees:
- a request is checked by ``rules`` before anything is sent (``GenerationRequest.body``);
- polls are retried on connection errors, 429 (Retry-After honoured, capped) and 5xx by a
  ``urllib3`` ``Retry`` mounted on the session, never by a loop here;
- the create POST is retried only when it provably never reached the server (no
  connection was made) or the server said so (429, 503); anything else after the
  request left us is ``OutcomeUnknown``, because re-sending it could pay twice;
- the API key goes only to the API host, in a header set per request, and never into
  a log line, a message or the download of the video (that uses a session with no
  credentials, so neither the CDN nor a redirect target sees the key);
- the video is fetched only from public addresses (unless the API itself is local): each
  hop's name is resolved once, every address it gave checked, and the connection made to a
  checked address (``VideoHost``; TLS and ``Host`` still name the host), so a name that
  answers differently the second time (DNS rebinding) can't send us elsewhere; and the
  download's time limit is for the whole of it (a watchdog cuts a host that drips bytes).

Status codes are turned into our exception types in exactly one place, a table
(``_STATUS_ERRORS``) plus the one rule a create adds (``_raise_for_status``); vendor JSON is
parsed into our types in ``jobs.py``. Imports: ``config``, ``errors`` and ``rules``.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from . import errors
from .config import CREATE_PATH, POLL_PATH, Settings
from .rules import GenerationRequest, check_generation_id

log = logging.getLogger(__name__)

USER_AGENT = "kling-ui/0.1"
LOGS_PATH = "/v2/logs"
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_POLL_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A 429 or 503 answer to a create says the job was not accepted, so it is safe to repeat.
_CREATE_RETRY_STATUSES = frozenset({429, 503})


# --- retry policy ------------------------------------------------------------------------


class CappedRetry(Retry):
    """A ``Retry`` that honours Retry-After but never waits longer than ``retry_after_cap``."""

    retry_after_cap: float = 30.0

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.retry_after_cap)

    def new(self, **kw: Any) -> CappedRetry:
        retry = super().new(**kw)
        retry.retry_after_cap = self.retry_after_cap
        return retry


def _retry(
    settings: Settings, method: str, tries: int, statuses: frozenset[int], *, read: bool
) -> CappedRetry:
    """Backoff with jitter, Retry-After honoured up to the cap, and never a raise: the
    status is judged by ``_raise_for_status``."""
    retry = CappedRetry(
        total=tries,
        connect=tries,
        read=tries if read else False,
        status=tries,
        other=0,
        allowed_methods=frozenset({method}),
        status_forcelist=statuses,
        backoff_factor=settings.retry_backoff,
        backoff_max=10.0,
        backoff_jitter=settings.retry_backoff,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    retry.retry_after_cap = settings.retry_after_cap
    return retry


def poll_retry(settings: Settings) -> CappedRetry:
    """GETs are safe to repeat: retry connection errors, 429 and 5xx with backoff and jitter."""
    return _retry(settings, "GET", settings.poll_retries, _POLL_RETRY_STATUSES, read=True)


def create_retry(settings: Settings) -> CappedRetry:
    """The POST that bills: repeat only what provably was not accepted.

    ``connect`` covers a connection that was never made; no ``read`` retry, so it re-raises
    at once when the request may have reached the server (timeout, dropped connection);
    status retries cover only 429 and 503, which say the job was not taken.
    """
    return _retry(settings, "POST", 3, _CREATE_RETRY_STATUSES, read=False)


def make_session(retry: Retry, pool_size: int = 64) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


# What a host name resolves to: its addresses, as text, in the order to try them.
Resolve = Callable[[str, int], list[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """The system's answer for ``host`` (nothing when it doesn't resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


@dataclass
class Sessions:
    """The connection pools: shared by every user, carrying no credentials. The video host
    is reached through ``VideoHost`` (a pool per download, pinned to checked addresses)."""

    poll: requests.Session
    create: requests.Session
    download: VideoHost

    @classmethod
    def for_settings(cls, settings: Settings, resolve: Resolve = system_resolve) -> Sessions:
        return cls(
            poll=make_session(poll_retry(settings)),
            create=make_session(create_retry(settings)),
            download=VideoHost(settings, resolve),
        )


# --- responses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class APIResponse:
    """A successful JSON answer from the API, with what its headers told us."""

    payload: dict[str, Any]
    request_id: str | None = None
    credits_header: float | None = None


def _vendor_message(response: requests.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] if text and "<" not in text[:1] else None
    if isinstance(data, dict):
        message = data.get("message") or data.get("error")
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        if isinstance(message, dict):
            message = message.get("message")
        return str(message)[:1000] if message else None
    return None


def _request_id(response: requests.Response) -> str | None:
    rid = response.headers.get("x-request-id")
    if rid:
        return rid
    try:
        data = response.json()
    except ValueError:
        return None
    return str(data.get("requestId")) if isinstance(data, dict) and data.get("requestId") else None


# Status -> the error it means, whatever was asked; then the words where the request matters.
_STATUS_ERRORS: dict[int, type[errors.APIStatusError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.OutOfCreditsError,
    404: errors.NotFoundError,
    429: errors.RateLimitError,
}
_WORDS: dict[tuple[int, str], str] = {
    (404, "create"): "The API address was not found. Check AIMLAPI_BASE_URL.",
    (404, "poll"): "The API does not know this generation id. Check that it was copied whole "
    "and belongs to the same API key.",
    (429, "create"): "The API is limiting requests (too many at once). Nothing was submitted; "
    "wait a minute and try again.",
}
_VENDOR_TIMEOUT = (
    "The vendor reported a generation timeout (504). Failed generations are not charged; "
    "resume later to check again, or try a new generation."
)


def _raise_for_status(response: requests.Response, *, creating: bool, secret: str | None) -> None:
    """The one place an HTTP status becomes one of our exceptions.

    The table says what a status means; a create adds one rule: after the request left us, a
    server error other than 503 leaves its outcome unknown (503 says it was not taken).
    """
    status = response.status_code
    if status < 300:
        return
    vendor_message = _vendor_message(response)
    info = {
        "vendor_message": errors.redact(vendor_message, secret) if vendor_message else None,
        "request_id": _request_id(response),
    }
    if 300 <= status < 400:
        raise errors.ServerError(f"The API answered with an unexpected redirect (HTTP {status}).")
    if creating and status >= 500 and status != 503:
        cause = "The API gateway timed out" if status == 504 else f"The API failed (HTTP {status})"
        raise errors.OutcomeUnknown(f"{cause} after the request was sent", **info)
    if status == 504:  # on a poll: the vendor's own generation timeout ends the job
        raise errors.GenerationFailed(_VENDOR_TIMEOUT, **info)
    kind = _STATUS_ERRORS.get(status) or (errors.ServerError if status >= 500 else None)
    if kind is None:
        raise errors.APIStatusError(f"The API answered with HTTP {status}.", **info)
    raise kind(_WORDS.get((status, "create" if creating else "poll")), **info)


def _json_payload(response: requests.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _credits_header(response: requests.Response) -> float | None:
    try:
        return float(response.headers["x-aimlapi-credits-used"])
    except (KeyError, ValueError):
        return None


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached the server: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError)


# --- the client --------------------------------------------------------------------------


@dataclass
class AIMLClient:
    """Talks to one API base URL with one user's key. Cheap: make one per request.

    The sessions (connection pools) are shared between clients and carry no key.
    """

    api_key: str | None = field(repr=False)
    settings: Settings
    sessions: Sessions | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.sessions is None:
            self.sessions = Sessions.for_settings(self.settings)

    @property
    def _base(self) -> str:
        return self.settings.base_url.rstrip("/")

    def _auth(self) -> dict[str, str]:
        if not self.api_key:
            raise errors.AuthenticationError(
                "No API key is set. Enter your AIML API key (or set AIMLAPI_KEY) and try again."
            )
        return {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}

    def redact(self, text: str) -> str:
        """``text`` without this client's key (or anything shaped like one)."""
        return errors.redact(text, self.api_key)

    def create_generation(
        self, request: GenerationRequest, *, client_request_id: str | None = None
    ) -> APIResponse:
        """POST the job. Returns the API's answer, which carries the generation id.

        ``client_request_id`` goes as ``X-Client-Request-Id``: the vendor keeps it in its
        usage log, where a create whose answer was lost can be found again."""
        body = request.body()  # checks; raises InputError before anything is sent
        headers = self._auth()
        if client_request_id:
            if not CLIENT_REQUEST_ID.fullmatch(client_request_id):
                raise ValueError("X-Client-Request-Id: 1-128 of A-Za-z0-9._:-")
            headers["X-Client-Request-Id"] = client_request_id
        assert self.sessions is not None
        try:
            response = self.sessions.create.post(
                self._base + CREATE_PATH,
                json=body,
                headers=headers,
                timeout=(self.settings.connect_timeout, self.settings.create_read_timeout),
                allow_redirects=False,
            )
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise errors.APIConnectionError() from None
            log.warning("create: connection broke after sending (%s)", type(exc).__name__)
            raise errors.OutcomeUnknown() from None
        except requests.Timeout:
            log.warning("create: timed out waiting for the answer")
            raise errors.OutcomeUnknown(
                "The API did not answer in time after the request was sent"
            ) from None
        except requests.RequestException as exc:
            log.warning("create: request failed (%s)", type(exc).__name__)
            raise errors.OutcomeUnknown() from None
        log.info("create: HTTP %s request_id=%s", response.status_code, _request_id(response))
        _raise_for_status(response, creating=True, secret=self.api_key)
        payload = _json_payload(response)
        if payload is None or not isinstance(payload.get("id"), str) or not payload["id"]:
            raise errors.OutcomeUnknown(
                "The API answered without a generation id", request_id=_request_id(response)
            )
        return APIResponse(payload, _request_id(response), _credits_header(response))

    def get_generation(self, generation_id: str) -> APIResponse:
        """GET the job's current state. Retries transient failures inside the adapter."""
        generation_id = check_generation_id(generation_id)
        headers = self._auth()
        assert self.sessions is not None
        try:
            response = self.sessions.poll.get(
                self._base + POLL_PATH,
                params={"generation_id": generation_id},  # the id has a colon: encode it
                headers=headers,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.warning("poll: request failed (%s)", type(exc).__name__)
            raise errors.APIConnectionError(
                "Lost contact with the API while checking the job. It goes on at the vendor; "
                "we'll keep trying, or resume it later by its id."
            ) from None
        log.debug("poll: HTTP %s", response.status_code)
        _raise_for_status(response, creating=False, secret=self.api_key)
        payload = _json_payload(response)
        if payload is None:
            raise errors.ServerError(
                "The API sent an unreadable answer while we checked the job; trying again.",
                request_id=_request_id(response),
            )
        return APIResponse(payload, _request_id(response), _credits_header(response))

    def find_in_logs(self, client_request_id: str, *, pages: int = 3) -> str | None:
        """The generation id of the create that carried ``client_request_id``, from the
        vendor's usage log (``GET /v2/logs``, newest first), or None if it isn't there (yet:
        the log lags)."""
        headers = self._auth()
        assert self.sessions is not None
        for page in range(pages):
            try:
                response = self.sessions.poll.get(
                    self._base + LOGS_PATH,
                    params={"period": "24h", "limit": 100, "offset": 100 * page},
                    headers=headers,
                    timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                log.warning("logs: request failed (%s)", type(exc).__name__)
                raise errors.APIConnectionError("Could not read the API's usage log.") from None
            _raise_for_status(response, creating=False, secret=self.api_key)
            payload = _json_payload(response) or {}
            rows = payload.get("data") if isinstance(payload.get("data"), list) else []
            for row in rows:
                if isinstance(row, dict) and row.get("client_request_id") == client_request_id:
                    found = row.get("inference_id")
                    return found if isinstance(found, str) and found else None
            more = payload.get("pagination")
            if not (isinstance(more, dict) and more.get("has_more")):
                return None
        return None

    def download_video(self, url: str, dest: Path) -> Path:
        """Stream the MP4 at ``url`` into ``dest`` (atomically), without any credentials."""
        return download_video(url, dest, self.settings, self.sessions)


# --- the download ------------------------------------------------------------------------


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
    for chunk in response.stream(256 * 1024, decode_content=True):
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


def download_video(
    url: str, dest: Path, settings: Settings, sessions: Sessions | None = None
) -> Path:
    """Fetch the finished video to ``dest`` through a temporary file, renamed when whole.

    The session used has no Authorization header: neither the CDN nor a redirect target
    ever sees the key."""
    if not isinstance(url, str) or not url.strip():
        raise errors.DownloadError("The API returned no usable video address.")
    host = sessions.download if sessions is not None else VideoHost(settings)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".part-", suffix=".mp4", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            host.fetch(url, out)
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)
