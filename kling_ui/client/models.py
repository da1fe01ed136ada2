"""The catalogue's video models and each one's request schema, read from the API's host.

``read_listing``: one conditional GET of the catalogue (no key), for the price of our model
(``api.read_catalogue``) and for ``read_video_models`` (``?type=<video>&include=pricing``).
``read_chat_models``: the chat models, for the prompt helper.
``read_model_document``: one GET of a model's ``info.docsJson`` (no key), only where it
points at the API's own host (the vendor serves it there: ``/docs-json?model=...``): a
catalogue answer can't send the server elsewhere.

Like the price catalogue, these never block a job: the caller's session (short timeouts, no
retries), a few words for the log when they fail, and the bundled snapshot meanwhile.
Imports ``errors`` and the package's ``parsers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from .. import errors
from .parsers import (
    CHAT_TYPE,
    VIDEO_TYPE,
    ChatModel,
    ListedModel,
    parse_chat_models,
    parse_model_document,
    parse_video_models,
)

CATALOGUE_PATH = "/v1/models"


@dataclass(frozen=True)
class ModelsAnswer:
    """The video models (with the validator to ask with next time), or ``unchanged``."""

    models: list[ListedModel] = field(default_factory=list)
    etag: str | None = None
    unchanged: bool = False


def _get(session: requests.Session, url: str, timeout: tuple[float, float], **kw: Any) -> Any:
    try:
        return session.get(url, timeout=timeout, allow_redirects=False, **kw)
    except requests.RequestException as exc:
        raise errors.APIConnectionError(f"not reached ({type(exc).__name__})") from None


def _json(response: requests.Response) -> Any:
    if response.status_code != 200:
        raise errors.APIStatusError(f"HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise errors.ServerError("an answer that is not JSON") from None


def read_listing(
    session: requests.Session,
    base_url: str,
    params: dict[str, str],
    *,
    etag: str | None,
    timeout: tuple[float, float],
) -> tuple[Any, str | None]:
    """One GET of the catalogue (``/v1/models`` with ``params``, no key), conditional on
    ``etag`` when there is one: (its JSON, its ETag), or (None, None) for ``304``.
    ``APIConnectionError`` when not reached, ``APIStatusError`` for a status but 200 and
    304, ``ServerError`` for an answer that is not JSON (a few words each, for the log: the
    catalogue is never a person's error)."""
    headers = {"Accept": "application/json"}
    if etag:
        headers["If-None-Match"] = etag
    response = _get(session, base_url.rstrip("/") + CATALOGUE_PATH, timeout,
                    params=params, headers=headers)  # fmt: skip
    if response.status_code == 304:
        return None, None
    return _json(response), response.headers.get("ETag")


def read_video_models(
    session: requests.Session, base_url: str, *, etag: str | None, timeout: tuple[float, float]
) -> ModelsAnswer:
    """The catalogue's video models; the errors of ``read_listing``."""
    params = {"type": VIDEO_TYPE, "include": "pricing"}
    payload, tag = read_listing(session, base_url, params, etag=etag, timeout=timeout)
    if payload is None:
        return ModelsAnswer(unchanged=True)
    return ModelsAnswer(parse_video_models(payload), tag)


def read_chat_models(
    session: requests.Session, base_url: str, *, timeout: tuple[float, float]
) -> list[ChatModel]:
    """The catalogue's chat models, with what they take and cost; the errors of
    ``read_listing``."""
    params = {"type": CHAT_TYPE, "include": "pricing,modalities,capabilities"}
    payload, _ = read_listing(session, base_url, params, etag=None, timeout=timeout)
    return parse_chat_models(payload)


_DEFAULT_PORTS = {"https": 443, "http": 80}


def api_link(url: str, base_url: str) -> str | None:
    """``url`` as an address on the API's own host (its path and query on ``base_url``'s
    scheme, host and port), or None when it names another host, or could be read as
    naming one (a backslash, user info, a space or a control character)."""
    if not isinstance(url, str) or any(c in url for c in "\\@") or any(ord(c) <= 32 for c in url):
        return None
    try:
        a, b = urlsplit(url), urlsplit(base_url)
        here = (a.scheme, a.hostname, a.port or _DEFAULT_PORTS.get(a.scheme))
        there = (b.scheme, b.hostname, b.port or _DEFAULT_PORTS.get(b.scheme))
    except ValueError:  # a port that is not a number
        return None
    if not a.hostname or here != there:
        return None
    return urlunsplit((b.scheme, b.netloc, a.path or "/", a.query, ""))


def read_model_document(
    session: requests.Session, base_url: str, url: str, *, timeout: tuple[float, float]
) -> dict[str, Any]:
    """A model's request schema (its OpenAPI document) from its ``info.docsJson``.
    ``APIStatusError`` when the link is not on the API's host or the answer is not a
    document; the errors of ``read_video_models`` otherwise."""
    link = api_link(url, base_url)
    if link is None:
        raise errors.APIStatusError("a schema link off the API's host, not followed")
    document = parse_model_document(_json(_get(session, link, timeout)))
    if document is None:
        raise errors.APIStatusError("an answer that is not a model's schema")
    return document
