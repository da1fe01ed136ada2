"""Every video model the app can offer, in our own form (``schema.ModelEntry``).

``schema.py`` turns a model's request schema (the vendor's OpenAPI document, the catalogue
item's ``info.docsJson``) into an entry, with ``overlay.json``: the hand-kept part for what
schemas can't say. ``snapshot.json`` is the bundled set of entries, written by ``build.py``
from the vendor's documents; it will serve demo mode and the times the live catalogue
can't be reached. ``snapshot()`` reads it once, in the overlay's order. ``specs.py`` makes
each entry a ``request.ModelSpec``, so that ``Request.make`` takes any of these models.

Imports ``errors`` and ``request`` (in ``specs.py``); ``jsonschema`` checks a field's value.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .schema import KINDS, ModelEntry, Overlay, SchemaError, normalize, request_schema

SNAPSHOT_PATH = Path(__file__).with_name("snapshot.json")

__all__ = [
    "KINDS", "ModelEntry", "Overlay", "SchemaError", "normalize", "request_schema",
    "snapshot", "snapshot_date", "ordered",
]  # fmt: skip


def ordered(entries: list[ModelEntry], overlay: Overlay) -> list[ModelEntry]:
    """The overlay's order first (Kling v2.6 Pro image to video at the top), then by id."""
    rank = {ident: n for n, ident in enumerate(overlay.order)}
    return sorted(entries, key=lambda e: (rank.get(e.id, len(rank)), e.id))


@lru_cache(maxsize=1)
def snapshot_date() -> str:
    """The date of the vendor's documents the snapshot was written from."""
    raw = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    return str(raw.get("as_of") or "") or "the app's release"


@lru_cache(maxsize=1)
def snapshot() -> tuple[ModelEntry, ...]:
    """The bundled entries, in order."""
    raw = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    return tuple(ModelEntry.from_json(item) for item in raw["models"])
