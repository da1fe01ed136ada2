"""The price beside Generate and the batch's, and ``/estimate``: their events
(``PriceEvents``) and wiring (``listen``). The Markdown they write to is laid out by the
form and the batch. The page's prices are for the model whose form is shown: ours by the
fields a price reads, as one mapping (so does ``/estimate``, published with them as its
parameters: ``fields.takes_fields``), another model by the request its form makes
(``form.studio_request``).

Imports ``base``, ``batch`` (its count), ``fields``, ``form`` (``Form``,
``studio_request``), ``pricing`` and ``request`` (the spec).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..pricing import Fields, dollars
from ..request import KLING
from .base import QUIET, PageBase
from .batch import BatchPanel, _batch_count
from .fields import takes_fields
from .form import Form, studio_request

if TYPE_CHECKING:
    from .handlers import Handlers


def listen(handlers: Handlers, page: gr.Blocks, form: Form, batch: BatchPanel) -> None:
    """The price beside Generate and the batch's, as the inputs that set them change (the
    key's field when it is left, since the balance is read with it). The batch's follows
    the prompts and the takes as they are typed, not when the box is left; the last
    keystroke's price wins (``always_last``)."""
    studio = form.studio
    spares = list(studio.slots.values())
    single = [studio.shown, form.api_key, form.negative, form.duration, form.audio, *spares]
    singles = [form.duration.change, form.audio.change, form.api_key.blur, page.load,
               studio.shown.change, *(spare.change for spare in spares)]  # fmt: skip
    gr.on(singles, handlers.form_price, single, form.price, trigger_mode="always_last",
          **QUIET)  # fmt: skip
    # One event for every trigger, so that ``always_last`` holds across them: with one
    # event per trigger, an upload's answer (read before the prompts were typed) could
    # land after the prompts' and leave the batch unpriced.
    many = [batch.images, batch.prompts, batch.takes, *single]
    triggers = [batch.images.change, batch.prompts.change, batch.takes.change,
                form.duration.change, form.audio.change, studio.shown.change,
                *(spare.change for spare in spares)]  # fmt: skip
    gr.on(triggers, handlers.batch_form_price, many, batch.price, trigger_mode="always_last",
          **QUIET)  # fmt: skip


class PriceEvents(PageBase):
    """What a video or a batch will cost, before anything is sent (and the balance)."""

    # Published with the fields a price reads in the place of ``fields`` (its docstring is
    # the API's description, so it is said here).
    @takes_fields(KLING, priced=True)
    def estimate(self, fields: Fields, count: int = 1) -> dict:
        """What ``count`` videos of ``duration`` seconds, with or without audio, will cost,
        before anything is sent: usd (total; null when not known in advance), usd_each,
        usd_per_second, source ("catalogue" or "table"), as_of (the price's date), words."""
        try:
            return self.service.estimate(fields, count).as_dict()
        except errors.KlingUIError as exc:
            return {"error": exc.user_message, "usd": None}

    def price_view(self, fields: Fields, api_key: str = "") -> str:
        """The line beside Generate: the price of what is about to be sent (``fields``: the
        form's), and the balance."""
        return self._price_words(fields, 1, api_key)

    def batch_form_price(
        self, images: Any, prompts: str, takes: int, model: str, api_key: str, *values: Any
    ) -> str:
        """The batch's price as it stands, for the model whose form is shown (``model``,
        ``values``: as ``form_price`` reads them)."""
        try:
            shown, priced = self._priced(model, values)
        except errors.InputError as exc:
            return f"Price: {exc.user_message}"
        if shown.model == KLING.model:
            return self.batch_price(images, prompts, takes, priced, api_key)
        count = _batch_count(images, prompts, takes, needs_images=bool(shown.first))
        if not count:
            return "Add images and prompts to see the batch's price."
        return self._price_words(priced, count, api_key)

    def form_price(self, model: str, api_key: str, *values: Any) -> str:
        """The line beside Generate for the model whose form is shown (``model``;
        ``values``: the form's negative prompt, length and audio switch, then its spare
        fields in ``SLOTS``' order): ours by its length and audio switch (``price_view``),
        another model by every field its price reads."""
        try:
            shown, priced = self._priced(model, values)
        except errors.InputError as exc:
            return f"Price: {exc.user_message}"
        if shown.model == KLING.model:
            return self.price_view(priced, api_key)
        return self._price_words(priced, 1, api_key)

    def _priced(self, model: str, values: tuple) -> tuple[Any, Fields]:
        """The shown model's form and what its price reads: ours, the fields a price reads;
        another model, the request its form makes (the prompt is not priced: any will do).
        ``InputError`` in words for a model no longer offered or a field it refuses."""
        shown = self.sent_plan(model)
        negative, length, sound, *spares = values
        if shown.model == KLING.model:
            return shown, {"duration": length, "generate_audio": sound}
        asked = studio_request(shown, (None, "-", negative, length, sound), spares,
                               needs_image=False)  # fmt: skip
        return shown, asked

    def batch_price(
        self, images: Any, prompts: str, takes: int, fields: Fields, api_key: str = ""
    ) -> str:
        """The batch's price as it stands: images x prompt lines x takes, each of the form's
        ``fields``."""
        count = _batch_count(images, prompts, takes)
        if not count:
            return "Add images and prompts to see the batch's price."
        return self._price_words(fields, count, api_key)

    def _price_words(self, fields: Fields, count: int, api_key: str) -> str:
        try:
            quote = self.service.estimate(fields, count)
        except errors.KlingUIError as exc:
            return f"Price: {exc.user_message}"
        text = f"**Price:** {quote.words()}"
        typed = bool((api_key or "").strip())
        if self.service.demo_mode and not typed:
            return text + " — what it would cost; demo videos are free."
        if self.service.settings.on_space and not typed:
            return text  # a Space's own account balance is the owner's business
        balance = self.service.balance(api_key)
        if balance is not None:
            text += f" · balance {dollars(balance)}"
            if quote.usd is not None and balance < quote.usd:
                text += " (below the price)"
        return text
