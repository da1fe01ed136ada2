"""A catalogue model as the request value knows a model: ``ModelEntry`` -> ``ModelSpec``.

Its image roles are "image" (the first frame) and "last_frame", each with the body field
the model names it by, and reference images where it takes them (one list field); its
other fields are the schema's (not the prompt, the images, the inputs the app can't send
yet, or the hidden ones), each checked against its own schema (``jsonschema``) with words
that name the field. A field with no default is unset (None) and left out of the create.
``register_snapshot`` makes every bundled model's requests possible (``request.register``);
ours keeps its own spec (``request.KLING``).

Imports ``errors``, ``request``, ``rules`` and this package's ``schema``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from typing import Any

from .. import errors
from ..request import FieldSpec, ModelSpec, Rule, register
from ..rules import MAX_PROMPT_CHARS
from .schema import ModelEntry, Overlay, from_text

ROLES = (("first", "image"), ("last", "last_frame"))  # the entry's frame -> the request's role
TYPES = {"integer": int, "number": float, "boolean": bool, "string": str}
PRICED = ("duration", "generate_audio")  # the fields a price reads
MAX_REFERENCES = 4  # reference images, where a model's schema sets no most


def spec(entry: ModelEntry) -> ModelSpec:
    """``entry`` as a ``ModelSpec``."""
    roles = tuple((role, entry.frames[frame]) for frame, role in ROLES if frame in entry.frames)
    skip = {"prompt", *entry.frames.values(), *entry.references, *entry.other_media}
    skip |= set(entry.hidden)
    defaults = entry.defaults()  # prompt rewriting on the vendor's side off
    fields = tuple(
        FieldSpec(
            name,
            defaults.get(name),
            _checker(name, prop),
            annotation=TYPES.get(prop.get("type"), Any),
            description=(prop.get("description") or "").split("\n")[0][:200],
            priced=name in PRICED,
        )
        for name, prop in entry.fields.items()
        if name not in skip
    )
    return ModelSpec(
        model=entry.id,
        roles=tuple(role for role, _ in roles),  # none: a text-to-video model takes no image
        fields=fields,
        image_fields=tuple(field for _, field in roles),
        required_roles=tuple(role for role, field in roles if field in entry.required),
        prompt_limit=_prompt_limit(entry),
        rules=_rules(entry),
        same_aspect=entry.id in _overlay().same_aspect,
        **_references(entry),
    )


def _references(entry: ModelEntry) -> dict[str, Any]:
    """The model's reference images (its first list field of them, at most its schema's
    ``maxItems``, else ``MAX_REFERENCES``), and whether they can't go with a first frame."""
    field = next((f for f in entry.references if entry.fields[f].get("type") == "array"), "")
    if not field:  # a single reference image's field: not offered yet (the note says so)
        return {}
    most = entry.fields[field].get("maxItems")
    return {
        "references": field,
        "max_references": most if isinstance(most, int) and most > 0 else MAX_REFERENCES,
        "references_alone": entry.id in _overlay().references_alone,
    }


@functools.cache
def _overlay() -> Overlay:
    return Overlay.load()


def _rules(entry: ModelEntry) -> tuple[Rule, ...]:
    """The overlay's rules for ``entry`` (those on a field it has and an image it takes)."""
    fields = {r: f for r, f in (("image", "first"), ("last_frame", "last"))}
    return tuple(
        Rule(**{k: v for k, v in raw.items() if k != "models"})
        for raw in _overlay().rules
        if entry.id in raw["models"] and raw["field"] in entry.fields
        and fields.get(raw["role"]) in entry.frames
    )  # fmt: skip


def _prompt_limit(entry: ModelEntry) -> int:
    """The schema's maxLength of the prompt, else the app's own limit."""
    most = entry.fields.get("prompt", {}).get("maxLength")
    return most if isinstance(most, int) and most > 0 else MAX_PROMPT_CHARS


def _checker(name: str, schema: dict[str, Any]) -> Callable[[object], Any]:
    """The check of one field: its value as the schema types it, or ``InputError``."""
    from jsonschema import Draft7Validator

    validator = Draft7Validator(schema)
    kind = schema.get("type")

    def check(value: object) -> Any:
        if value is None:
            return None  # unset: not sent
        if isinstance(value, str):  # the page's choices and a CLI's --set come as text
            with contextlib.suppress(ValueError):  # else the schema's check says what's wrong
                value = from_text(value, kind)
        if isinstance(value, float) and not math.isfinite(value):
            raise errors.InputError(f"{name}: {value} is not a number.")
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        error = next(iter(validator.iter_errors(value)), None)
        if error is not None:
            raise errors.InputError(f"{name}: {error.message}.")
        return value

    return check


def register_snapshot(entries: tuple[ModelEntry, ...]) -> None:
    """Every one of ``entries`` can be asked for by id (``Request.make(model=...)``)."""
    for entry in entries:
        register(spec(entry))
