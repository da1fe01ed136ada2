"""The prompt helper ("Improve prompt"): a chat model that sees the image suggests a better
prompt for the chosen video model, on the same key, before anything is spent on video.

``PromptHelper.improve`` sends the first frame (downscaled to ``PICTURE_SIDE``, as a JPEG
data URI in an ``image_url`` part), the person's prompt, a variant ("cinematic", "motion",
"shorter") and what the video model can do (its prompt's length, sound, a last frame, a
negative prompt) to a vision chat model: ``settings.prompt_model``, else the cheapest that
takes images in the vendor's catalogue (asked at most every ``catalogue_refresh`` seconds).
It is spending: refused where a video would be, its price written in the ledger (``helps``)
before it is sent and settled after (a failed call costs nothing), and counted against the
server key's budgets (``Limits.admitting_help``). Nothing of the form changes here: the
suggestion is returned, for the person to edit, take or leave.

Imports ``client``, ``config``, ``errors``, ``images``, ``request``, ``rules`` and the
service's ``access`` and ``limits``.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from .. import errors
from ..client import (
    AIMLClient,
    ChatAnswer,
    ChatModel,
    Sessions,
    quiet_session,
    read_chat_models,
)
from ..config import Settings
from ..history import Ledger
from ..images import prepare_image
from ..request import KLING, spec_of
from ..rules import check_prompt
from ..runner import Backend
from .access import DEMO, Access
from .limits import Limits

log = logging.getLogger(__name__)

PICTURE_SIDE = 512  # px: the helper sees the picture's content, not its detail
MAX_TOKENS = 300  # the suggestion's length, at most (a prompt and a negative prompt)
PICTURE_TOKENS = 1500  # the most a picture of PICTURE_SIDE counts as, on the models we know
MAX_NEGATIVE = 2500  # characters of a suggested negative prompt, at most (the form's own)
HELPER_LOST = (
    "The helper's answer was lost after the question was sent, so it may be charged (a "
    "fraction of a cent, counted here as spent). Nothing else changed: try again."
)
UNKNOWN_RATE_USD = 0.01  # a call's price when the catalogue gives none (never "free")
VARIANTS = {
    "": "Improve it: keep what the person asked for, make it specific and visual.",
    "cinematic": "Make it more cinematic: camera movement, lens, light and mood.",
    "motion": "Describe the motion only: what moves and how, not what the picture shows.",
    "shorter": "Make it shorter: one sentence, only what matters most.",
}
SYSTEM = (
    "You write prompts for an AI video model that animates a still image. Answer with the "
    "improved prompt alone on the first line, no quotes, no preamble."
)


@dataclass(frozen=True)
class Suggestion:
    """What the helper suggests: a prompt, a negative prompt ("" where none was asked
    for), what it cost (None: not said) and the chat model that answered."""

    prompt: str
    negative_prompt: str
    usd: float | None
    model: str


class PromptHelper:
    """Asks a chat model for a better prompt; one per service."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        access: Access,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.access = access
        self.limits = limits
        self._clock = clock
        self._monotonic = monotonic
        self._session = quiet_session()
        self._sessions: Sessions | None = None
        self._models: dict[str, tuple[float, list[ChatModel]]] = {}  # base URL -> (when, list)
        self._lock = threading.Lock()

    def improve(
        self,
        image: str | None,
        prompt: str,
        video_model: str,
        *,
        variant: str = "",
        api_key: str | None = None,
        owner: str = "",
        negative: bool = False,
    ) -> Suggestion:
        """A suggestion for ``prompt`` (and the image, where the video model starts from
        one) for ``video_model``; ``negative``: a negative prompt too, where the model takes
        one. ``InputError`` (or a ``KlingUIError`` of the call) in words, nothing else
        changed."""
        spec = spec_of(video_model)
        words = (prompt or "").strip()
        if words:
            words = check_prompt(words, spec.prompt_limit)
        takes_image = "image" in spec.roles
        if not words and not (image and takes_image):
            raise errors.InputError(
                "Write a prompt (or add an image) first: the helper improves what is there."
            )
        if variant not in VARIANTS:
            raise errors.InputError(f"The helper knows no variant {variant!r}.")
        negative = negative and any(f.name == "negative_prompt" for f in spec.fields)
        picture = _small_picture(image, owner) if image and takes_image else None
        backend = self.access.backend_for(api_key)
        chat = self.chat_model(backend, vision=picture is not None)
        body = {
            "model": chat.id,
            "max_tokens": MAX_TOKENS,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": _asked(words, video_model, variant, negative, picture)},
            ],
        }
        answer = self._ask(backend, chat, body, owner)
        suggested, said_negative = _read(answer.text)
        suggested = _clean(suggested)[: spec.prompt_limit].strip()
        if not suggested:
            raise errors.KlingUIError("The helper answered without a prompt. Try again.")
        return Suggestion(
            suggested,
            _clean(said_negative)[:MAX_NEGATIVE].strip() if negative else "",
            answer.usd,
            chat.id,
        )

    def _ask(self, backend: Backend, chat: ChatModel, body: dict, owner: str) -> ChatAnswer:
        """The call, as spending: priced at its most and written with the budget's check,
        sent, then settled: what it cost; nothing when refused or never reached; its price
        still counted when it left and no answer (or none readable) came back."""
        price = _price(chat, body)
        help_id = uuid.uuid4().hex
        with self.limits.admitting_help(backend, owner, price):
            self.ledger.add_help(help_id, owner, key_ref=backend.key_ref, usd=price,
                                 model=chat.id, at=self._clock())  # fmt: skip
        try:
            answer = self._client(backend).chat(body)
        except (errors.APIStatusError, errors.APIConnectionError):
            self.ledger.settle_help(help_id, None)  # refused, or never reached: not charged
            raise
        except errors.OutcomeUnknown:
            raise errors.KlingUIError(HELPER_LOST) from None  # its price stays counted
        # A reported $0 is not said (as for a video): the price counted stays.
        self.ledger.settle_help(help_id, answer.usd or price)
        return answer

    def close(self) -> None:
        self._session.close()
        if self._sessions is not None:
            self._sessions.poll.close()
            self._sessions.create.close()

    def chat_model(self, backend: Backend, *, vision: bool = True) -> ChatModel:
        """The chat model to ask: the setting's, else the cheapest in the catalogue that
        takes images (``vision``: one that does is needed)."""
        if self.settings.prompt_model.strip() and backend.name != DEMO:  # the demo's own
            return ChatModel(self.settings.prompt_model.strip(), True)
        listed = self._listed(backend)
        usable = [m for m in listed if m.vision or not vision]
        if not usable:
            raise errors.ServerError(
                "No chat model that takes images is offered now, so the helper can't look at "
                "the picture. Try again later."
            )
        return min(usable, key=lambda m: (_price(m), m.id))  # the rates, on the same call

    def _listed(self, backend: Backend) -> list[ChatModel]:
        base = backend.settings.base_url.rstrip("/")
        kept = self._models.get(base)
        now = self._monotonic()
        if kept is not None and now - kept[0] < self.settings.catalogue_refresh:
            return kept[1]
        try:
            listed = read_chat_models(self._session, base, timeout=(3.05, 10.0))
        except errors.KlingUIError as exc:
            log.warning("the chat models could not be read: %s", exc.base_message)
            if kept is not None:
                return kept[1]
            raise errors.ServerError(
                "The list of chat models could not be read, so the helper can't answer now. "
                "Try again in a minute."
            ) from None
        if listed:  # an empty list is not kept: asked again next time
            self._models[base] = (now, listed)
        return listed

    def _client(self, backend: Backend) -> AIMLClient:
        with self._lock:
            if self._sessions is None:
                self._sessions = Sessions.for_settings(self.settings)
        return AIMLClient(backend.api_key, backend.settings, self._sessions)


def _price(model: ChatModel, body: dict | None = None) -> float:
    """A call's price before it is sent, from the model's token rates: at most, as far as
    can be known (the body's words at three characters a token, a picture's most, and the
    whole answer allowed), so a budget's last cents are not passed."""
    if model.usd_in is None or model.usd_out is None:
        return UNKNOWN_RATE_USD
    words = sum(len(_text_of(m["content"])) for m in body["messages"]) if body else 0
    tokens_in = words // 3 + PICTURE_TOKENS
    return round(tokens_in * model.usd_in + MAX_TOKENS * model.usd_out, 9)


def _text_of(content: str | list) -> str:
    """A message's words (its text parts; a picture is priced apart)."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def _clean(text: str) -> str:
    """The helper's words, without what a prompt can't hold (control characters)."""
    return "".join(ch for ch in text if ch == " " or unicodedata.category(ch)[0] != "C")


def _small_picture(image: str, owner: str) -> str:
    """The image, checked as a frame is, as a small JPEG data URI for the helper's eyes."""
    prepared = prepare_image(image, fit="pad", owner=owner)
    if not prepared.jpeg:  # a link: the helper's host fetches it, as the video's would
        return prepared.data_uri
    with Image.open(io.BytesIO(prepared.jpeg)) as picture:
        picture.draft("RGB", (PICTURE_SIDE, PICTURE_SIDE))  # decoded at a fraction of its size
        picture.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
        out = io.BytesIO()
        picture.convert("RGB").save(out, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _asked(words: str, model: str, variant: str, negative: bool, picture: str | None) -> list:
    """The user message: what to improve, for which model, how; and the picture."""
    spec = spec_of(model)
    fields = {f.name for f in spec.fields}
    can = [f"a prompt of at most {spec.prompt_limit} characters"]
    if "generate_audio" in fields:
        can.append("it makes sound, so sounds may be described")
    if "last_frame" in spec.roles:
        can.append("it can end on a given last frame")
    lines = [
        f"The video model: {model} ({'; '.join(can)}).",
        f"Variant: {variant or 'improve'}. {VARIANTS[variant]}",
        f"Prompt: {words}" if words else "Prompt: (none yet: suggest one from the picture)",
    ]
    if picture is None:
        lines.append("There is no picture: the video is made from the words alone.")
    if negative:
        lines.append(
            "Also suggest a negative prompt (what to avoid), on a second line starting 'Negative:'."
        )
    parts: list[dict] = [{"type": "text", "text": "\n".join(lines)}]
    if picture is not None:
        parts.append({"type": "image_url", "image_url": {"url": picture, "detail": "low"}})
    return parts


def _read(text: str) -> tuple[str, str]:
    """The suggested prompt (the first line, unquoted) and the negative prompt (a line
    starting "Negative:"), from the helper's answer."""
    prompt, negative = "", ""
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        if line.lower().startswith("negative:"):
            negative = negative or line.split(":", 1)[1].strip()
        elif not prompt:
            prompt = line.strip().strip('"').strip()
    return prompt, negative


class PromptMethods:
    """The service's public method that is the prompt helper's (``GenerationService``'s)."""

    prompts: PromptHelper

    def improve_prompt(
        self, image: str | None, prompt: str, model: str, *, variant: str = "",
        api_key: str | None = None, owner: str = "", negative: bool = False,
    ) -> Suggestion:  # fmt: skip
        """The prompt helper's suggestion (``PromptHelper.improve``) for ``model``, one the
        app offers now: it is spending, checked and written as such."""
        if model != KLING.model and self.offer().entry(model) is None:  # type: ignore[attr-defined]
            raise errors.InputError(f"This app offers no model {model!r}; /models lists them.")
        return self.prompts.improve(image, prompt, model, variant=variant, api_key=api_key,
                                    owner=owner, negative=negative)  # fmt: skip
