"""A model's request schema, as the vendor publishes it (an OpenAPI 3.0 document per model,
the catalogue item's ``info.docsJson``), turned into our own form: a ``ModelEntry``.

What the form, the checks and the create body need is read from the schema once, here:
the request body's fields (local ``$ref``s resolved), which are required, which field is
the first frame, the last frame or a reference image (the end frame alone has three names
across models: the overlay says which), the media inputs the app can't send yet, and the
vendor-side prompt rewriting switches (shown, and off unless the person turns them on).

Defaults of the wrong type are coerced to the declared type (82 of the vendor's schemas give
``duration`` as the string "5" beside an integer enum); a default that is still not one of
its enum's values is dropped, so the form falls back to the first choice.

Imports only the standard library: no HTTP (the client fetches documents), no Gradio.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OVERLAY_PATH = Path(__file__).with_name("overlay.json")
REQUEST_PATH = "/v2/video/generations"  # the universal create; older vendor paths also count
KINDS = ("image-to-video", "text-to-video", "start-end")


class SchemaError(ValueError):
    """A document that is not a model's request schema (no create operation, no model id)."""


@dataclass(frozen=True)
class Overlay:
    """The hand-kept part (``overlay.json``): what the schemas can't say."""

    first_frame: tuple[str, ...]
    last_frame: tuple[str, ...]
    references: tuple[str, ...]
    prompt_rewriting: tuple[str, ...]
    hidden: tuple[str, ...]
    order: tuple[str, ...]
    labels: dict[str, str]
    retired: tuple[str, ...] = ()  # ids no page or model list shows any more: not offered
    # Rules between a model's fields and its images, stated only in the vendor's prose
    # (``request.Rule``'s fields and the ``models`` they hold for).
    rules: tuple[dict[str, Any], ...] = ()
    same_aspect: tuple[str, ...] = ()  # models whose last frame must match the first's shape
    references_alone: tuple[str, ...] = ()  # models whose references can't go with a frame

    @classmethod
    def load(cls, path: Path = OVERLAY_PATH) -> Overlay:
        raw = json.loads(path.read_text(encoding="utf-8"))
        lists = ("first_frame", "last_frame", "references", "prompt_rewriting", "hidden", "order",
                 "retired", "rules", "same_aspect", "references_alone")  # fmt: skip
        return cls(**{k: tuple(raw.get(k, ())) for k in lists}, labels=dict(raw.get("labels", {})))


@dataclass(frozen=True, eq=False)
class ModelEntry:
    """One video model in our form. ``schema`` is the request body's JSON schema (without
    ``model``), refs resolved and defaults coerced: the form is built from it and every
    value is checked against it. Shared (``snapshot()`` keeps one of each): never change
    its ``schema`` in place."""

    id: str
    name: str
    kind: str  # one of KINDS
    schema: dict[str, Any]
    frames: dict[str, str] = field(default_factory=dict)  # "first"/"last" -> field name
    references: tuple[str, ...] = ()  # fields taking reference images
    other_media: tuple[str, ...] = ()  # video and audio inputs: not offered yet
    prompt_rewriting: tuple[str, ...] = ()  # vendor-side prompt rewriting switches
    hidden: tuple[str, ...] = ()  # fields the form leaves out
    coerced: tuple[str, ...] = ()  # fields whose default was coerced or dropped

    @property
    def fields(self) -> dict[str, Any]:
        return self.schema.get("properties", {})

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.schema.get("required", ()))

    def defaults(self) -> dict[str, Any]:
        """Each field's default, as the create would carry it; prompt rewriting off."""
        out = {
            name: prop["default"]
            for name, prop in self.fields.items()
            if "default" in prop and name not in self.hidden
        }
        for name in self.prompt_rewriting:  # sent off, whatever the vendor's default
            if self.fields[name].get("type") == "boolean":
                out[name] = False
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "kind": self.kind, "frames": self.frames,
            "references": list(self.references), "other_media": list(self.other_media),
            "prompt_rewriting": list(self.prompt_rewriting), "hidden": list(self.hidden),
            "coerced": list(self.coerced), "schema": self.schema,
        }  # fmt: skip

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelEntry:
        return cls(
            id=raw["id"], name=raw["name"], kind=raw["kind"], schema=raw["schema"],
            frames=dict(raw.get("frames", {})), references=tuple(raw.get("references", ())),
            other_media=tuple(raw.get("other_media", ())),
            prompt_rewriting=tuple(raw.get("prompt_rewriting", ())),
            hidden=tuple(raw.get("hidden", ())), coerced=tuple(raw.get("coerced", ())),
        )  # fmt: skip


def request_schema(document: dict[str, Any]) -> dict[str, Any]:
    """The create operation's JSON request body schema, local ``$ref``s resolved."""
    for path, operations in (document.get("paths") or {}).items():
        post = (operations or {}).get("post")
        if not post or not (path == REQUEST_PATH or path.startswith("/v2/generate/video/")):
            continue
        content = (post.get("requestBody") or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        if isinstance(schema, dict):
            return _resolve(schema, document, ())
    raise SchemaError("the document has no create operation (POST /v2/video/generations)")


def _resolve(node: Any, document: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, document, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/") or ref in seen:
            raise SchemaError(f"a reference this app can't follow: {ref}")
        target: Any = document
        try:
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target[int(part)] if isinstance(target, list) else target[part]
        except (KeyError, IndexError, TypeError, ValueError):
            raise SchemaError(f"a reference to nothing: {ref}") from None
        return _resolve(target, document, (*seen, ref))
    return {key: _resolve(value, document, seen) for key, value in node.items()}


def model_id(schema: dict[str, Any]) -> str:
    """The id the schema declares: its ``model`` property's single enum value."""
    ids = ((schema.get("properties") or {}).get("model") or {}).get("enum") or []
    if not ids or not isinstance(ids[0], str):
        raise SchemaError("the schema declares no model id")
    return ids[0]


def from_text(value: str, kind: Any) -> Any:
    """``value`` (text) as the schema's ``kind`` types it: a finite number (a whole one for
    an integer) or a switch ("true"/"false"); ``ValueError`` when it isn't one."""
    if kind in ("integer", "number"):
        number = float(value)  # ValueError for text that is no number
        if not math.isfinite(number) or (kind == "integer" and not number.is_integer()):
            raise ValueError(value)
        return int(number) if kind == "integer" else number
    if kind == "boolean" and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(value)


def _coerce(prop: dict[str, Any]) -> bool:
    """Coerce ``prop``'s default (and, recursively, its items' and properties') to the
    declared type; drop one that can't be or is not among the enum's values. True when
    anything changed."""
    changed = False
    for child in (prop.get("properties") or {}).values():
        changed |= isinstance(child, dict) and _coerce(child)
    if isinstance(prop.get("items"), dict):
        changed |= _coerce(prop["items"])
    if "default" not in prop:
        return changed
    default, kind = prop["default"], prop.get("type")
    value: Any = default
    try:
        if isinstance(default, str) and kind in ("integer", "number", "boolean"):
            value = from_text(default, kind)
        elif kind == "string" and type(default) in (int, float):
            value = str(int(default) if float(default).is_integer() else default)
    except ValueError:
        value = None
    enum = prop.get("enum")
    # An enum member by type as well as value: True is not the 1 of [0, 1].
    choices = [(type(c), c) for c in enum] if isinstance(enum, list) else None
    if value is None or (choices is not None and (type(value), value) not in choices):
        del prop["default"]
        return True
    if value is not default or type(value) is not type(default):
        prop["default"] = value
        return True
    return changed


def _is_media(name: str) -> bool:
    return name.endswith(("_url", "_urls")) or name in ("reference_images", "image_list")


def normalize(document: dict[str, Any], overlay: Overlay | None = None) -> ModelEntry:
    """One vendor document (its OpenAPI file) as a ``ModelEntry``."""
    overlay = overlay or Overlay.load()
    schema = copy.deepcopy(request_schema(document))
    ident = model_id(schema)
    props = {k: v for k, v in (schema.get("properties") or {}).items() if k != "model"}
    required = [r for r in schema.get("required", ()) if r != "model"]
    for name, prop in props.items():  # a Swagger-style ``required: true`` on the field itself
        flag = isinstance(prop, dict) and isinstance(prop.get("required"), bool)
        if flag and prop.pop("required") and name not in required:
            required.append(name)
    coerced = tuple(
        name for name, prop in props.items() if isinstance(prop, dict) and _coerce(prop)
    )
    frames = {}
    for role, names in (("first", overlay.first_frame), ("last", overlay.last_frame)):
        found = next((n for n in names if n in props), None)
        if found:
            frames[role] = found
    references = tuple(n for n in overlay.references if n in props)
    known = {*frames.values(), *references}
    other = tuple(n for n in props if _is_media(n) and n not in known)
    first, last = frames.get("first"), frames.get("last")
    if first in required and last in required:
        kind = "start-end"
    elif first in required:
        kind = "image-to-video"
    else:
        kind = "text-to-video"  # a first or last frame may still be offered (optional)
    body = {"type": "object", "properties": props, "required": required}
    if schema.get("additionalProperties") is False:
        body["additionalProperties"] = False
    return ModelEntry(
        id=ident,
        name=overlay.labels.get(ident) or _name(ident),
        kind=kind,
        schema=body,
        frames=frames,
        references=references,
        other_media=other,
        prompt_rewriting=tuple(n for n in overlay.prompt_rewriting if n in props),
        hidden=tuple(n for n in overlay.hidden if n in props),
        coerced=coerced,
    )


# The vendors' names, for a model the overlay doesn't label (its id's first part).
VENDORS = {"klingai": "Kling", "google": "Google", "openai": "OpenAI", "alibaba": "Alibaba",
           "bytedance": "ByteDance", "minimax": "MiniMax", "runway": "Runway",
           "runway-gen3": "Runway Gen-3", "pixverse": "PixVerse", "luma": "Luma",
           "tencent": "Tencent", "lumaai": "Luma"}  # fmt: skip


def _name(ident: str) -> str:
    """A readable name from an id, for models the overlay doesn't label:
    "klingai/video-o1-image-to-video" is "Kling video o1 image to video"."""
    vendor, _, rest = ident.partition("/")
    if not rest:
        return ident
    words = rest.replace("_", " ").replace("/", " ").replace("-", " ").split()
    # A version's dots stay ("veo 3.1"); "i2v" and "t2v" are said in words.
    said = {"i2v": "image to video", "t2v": "text to video"}
    return " ".join([VENDORS.get(vendor, vendor), *(said.get(w, w) for w in words)])
