"""Chat completions as the simulator serves them (``POST /v1/chat/completions``, and the
same body at ``/chat/completions``): a few chat models in the catalogue (two that take
images, one that doesn't), each create's body checked as the vendor's schemas say (a model,
messages with roles, ``image_url`` parts whose URL is an https link or a Base64 image, no
image for a model without vision), and a deterministic answer.

The answer is what the app asks for: the suggested prompt on the first line, and where the
request asks for one, ``Negative: ...`` on the second. It is made from the request's own
words and a digest of the image it came with (so a test can tell the image arrived and
which), never from the key. Its cost is the tokens at the catalogue's rates, in
``meta.usage`` as the vendor reports it.

Imports ``vendor`` (the image check) and ``money`` (credits).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from .money import credits

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
CHAT_TYPE = "openai/chat-completions"
# id -> (takes images, USD per million input tokens, per million output tokens)
CHAT_MODELS: dict[str, tuple[bool, float, float]] = {
    "google/gemini-3-1-flash-lite": (True, 0.25, 1.50),
    "bytedance/dola-seed-2-0-mini": (True, 0.10, 0.40),
    "moonshot/kimi-k2-6": (False, 0.60, 2.50),
}
IMAGE_TOKENS = 258  # what one image counts as, whatever its size (the vendor's example)


def catalogue_items() -> list[dict[str, Any]]:
    """The chat models as catalogue items, priced per token."""
    items = []
    for ident, (vision, per_in, per_out) in CHAT_MODELS.items():
        vendor, _, name = ident.partition("/")
        items.append({
            "id": ident,
            "info": {"name": name.replace("-", " ").title(), "developer": vendor.title(),
                     "description": "A chat model.", "url": "", "docsUrl": ""},
            "type": CHAT_TYPE,
            "aliases": [name],
            "tags": ["playground:chat"],
            "modalities": {"input": ["text", "image"] if vision else ["text"],
                           "output": ["text"]},
            "capabilities": ["streaming", *(["vision"] if vision else [])],
            "pricing": {"kind": "fixed", "currency": "USD", "units": [
                {"name": "token", "measure": "input", "price": per_in, "per": 1_000_000},
                {"name": "token", "measure": "output", "price": per_out, "per": 1_000_000},
            ]},
        })  # fmt: skip
    return items


def chat_error(body: Any) -> str | None:
    """The vendor's checks of a chat body, in its words; None when it would be taken."""
    if not isinstance(body, dict):
        return "Body validation error! body: expected object"
    model = body.get("model")
    if model not in CHAT_MODELS:
        return f"Body validation error! model: unknown model {model!r}"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Body validation error! messages: expected a non-empty array"
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system", "developer", "user", "assistant"
        ):  # fmt: skip
            return f"Body validation error! messages.{n}.role: expected a known role"
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            return f"Body validation error! messages.{n}.content: expected string or array"
        for m, part in enumerate(content):
            problem = _part_error(f"messages.{n}.content.{m}", part, model)
            if problem:
                return problem
    most = body.get("max_tokens", 1)
    if not isinstance(most, int) or isinstance(most, bool) or most < 1:
        return "Body validation error! max_tokens: expected an integer of at least 1"
    return None


def _part_error(where: str, part: Any, model: str) -> str | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return None
    if kind != "image_url":
        return f"Body validation error! {where}: expected a text or image_url part"
    if not CHAT_MODELS[model][0]:
        return f"Body validation error! {where}: {model} does not take images"
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str) or not (url.startswith("https://") or _image_bytes(url)):
        return f"Body validation error! {where}.image_url.url: expected a URL or a Base64 image"
    return None


def _image_bytes(url: str) -> bytes | None:
    match = re.match(r"^data:image/(jpeg|png|webp|gif);base64,", url)
    if not match:
        return None
    try:
        return base64.b64decode(url[match.end() :], validate=True) or None
    except ValueError:
        return None


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The completion for a body ``chat_error`` took: deterministic, from its words and
    the digest of its first image."""
    texts, images = [], []
    for message in body["messages"]:
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for part in parts:
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                images.append(part["image_url"]["url"])
    words = "\n".join(texts)
    asked = _line(words, "Prompt:") or "the scene"
    seen = hashlib.sha256((images[0] if images else "").encode()).hexdigest()[:6]
    picture = f" in the picture ({seen})" if images else ""
    asked = asked.rstrip(".")
    lines = [{
        "motion": f"The subject{picture} turns slowly as {asked.lower()}; the camera holds still.",
        "shorter": f"{asked}, slow push-in{picture}.",
    }.get(_line(words, "Variant:").split(" ")[0].strip(".").lower(),
          f"Slow cinematic push-in on the subject{picture}: {asked}, soft light.")]  # fmt: skip
    if "Negative:" in words and "negative prompt" in words.lower():
        lines.append("Negative: blur, flicker, distorted faces, text")
    content = "\n".join(lines)
    per_in, per_out = CHAT_MODELS[body["model"]][1:]
    tokens_in = len(words) // 4 + IMAGE_TOKENS * len(images)
    tokens_out = len(content) // 4
    usd = (tokens_in * per_in + tokens_out * per_out) / 1_000_000
    return {
        "id": "chatcmpl-" + hashlib.sha256(content.encode()).hexdigest()[:12],
        "object": "chat.completion",
        "model": body["model"].split("/")[-1],
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": None}}],
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                  "total_tokens": tokens_in + tokens_out},
        "meta": {"usage": {"credits_used": credits(usd), "usd_spent": round(usd, 9)}},
    }  # fmt: skip


def _line(text: str, label: str) -> str:
    """The rest of the line that starts with ``label`` (the app's request names the
    person's prompt so), stripped; "" when there is none."""
    for line in text.splitlines():
        if line.startswith(label):
            return line[len(label) :].strip()
    return ""


def redacted(body: Any) -> Any:
    """A chat body as the request log keeps it: each image part's URL by its length."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return body
    messages = []
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            content = [_short(part) for part in content]
            message = {**message, "content": content}
        messages.append(message)
    return {**body, "messages": messages}


def _short(part: Any) -> Any:
    image = part.get("image_url") if isinstance(part, dict) else None
    if isinstance(image, dict) and isinstance(image.get("url"), str):
        kind = image["url"].split(";")[0] if image["url"].startswith("data:") else "link"
        return {**part, "image_url": {**image, "url": f"<{kind} {len(image['url'])} chars>"}}
    return part
