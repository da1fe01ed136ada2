"""How we speak HTTP to the API: the sessions' retry policy and the one place a status
becomes one of our exceptions.

- polls are retried on connection errors, 429 (Retry-After honoured, capped) and 5xx by a
  ``urllib3`` ``Retry`` mounted on the session, never by a loop here;
- the create POST is retried only when it provably never reached the server (no
  connection was made) or the server said so (429, 503); anything else after the
  request left us is ``OutcomeUnknown``, because re-sending it could pay twice;
- a status is turned into our exception types here only: a table (``_STATUS_ERRORS``) plus
  the one rule a create adds (``raise_for_status``).

Imports ``config``, ``errors`` and ``client.parsers`` (the words of an error answer).
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from .. import errors
from ..config import Settings
from .parsers import request_id, vendor_message

USER_AGENT = "kling-ui/0.1"
# A session a caller hands in (the price book's): it carries no credentials.
HTTPSession = requests.Session
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
    status is judged by ``raise_for_status``."""
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
    """A session with ``retry`` mounted for both schemes; it carries no credentials."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


# --- statuses ------------------------------------------------------------------------------


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


def raise_for_status(response: requests.Response, *, creating: bool, secret: str | None) -> None:
    """The one place an HTTP status becomes one of our exceptions.

    The table says what a status means; a create adds one rule: after the request left us, a
    server error other than 503 leaves its outcome unknown (503 says it was not taken).
    """
    status = response.status_code
    if status < 300:
        return
    said = vendor_message(response)
    info = {
        "vendor_message": errors.redact(said, secret) if said else None,
        "request_id": request_id(response),
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


def never_connected(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached the server: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError)


def quiet_session(pool_size: int = 8) -> requests.Session:
    """A session that never retries nor follows a redirect: for the catalogue and the
    balance, where a value not known now is known later and a page must not wait."""
    return make_session(Retry(0, read=False, redirect=0), pool_size=pool_size)
