"""The video models the simulator serves beside ours, and the body check of every create
against the model's own schema, as the vendor refuses them: a field the schema doesn't
name, or a value outside it, is a 400 "Body validation error!" that names the field.

``models/`` holds the vendor's OpenAPI documents, copied unchanged from its documentation
(aimlapi/api-docs at f14fa72): the catalogue links each as the model's ``info.docsJson``,
served where the vendor serves them (``DOCS_PATH``, ``?model=<id>&endpoint=<type>``). The
check reads these raw documents with ``jsonschema``, never the app's own reading of them
(``kling_ui.catalogue``): a mistake the two shared would pass every test (STYLE.md).
Imports nothing of ours.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

FOLDER = Path(__file__).with_name("models")
DOCS_PATH = "/docs-json"  # ?model=<id>&endpoint=<the catalogue type>, as the vendor's
CREATE = "/v2/video/generations"


@lru_cache(maxsize=1)
def documents() -> dict[str, tuple[str, dict[str, Any]]]:
    """Each served model's id -> (its document's file name, its request body schema)."""
    out = {}
    for path in sorted(FOLDER.glob("*.json")):
        model, schema = body_schema(json.loads(path.read_text(encoding="utf-8")))
        out[model] = (path.name, schema)
    return out


def body_schema(document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A document's model id and its create's request body schema."""
    post = document["paths"][CREATE]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    return schema["properties"]["model"]["enum"][0], schema


def document_bytes(model: str) -> bytes | None:
    """A served model's document, by its id; None for any other id."""
    served = documents().get(model)
    return (FOLDER / served[0]).read_bytes() if served else None


def _schema_of(model: Any, added: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if model in added:
        return body_schema(added[model])[1]
    served = documents().get(model)
    return served[1] if served else None


def docs_json(base: str, model: str, endpoint: str) -> str:
    """The ``info.docsJson`` link of ``model``, in the vendor's form."""
    return f"{base}{DOCS_PATH}?model={quote(model, safe='')}&endpoint={quote(endpoint, safe='')}"


def schema_error(
    body: dict[str, Any], *, keys_only: bool = False, added: dict[str, Any] | None = None
) -> str | None:
    """The vendor's words for the first thing wrong with ``body`` against its model's
    schema; None when it passes (or the model is not one of these). ``keys_only``: only
    fields the schema doesn't name (ours has hand-written checks of the values too, which
    take ``duration`` as "5" the way the vendor's server does). ``added``: the documents a
    simulator serves beside these (``Simulator.add_model``), by model id."""
    schema = _schema_of(body.get("model"), added or {})
    if schema is None:
        return None
    unknown = sorted(set(body) - set(schema.get("properties", {})))
    if unknown:
        return f"Body validation error! {unknown[0]}: unrecognized key"
    if keys_only:
        return None
    from jsonschema import Draft7Validator

    # Draft 7 reads OpenAPI 3.0's schema keywords the same; ``default`` and ``example`` are
    # annotations, so the vendor's odd defaults (the string "5") change nothing here.
    errors = sorted(Draft7Validator(schema).iter_errors(body), key=lambda e: list(e.path))
    if not errors:
        return None
    error = errors[0]
    if not error.path:  # a required field missing: the message names it
        return f"Body validation error! {error.message}"
    where = ".".join(str(p) for p in error.path)
    return f"Body validation error! {where}: {error.message[:200]}"


def default_duration(model: str, added: dict[str, Any] | None = None) -> int:
    """The length a create for ``model`` gets when it names none: its schema's default (the
    vendor writes some as strings), else 5."""
    schema = _schema_of(model, added or {})
    prop = (schema.get("properties", {}) if schema else {}).get("duration", {})
    try:
        return int(prop.get("default", 5))
    except (TypeError, ValueError):
        return 5
