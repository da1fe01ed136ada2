"""The vendor's answers, read into our types: one parser per answer, and nowhere else.

Each function takes what the API sent (its JSON, or the response for what only headers or a
non-JSON body say) and returns our value; none raises on a strange answer (it returns None,
or the field's "not said"). Which answer each reads:

    any error answer         -> ``vendor_message``, ``request_id``
    the create's answer      -> ``parse_created`` (the generation id)
    the usage log's page     -> ``parse_logs_page`` (``LogsPage``)
    the catalogue's answer   -> ``parse_catalogue`` (the model's pricing block, as it came),
                                ``parse_video_models`` (every video model: ``ListedModel``)
    a model's document       -> ``parse_model_document`` (its OpenAPI document, as it came)
    the billing answer       -> ``parse_balance`` (USD)
    the chat models' listing -> ``parse_chat_models`` (``ChatModel``: vision, token rates)
    a chat completion        -> ``parse_chat`` (``ChatAnswer``: the text, its cost)
    any answer's cost        -> ``reported_charge`` (``Charge``), ``credits_header``

A poll's answer about a job is read by ``jobs.parse_generation``; the pricing block's
rates by ``pricing.parse_pricing`` (money, kept with the money). Imports nothing of ours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

USD_PER_CREDIT = 0.0000005  # the vendor's own examples: 500000 credits are $0.25


def number(value: Any) -> float | None:
    """A finite number, or a string that is one; None otherwise (``True`` is not 1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


# --- any answer ------------------------------------------------------------------------------


def json_object(response: requests.Response) -> dict[str, Any] | None:
    """The answer's JSON object; None when it is not JSON or not an object."""
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def vendor_message(response: requests.Response) -> str | None:
    """What an error answer says in words (its ``message`` or ``error``, or a short plain
    text body; never an HTML page)."""
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


def request_id(response: requests.Response) -> str | None:
    """The vendor's id for this request: its ``x-request-id`` header, else ``requestId``."""
    rid = response.headers.get("x-request-id")
    if rid:
        return rid
    try:
        data = response.json()
    except ValueError:
        return None
    return str(data.get("requestId")) if isinstance(data, dict) and data.get("requestId") else None


def credits_header(response: requests.Response) -> float | None:
    """The credits the answer's ``x-aimlapi-credits-used`` header says it used."""
    try:
        return float(response.headers["x-aimlapi-credits-used"])
    except (KeyError, ValueError):
        return None


# --- the create, the usage log ---------------------------------------------------------------


def parse_created(payload: dict[str, Any] | None) -> str | None:
    """The generation id a create's answer carries; None when it carries none."""
    gid = payload.get("id") if isinstance(payload, dict) else None
    return gid if isinstance(gid, str) and gid else None


@dataclass(frozen=True)
class LogsPage:
    """One page of the usage log (``GET /v2/logs``): each client request id's generation id
    (its first row's ``inference_id``, None when that row has none), and whether more pages
    follow."""

    found: Mapping[str, str | None] = field(default_factory=dict)
    has_more: bool = False


def parse_logs_page(payload: dict[str, Any] | None) -> LogsPage:
    payload = payload if isinstance(payload, dict) else {}
    rows = payload.get("data") if isinstance(payload.get("data"), list) else []
    found: dict[str, str | None] = {}
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("client_request_id"), str):
            inference = row.get("inference_id")
            found.setdefault(
                row["client_request_id"],
                inference if isinstance(inference, str) and inference else None,
            )
    more = payload.get("pagination")
    return LogsPage(found, isinstance(more, dict) and bool(more.get("has_more")))


# --- money: the catalogue, the balance, the charge -------------------------------------------


def parse_catalogue(payload: Any, model: str) -> Any:
    """The pricing block of ``model`` in a catalogue answer, matched on its id or an alias
    (any case); None when the model or its block is missing."""
    data = payload.get("data") if isinstance(payload, dict) else None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        aliases = item.get("aliases") if isinstance(item.get("aliases"), list) else []
        names = {str(n).lower() for n in [item.get("id"), *aliases] if isinstance(n, str)}
        if model.lower() in names:
            return item.get("pricing")
    return None


VIDEO_TYPE = "internal/video-generations/submit"  # the catalogue's type of a video model


@dataclass(frozen=True)
class ListedModel:
    """A video model as the catalogue lists it: its id, its name, its other names, the link
    to its request schema (``info.docsJson``; None when not given) and its pricing block."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    docs_json: str | None = None
    pricing: Any = None


def parse_video_models(payload: Any) -> list[ListedModel]:
    """The video models of a catalogue answer, each once, in the answer's order; items of
    other types, or without an id, are left out."""
    data = payload.get("data") if isinstance(payload, dict) else None
    models: dict[str, ListedModel] = {}
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or item.get("type") != VIDEO_TYPE:
            continue
        ident = item.get("id")
        if not isinstance(ident, str) or not ident.strip() or ident in models:
            continue
        info = item.get("info") if isinstance(item.get("info"), dict) else {}
        name = info.get("name") if isinstance(info.get("name"), str) else ident
        aliases = item.get("aliases") if isinstance(item.get("aliases"), list) else []
        docs = info.get("docsJson")
        models[ident] = ListedModel(
            id=ident,
            name=name.strip() or ident,
            aliases=tuple(a for a in aliases if isinstance(a, str) and a.strip()),
            docs_json=docs if isinstance(docs, str) and docs.strip() else None,
            pricing=item.get("pricing"),
        )
    return list(models.values())


def parse_model_document(payload: Any) -> dict[str, Any] | None:
    """A model's OpenAPI document, as it came; None for anything that is not one (its
    reading is ``catalogue.normalize``'s)."""
    if isinstance(payload, dict) and isinstance(payload.get("paths"), dict):
        return payload
    return None


def parse_balance(payload: Any) -> float | None:
    """The account's balance in USD from ``GET /v2/billing``; None when the answer gives none
    in dollars."""
    if not isinstance(payload, dict):
        return None
    currency = payload.get("currency", "USD")
    if not isinstance(currency, str) or currency.strip().upper() != "USD":
        return None
    return number(payload.get("current_balance"))


@dataclass(frozen=True)
class Charge:
    """What the vendor reported a response cost: USD, and credits when it said them."""

    usd: float
    credits: float | None = None


def reported_charge(payload: Any = None, headers: Mapping[str, str] | None = None) -> Charge | None:
    """What the vendor says an answer cost (request-tracing-and-cost.md): ``meta.usage``
    (``usd_spent``, else ``credits_used`` or the poll schema's ``tokens_used``) before the
    ``x-aimlapi-usd-spent`` / ``x-aimlapi-credits-used`` headers; credits are turned into USD
    at the vendor's rate. None when it says nothing.

    A create's figure is the job's price, held; the charge is the figure on the poll that says
    ``completed``. A job that ends in error is charged nothing, whatever its create said."""
    meta = payload.get("meta") if isinstance(payload, dict) else None
    usage = meta.get("usage") if isinstance(meta, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    credits = number(usage.get("credits_used"))
    if credits is None:
        credits = number(usage.get("tokens_used"))
    usd = number(usage.get("usd_spent"))
    if usd is None and credits is None:
        usd = number(lower.get("x-aimlapi-usd-spent"))
        credits = number(lower.get("x-aimlapi-credits-used"))
    if usd is None and credits is None:
        return None
    if usd is None and credits is not None:
        usd = credits * USD_PER_CREDIT
    assert usd is not None
    return Charge(round(usd, 9), credits)


# --- chat: the prompt helper's models and answers -----------------------------------------

CHAT_TYPE = "openai/chat-completions"  # the catalogue's type of a chat model


@dataclass(frozen=True)
class ChatModel:
    """A chat model as the catalogue lists it: whether it takes images, and its rates in
    USD a token (None where the catalogue gives no fixed token rate)."""

    id: str
    vision: bool
    usd_in: float | None = None
    usd_out: float | None = None


def parse_chat_models(payload: Any) -> list[ChatModel]:
    """The chat models of a catalogue answer, each once, in its order."""
    data = payload.get("data") if isinstance(payload, dict) else None
    models: dict[str, ChatModel] = {}
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or item.get("type") != CHAT_TYPE:
            continue
        ident = item.get("id")
        if not isinstance(ident, str) or not ident.strip() or ident in models:
            continue
        modalities = item.get("modalities") if isinstance(item.get("modalities"), dict) else {}
        inputs = modalities.get("input") if isinstance(modalities.get("input"), list) else []
        abilities = item.get("capabilities") if isinstance(item.get("capabilities"), list) else []
        rates = _token_rates(item.get("pricing"))
        models[ident] = ChatModel(ident, "image" in inputs or "vision" in abilities, *rates)
    return list(models.values())


def _token_rates(pricing: Any) -> tuple[float | None, float | None]:
    """A fixed pricing block's input and output token rates, in USD a token."""
    units = pricing.get("units") if isinstance(pricing, dict) else None
    rates: dict[str, float] = {}
    for unit in units if isinstance(units, list) else []:
        if not isinstance(unit, dict) or unit.get("name") != "token":
            continue
        price, per = number(unit.get("price")), number(unit.get("per"))
        if price is not None and per and per > 0 and unit.get("measure") in ("input", "output"):
            rates[unit["measure"]] = price / per
    return rates.get("input"), rates.get("output")


@dataclass(frozen=True)
class ChatAnswer:
    """A chat completion: its text, and what it cost (None when not said)."""

    text: str
    usd: float | None = None


def parse_chat(payload: Any, headers: Mapping[str, str] | None = None) -> ChatAnswer | None:
    """The first choice's text and the answer's cost; None for an answer with no text."""
    choices = payload.get("choices") if isinstance(payload, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None
    charge = reported_charge(payload, headers)
    return ChatAnswer(text.strip(), charge.usd if charge is not None else None)
