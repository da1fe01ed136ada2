"""The model catalogue, ``GET /v1/models``, as the simulator serves it: ours (priced by the
pricing block in force), a text-to-video sibling listed first (so that a client must match
the id), then the other video models of ``schemas`` (Kling O1, Veo 3.1, Seedance, Wan,
Runway), each with its ``info.docsJson`` link, then the chat models (``chat``); the filters
(a parameter's values OR'd, comma-separated or repeated, any case; parameters AND'd), the
``include`` sections, and the ``ETag`` it carries.

Imports the constants of ``vendor.py``, the pricing block of ``money.py`` and ``schemas``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from . import chat, schemas
from .money import pricing_document
from .vendor import CATALOGUE_SECTIONS, MODEL

VIDEO_TYPE = "internal/video-generations/submit"


def listing(
    pricing: dict[str, Any] | None,
    query: dict[str, list[str]],
    docs_base: str = "",
    added: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The catalogue for the parsed query string: the models its filters keep, with the
    sections ``include`` asks for. ``docs_base``: this simulator's address, for the models'
    ``info.docsJson`` links; ``added``: the documents of models served beside (by id)."""
    wanted = _query_values(query, "include")
    if "all" in wanted or any(v in ("true", "1") for v in _query_values(query, "details")):
        wanted = set(CATALOGUE_SECTIONS)
    models = []
    for model in _catalogue_models(pricing, docs_base, added or {}):
        if not _catalogue_filters_keep(model, query):
            continue
        item = {k: v for k, v in model.items() if k not in CATALOGUE_SECTIONS}
        item.update({k: model[k] for k in CATALOGUE_SECTIONS if k in wanted and k in model})
        models.append(item)
    return {"object": "list", "data": models}


def _catalogue_models(
    pricing: dict[str, Any] | None, docs_base: str, added: dict[str, Any]
) -> list[dict[str, Any]]:
    """The catalogue: this simulator's model (priced by ``pricing``; no block when None), its
    text-to-video sibling, listed first, so that a client must match the id, then the other
    models of ``schemas``."""
    alias = MODEL.split("/", 1)[1]
    ours: dict[str, Any] = {
        "id": MODEL,
        "info": {
            "name": "Kling v2.6 Pro Image-to-Video",
            "developer": "Kling AI",
            "description": "Kling v2.6 Pro turns a still image into a video, with native audio.",
            "url": "",
            "docsUrl": "https://docs.aimlapi.com/api-references/video-models/kling-ai/"
            "video-v2.6-pro-image-to-video",
        },
        "type": VIDEO_TYPE,
        "aliases": [alias],
        "tags": ["playground:video", "tier:tier_2"],
        "modalities": {"input": ["image", "text"], "output": ["video"]},
        "capabilities": ["image_to_video", "audio_generation"],
    }
    if pricing is not None:
        ours["pricing"] = pricing
    sibling = json.loads(json.dumps(ours))
    sibling.update(id=MODEL.replace("image-to-video", "text-to-video"))
    sibling["aliases"] = [alias.replace("image-to-video", "text-to-video")]
    sibling["info"]["name"] = "Kling v2.6 Pro Text-to-Video"
    sibling["info"]["docsUrl"] = sibling["info"]["docsUrl"].replace("image", "text")
    sibling["modalities"]["input"] = ["text"]
    sibling["capabilities"] = ["text_to_video", "audio_generation"]
    sibling["pricing"] = pricing_document("variants")
    for item in (sibling, ours):
        item["info"]["docsJson"] = schemas.docs_json(docs_base, item["id"], item["type"])
    schemas_of = {i: served[1] for i, served in schemas.documents().items()}
    schemas_of.update({i: schemas.body_schema(doc)[1] for i, doc in added.items()})
    others = [_other(ident, schema, docs_base) for ident, schema in schemas_of.items()]
    videos = [sibling, ours, *(o for o in others if o["id"] not in (MODEL, sibling["id"]))]
    return [*videos, *chat.catalogue_items()]


def _other(ident: str, schema: dict[str, Any], docs_base: str) -> dict[str, Any]:
    """One of the other served models, priced at this simulator's rates."""
    frame = "image_url" in schema.get("required", ())
    vendor, _, name = ident.partition("/")
    return {
        "id": ident,
        "info": {
            "name": name.replace("-", " ").replace("_", " ").title(),
            "developer": vendor.title(),
            "description": schema.get("title", ident),
            "url": "",
            "docsUrl": "",
            "docsJson": schemas.docs_json(docs_base, ident, VIDEO_TYPE),
        },
        "type": VIDEO_TYPE,
        "aliases": [name],
        "tags": ["playground:video"],
        "modalities": {"input": ["image", "text"] if frame else ["text"], "output": ["video"]},
        "capabilities": ["image_to_video" if frame else "text_to_video"],
        "pricing": pricing_document("fixed"),
    }


def _query_values(query: dict[str, list[str]], name: str) -> set[str]:
    """A catalogue parameter's values, comma-separated or repeated, lower-cased."""
    return {
        part.strip().lower() for v in query.get(name, []) for part in v.split(",") if part.strip()
    }


def _catalogue_filters_keep(model: dict[str, Any], query: dict[str, list[str]]) -> bool:
    modalities = model.get("modalities", {})
    fields = {
        "id": [model["id"], *model["aliases"]],
        "type": [model["type"]],
        "tags": model["tags"],
        "modalities": [*modalities.get("input", []), *modalities.get("output", [])],
        "input_modalities": modalities.get("input", []),
        "output_modalities": modalities.get("output", []),
        "capabilities": model.get("capabilities", []),
    }
    for name, have in fields.items():
        wanted = _query_values(query, name)
        if wanted and not wanted & {h.lower() for h in have}:
            return False
    return True


def etag(data: bytes) -> str:
    """A weak validator in the vendor's form (``W/"<length hex>-<digest>"``)."""
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()[:27]
    return f'W/"{len(data):x}-{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison, as for a GET: any listed validator (or ``*``) equal to ``etag``."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag.removeprefix("W/") for t in tags)
