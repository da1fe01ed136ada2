"""The API's calls: create a generation, poll it, find it in the usage log, ask a chat
model (the prompt helper), read the price catalogue and the account's balance; and the
download of a finished video.

- a request is checked before anything is sent (``Request.body``);
- the API key goes only to the API host, in a header set per request, and never into a log
  line, a message or the download of the video (``VideoHost`` has no credentials);
- every answer goes through ``transport.raise_for_status`` (or, for the catalogue and the
  balance, which never block a job, a status check of their own) and then one parser of
  ``client.parsers``; no code here reads the vendor's JSON itself.

The catalogue and the balance are asked with the caller's session (the price book's: short
timeouts, no retries, since a price or a balance not known now is known later).
Imports ``config``, ``errors``, ``files``, ``request``, ``rules`` and the package's other
modules (the catalogue's conditional GET is ``models.read_listing``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .. import errors
from ..config import CREATE_PATH, POLL_PATH, Settings
from ..files import write_with
from ..request import Request
from ..rules import check_generation_id
from .models import read_listing
from .parsers import (
    ChatAnswer,
    credits_header,
    json_object,
    parse_balance,
    parse_catalogue,
    parse_chat,
    parse_created,
    parse_logs_page,
    request_id,
)
from .transport import create_retry, make_session, never_connected, poll_retry, raise_for_status
from .video_host import Resolve, VideoHost, system_resolve

log = logging.getLogger(__name__)

LOGS_PATH = "/v2/logs"
CHAT_PATH = "/v1/chat/completions"
BILLING_PATH = "/v2/billing"
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class APIResponse:
    """A successful JSON answer from the API, with what its headers told us."""

    payload: dict[str, Any]
    request_id: str | None = None
    credits_header: float | None = None


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
        self, request: Request, *, client_request_id: str | None = None
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
        try:
            response = self._post(CREATE_PATH, body, headers)
        except requests.ConnectionError as exc:
            if never_connected(exc):
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
        log.info("create: HTTP %s request_id=%s", response.status_code, request_id(response))
        raise_for_status(response, creating=True, secret=self.api_key)
        payload = json_object(response)
        if payload is None or parse_created(payload) is None:
            raise errors.OutcomeUnknown(
                "The API answered without a generation id", request_id=request_id(response)
            )
        return APIResponse(payload, request_id(response), credits_header(response))

    def chat(self, body: dict[str, Any]) -> ChatAnswer:
        """POST a chat completion (``body``: model, messages, max_tokens) and read its
        answer. Sent once, never retried (each is paid); its body is never logged (it
        holds the person's image and words). Our errors, as a create's: a status in words,
        ``OutcomeUnknown`` when it left and no answer came."""
        try:
            response = self._post(CHAT_PATH, body, self._auth())
        except requests.ConnectionError as exc:
            if never_connected(exc):
                raise errors.APIConnectionError() from None
            raise errors.OutcomeUnknown("The connection broke before the helper answered") from None
        except requests.RequestException:
            raise errors.OutcomeUnknown("The helper did not answer in time") from None
        log.info("chat: HTTP %s request_id=%s", response.status_code, request_id(response))
        raise_for_status(response, creating=True, secret=self.api_key)
        answer = parse_chat(json_object(response), response.headers)
        if answer is None:  # answered, so likely charged, but nothing to read
            raise errors.OutcomeUnknown("The helper's answer could not be read")
        return answer

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        """One POST on the create's session (no retry once sent), no redirect followed."""
        assert self.sessions is not None
        return self.sessions.create.post(
            self._base + path,
            json=body,
            headers=headers,
            timeout=(self.settings.connect_timeout, self.settings.create_read_timeout),
            allow_redirects=False,
        )

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
        raise_for_status(response, creating=False, secret=self.api_key)
        payload = json_object(response)
        if payload is None:
            raise errors.ServerError(
                "The API sent an unreadable answer while we checked the job; trying again.",
                request_id=request_id(response),
            )
        return APIResponse(payload, request_id(response), credits_header(response))

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
            raise_for_status(response, creating=False, secret=self.api_key)
            found = parse_logs_page(json_object(response))
            if client_request_id in found.found:
                return found.found[client_request_id]
            if not found.has_more:
                return None
        return None

    def download_video(self, url: str, dest: Path) -> Path:
        """Stream the MP4 at ``url`` into ``dest`` (atomically), without any credentials."""
        return download_video(url, dest, self.settings, self.sessions)


# --- money: the catalogue and the balance --------------------------------------------------


@dataclass(frozen=True)
class CatalogueAnswer:
    """The catalogue's answer for one model: its pricing block as it came (None when the
    answer names no such model or block) and the validator to ask with next time; or
    ``unchanged`` (``304``: the answer asked with is still the catalogue's)."""

    pricing: Any = None
    etag: str | None = None
    unchanged: bool = False


def read_catalogue(
    session: requests.Session,
    base_url: str,
    model: str,
    *,
    etag: str | None,
    timeout: tuple[float, float],
) -> CatalogueAnswer:
    """One GET of ``/v1/models?id=<model>&include=pricing`` (no key), conditional on
    ``etag`` when there is one; the errors of ``models.read_listing``."""
    params = {"id": model, "include": "pricing"}
    payload, tag = read_listing(session, base_url, params, etag=etag, timeout=timeout)
    if payload is None:
        return CatalogueAnswer(unchanged=True)
    return CatalogueAnswer(parse_catalogue(payload, model), tag)


def read_balance(
    session: requests.Session, base_url: str, api_key: str, *, timeout: tuple[float, float]
) -> float | None:
    """The account's balance in USD (``GET /v2/billing``); None when the answer gives none.
    ``APIConnectionError`` when not reached, ``APIStatusError`` for a status but 200 (a few
    words each, for the log). The key goes in this request's header only."""
    try:
        response = session.get(
            base_url.rstrip("/") + BILLING_PATH,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise errors.APIConnectionError(f"not read ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise errors.APIStatusError(f"not read (HTTP {response.status_code})")
    return parse_balance(json_object(response))


# --- the download ------------------------------------------------------------------------


def download_video(
    url: str, dest: Path, settings: Settings, sessions: Sessions | None = None
) -> Path:
    """Fetch the finished video to ``dest`` whole or not at all (``files.write_with``:
    a private part file beside it, moved into place when whole).

    The session used has no Authorization header: neither the CDN nor a redirect target
    ever sees the key."""
    if not isinstance(url, str) or not url.strip():
        raise errors.DownloadError("The API returned no usable video address.")
    host = sessions.download if sessions is not None else VideoHost(settings)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return write_with(dest, lambda out: host.fetch(url, out))
