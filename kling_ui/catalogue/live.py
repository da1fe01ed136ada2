"""The live catalogue's models as entries: each from its own document, read now, else the
bundled snapshot's entry for its id or one of its aliases. A model the vendor adds tomorrow
comes in with its document; one whose document can't be read keeps the snapshot's reading.

``merge`` is given the listing and a way to fetch a document (``client.read_model_document``
in the app; anything in a test), so it does no HTTP itself. Imports this package only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import ordered, snapshot
from .schema import ModelEntry, Overlay, SchemaError, normalize


class Listed(Protocol):
    """What ``merge`` reads of a listed model (``client.ListedModel``)."""

    id: str
    aliases: tuple[str, ...]
    docs_json: str | None


@dataclass(frozen=True)
class Merged:
    """The entries to offer, in order; and the ids left out, with the reason in words."""

    entries: list[ModelEntry]
    left_out: dict[str, str] = field(default_factory=dict)
    from_snapshot: tuple[str, ...] = ()  # ids read from the snapshot, not their document


def merge(
    listed: Iterable[Listed],
    fetch: Callable[[str], dict[str, Any]],
    overlay: Overlay | None = None,
) -> Merged:
    """Entries for ``listed``; ``fetch(url)`` returns a document or raises."""
    overlay = overlay or Overlay.load()
    bundled = {e.id: e for e in snapshot()}
    listed = list(listed)
    listed_ids = {item.id for item in listed}
    found: dict[str, ModelEntry] = {}  # by the listed id
    left_out: dict[str, str] = {}
    fallback: list[str] = []
    for item in listed:
        names = (item.id, *item.aliases)
        if item.id in found or any(n in overlay.retired for n in names):
            if item.id not in found:
                left_out[item.id] = "retired"
            continue
        entry, why = None, "no schema link"
        if item.docs_json:
            try:
                entry = normalize(fetch(item.docs_json), overlay)
            except SchemaError as exc:
                why = f"its schema can't be read: {exc}"
            except Exception as exc:  # noqa: BLE001 - a fetch that failed, in any way
                why = f"its schema was not fetched ({type(exc).__name__})"
            if entry is not None and entry.id not in names:
                entry, why = None, f"its schema is for another model ({entry.id})"
        if entry is None:  # the snapshot's reading, by its id or an alias no other item has
            own = [n for n in names if n == item.id or n not in listed_ids]
            entry = next((bundled[n] for n in own if n in bundled), None)
            if entry is None:
                left_out[item.id] = why
                continue
            fallback.append(item.id)
        needs = set(entry.required) - {"prompt", *entry.frames.values()}
        if needs:  # a video to edit, a voice to sync: not this app's yet
            left_out[item.id] = f"it needs what this app can't send yet: {', '.join(sorted(needs))}"
        else:
            found[item.id] = entry
    unique = list({e.id: e for e in found.values()}.values())
    return Merged(ordered(unique, overlay), left_out, tuple(fallback))
