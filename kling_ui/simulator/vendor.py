"""The vendor's contract as the simulator keeps it: the model's id, the paths it serves, the
text limit, the moderation error, and the checks a create's body must pass.

The checks are written for the simulator alone, independently of the client's (STYLE.md): a
mistake the two shared would pass every test. The other models' bodies are checked against
their own schemas (``schemas``); ours has hand-written checks, then its schema's field names.
Imports ``schemas``.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from . import schemas

MODEL = "klingai/video-v2-6-pro-image-to-video"
CREATE_PATHS = ("/v2/video/generations", "/v2/generate/video/kling/generation")
DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "assets" / "sample.mp4"
MAX_TEXT = 2500
LOGS_PATH = "/v2/logs"
BILLING_PATH = "/v2/billing"
# The catalogue's canonical path and the two the vendor says serve exactly the same data.
CATALOGUE_PATHS = ("/v1/models", "/models", "/api/v1/models")
CATALOGUE_SECTIONS = ("pricing", "modalities", "capabilities")
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The body fields that carry an image (a link or Base64): checked as one, recorded by length.
IMAGE_FIELDS = ("image_url", "last_image_url", "tail_image_url")
# The body fields that carry a list of reference images, each checked and recorded so.
REFERENCE_FIELDS = ("image_urls", "reference_image_urls", "reference_images")
MODERATION = ("ContentModeration", "The image or prompt was flagged by content moderation.")


def valid_client_request_id(value: str | None) -> str | None:
    """``value`` if the vendor would keep it as a client request id, else None (ignored)."""
    return value if value and _CLIENT_REQUEST_ID.fullmatch(value) else None


def data_uri_bytes(value: object) -> bytes | None:
    """The bytes of a ``data:...;base64,`` image; None for a link or anything else."""
    if not isinstance(value, str) or not value.startswith("data:") or "," not in value:
        return None
    try:
        return base64.b64decode(value.split(",", 1)[1], validate=True)
    except ValueError:
        return None


def validation_error(
    body: Any, added: dict[str, Any] | None = None, any_model: bool = False
) -> str | None:
    """The vendor's body checks, written independently of the client's. ``added``: the
    documents of the models a simulator serves beside its own (by id). ``any_model``
    (demo mode's): a model with no document here is taken with its prompt and images
    checked (the demo offers every bundled model; its videos are simulated anyway)."""
    if not isinstance(body, dict):
        return "Body validation error! body: expected object"
    if body.get("model") != MODEL:
        if body.get("model") in schemas.documents() or body.get("model") in (added or {}):
            return _another_models_error(body, added)
        if any_model and isinstance(body.get("model"), str) and body["model"]:
            return _any_models_error(body)
        return f"Body validation error! model: expected '{MODEL}', received {body.get('model')!r}"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return (
            "Body validation error! prompt: expected non-empty string, received "
            + repr(prompt)[:40]
        )
    if len(prompt) > MAX_TEXT:
        return (
            f"Body validation error! prompt: expected string of at most {MAX_TEXT} characters,"
            f" received {len(prompt)}"
        )
    image = body.get("image_url")
    if not isinstance(image, str) or not image:
        return "Body validation error! image_url: expected string, received " + repr(image)[:40]
    problem = _image_error("image_url", image)
    if problem:
        return problem
    duration = body.get("duration", 5)
    # bool is an int in Python; JSON 5.0 is 5 to a JavaScript server, so it passes.
    if type(duration) not in (int, float, str) or duration not in (5, 10, "5", "10"):
        return f"Body validation error! duration: expected 5 or 10, received {duration!r}"
    negative = body.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        return f"Body validation error! negative_prompt: expected string, received {negative!r}"
    if negative is not None and len(negative) > MAX_TEXT:
        return (
            "Body validation error! negative_prompt: expected string of at most "
            f"{MAX_TEXT} characters, received {len(negative)}"
        )
    if "generate_audio" in body and not isinstance(body["generate_audio"], bool):
        received = body["generate_audio"]
        return f"Body validation error! generate_audio: expected boolean, received {received!r}"
    return schemas.schema_error(body, keys_only=True)


def _image_error(name: str, image: str) -> str | None:
    """An image field's value: a link, or Base64 (in a data URI or bare) that decodes."""
    if re.match(r"^https?://", image):
        return None
    b64 = image.split(",", 1)[1] if image.startswith("data:") and "," in image else image
    if image.startswith("data:") and not re.match(r"^data:image/[a-z+.-]+;base64,", image):
        return f"Body validation error! {name}: expected a base64 image data URI"
    try:
        if not base64.b64decode(b64, validate=True):
            raise ValueError("empty")
    except ValueError:
        return f"Body validation error! {name}: expected a URL or a Base64-encoded image"
    return None


def _any_models_error(body: dict[str, Any]) -> str | None:
    """A model this simulator has no schema for: a prompt, and images that decode."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return "Body validation error! prompt: expected non-empty string"
    return _images_error(body)


def _another_models_error(body: dict[str, Any], added: dict[str, Any] | None) -> str | None:
    """One of the other models' bodies: its schema, then each image it carries."""
    return schemas.schema_error(body, added=added) or _images_error(body)


def _images_error(body: dict[str, Any]) -> str | None:
    """The first image field whose value is not a link or an image in Base64."""
    for name in IMAGE_FIELDS:
        if isinstance(body.get(name), str):
            problem = _image_error(name, body[name])
            if problem:
                return problem
    for name in REFERENCE_FIELDS:
        items = body.get(name)
        if not isinstance(items, list):
            continue
        for n, item in enumerate(items):
            problem = _image_error(f"{name}.{n}", item) if isinstance(item, str) else None
            if problem:
                return problem
    return None
