"""The prompt's tools (issue 26): the counter with the shown model's hints, this browser's
last prompts, and **Improve prompt**, whose suggestion shows under the prompt for the person
to edit, use or discard; and Ctrl+Enter (Cmd+Enter) in the prompt to press Generate.

Improve asks the service's prompt helper (``service.prompts``: a chat model that sees the
image, on the same key, priced and counted as spending); nothing of the form changes until
**Use it** is pressed, and nothing is sent for video until Generate. A refused or failed
call says why where the suggestion would be, and the form stays as it was.

Its layout (``prompt_tools``), its events (``HelperEvents``, the page's and ``/improve_prompt``
for programs) and their wiring (``listen``). Imports ``base``, ``errors`` and ``request``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..pricing import dollars
from ..request import KLING, spec_of
from .base import OUR_FAULT, PRIVATE, QUIET, PageBase

if TYPE_CHECKING:
    from .form import Form
    from .wiring import Handlers, Page

log = logging.getLogger(__name__)

# The suggestion's ways to try again, each a button: (its words, the helper's variant).
VARIANTS = (("More cinematic", "cinematic"), ("Describe the motion only", "motion"),
            ("Shorter", "shorter"))  # fmt: skip
PROMPTS_KEY = "kling-ui-prompts-v1"
KEPT_PROMPTS = 10  # the last prompts this browser offers again
# Ctrl+Enter (Cmd+Enter) in the prompt or the negative prompt presses
# Generate, when it can be pressed (once per page; the capture phase, before Gradio's own).
CTRL_ENTER_JS = """() => {
  if (window.__kuiCtrlEnter) return;
  window.__kuiCtrlEnter = true;
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    const inside = event.target.closest && event.target.closest("#prompt, #negative");
    const button = document.querySelector("#generate");
    if (!inside || !button || button.disabled) return;
    event.preventDefault();
    event.stopPropagation();
    button.click();
  }, true);
}"""


@dataclass
class HelperPanel:
    count: Any  # the prompt's counter, with the shown model's hints
    recent: Any  # gr.Dropdown: this browser's last prompts
    improve: Any
    again: dict[str, Any]  # variant -> its button, in the suggestion: ask again that way
    group: Any  # the suggestion, hidden until one comes (or why none came)
    suggestion: Any
    negative: Any  # the suggested negative prompt, where the model takes one
    note: Any
    use: Any
    discard: Any
    kept: Any = None  # gr.BrowserState: the last prompts (made with the page's secret)


def prompt_tools(count_text: str) -> HelperPanel:
    """Under the prompt: one row (the counter, the last prompts once there are some,
    Improve), as tall as the counter alone was, so Generate stays in view; then the
    suggestion, hidden until there is one, with the ways to ask again."""
    with gr.Row(equal_height=True, elem_id="prompt-tools"):
        count = gr.Markdown(count_text, elem_id="prompt-count")
        recent = gr.Dropdown(
            choices=_offered([]), value="", label="Your last prompts", show_label=False,
            container=False, elem_id="recent-prompts", min_width=150, scale=1, visible=False,
        )  # fmt: skip
        improve = gr.Button("Improve prompt", size="sm", elem_id="improve", scale=0,
                            min_width=130)  # fmt: skip
    with gr.Group(visible=False, elem_id="suggestion") as group:
        suggestion = gr.Textbox(
            label="Suggested prompt: edit it, then Use it (nothing is sent for video until "
            "you press Generate)",
            lines=2, max_lines=6, elem_id="suggestion-text",
        )  # fmt: skip
        negative = gr.Textbox(label="Suggested negative prompt", lines=1, visible=False,
                              elem_id="suggestion-negative")  # fmt: skip
        note = gr.Markdown(elem_id="suggestion-note")
        with gr.Row(equal_height=True, elem_id="suggestion-actions"):
            use = gr.Button("Use it", size="sm", variant="primary", elem_id="use-suggestion",
                            min_width=80)  # fmt: skip
            again = {
                variant: gr.Button(words, size="sm", elem_id=f"improve-{variant}", min_width=80)
                for words, variant in VARIANTS
            }
            discard = gr.Button("Discard", size="sm", elem_id="discard-suggestion", min_width=80)
    return HelperPanel(count, recent, improve, again, group, suggestion, negative, note, use,
                       discard)  # fmt: skip


def listen(handlers: Handlers, page: Page) -> None:
    """Improve, Use it, Discard; the last prompts (kept when Generate is pressed, offered
    when the page loads); Ctrl+Enter."""
    form: Form = page.form
    helper = form.helper
    assert helper is not None
    shown = form.studio.shown if form.studio is not None else gr.State(KLING.model)
    answer = [helper.group, helper.suggestion, helper.negative, helper.note, helper.use]
    for variant, button in (("", helper.improve), *helper.again.items()):
        button.click(
            handlers.improve_page,
            [form.image, form.prompt, shown, gr.State(variant), form.api_key,
             page.owner.session],
            answer, concurrency_limit=None, **PRIVATE,
        )  # fmt: skip
    helper.use.click(handlers.use_suggestion, [helper.suggestion, helper.negative],
                     [form.prompt, form.negative, helper.group], **QUIET)  # fmt: skip
    helper.discard.click(lambda: gr.update(visible=False), None, helper.group, **QUIET)
    form.generate.click(handlers.remember_prompt, [form.prompt, helper.kept],
                        [helper.kept, helper.recent], **QUIET)  # fmt: skip
    page.blocks.load(handlers.recent_prompts, helper.kept, helper.recent, **QUIET)
    helper.recent.input(handlers.pick_recent, helper.recent, [form.prompt, helper.recent],
                        **QUIET)  # fmt: skip
    page.blocks.load(None, None, None, js=CTRL_ENTER_JS, **QUIET)


class HelperEvents(PageBase):
    """Improve prompt, its suggestion taken or left, and the last prompts."""

    def improve_page(
        self,
        image: str | None,
        prompt: str,
        model: str,
        variant: str,
        api_key: str,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, Any, Any, Any]:
        """Improve on the page (or one of the ways to ask again: ``variant``): (the
        suggestion's group, its prompt, its negative prompt, the note, Use it). A refusal
        shows its reason alone; nothing else changes."""
        answer = self.improve_prompt(image, prompt, model, variant, api_key, owner_token,
                                     request=request)  # fmt: skip
        if "error" in answer:
            return (gr.update(visible=True), gr.update(visible=False),
                    gr.update(visible=False), f"⚠ {answer['error']}",
                    gr.update(visible=False))  # fmt: skip
        negative = answer["negative_prompt"]
        cost = answer["usd"]
        price = dollars(cost) if isinstance(cost, (int, float)) else "its price not said"
        note = f"Suggested by {answer['chat_model']} ({price}). Edit it, then **Use it**."
        return (gr.update(visible=True), gr.update(visible=True, value=answer["prompt"]),
                gr.update(visible=bool(negative), value=negative), note,
                gr.update(visible=True))  # fmt: skip

    def improve_prompt(
        self,
        image: str | None,
        prompt: str,
        model: str = "",
        variant: str = "",
        api_key: str = "",
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """``/improve_prompt``: a better prompt for the image (optional for a model that makes
        video from text) and the prompt, for ``model`` (empty: Kling v2.6 Pro image to
        video; /models lists the others), by a chat model that sees the image, on the same
        key as /generate (it spends a fraction of a cent; it counts against the same
        limits). ``variant``: "" (improve), "cinematic", "motion" (describe the motion
        only) or "shorter". Answers {prompt, negative_prompt (where the model takes one),
        usd, chat_model}, or {error} in words; nothing is sent for video."""
        visitor = self._visitor(owner_token, request)
        chosen = str(model or "").strip() or KLING.model
        try:
            spec_of(chosen)
            suggestion = self.service.improve_prompt(
                image or None, prompt or "", chosen, variant=str(variant or "").strip(),
                api_key=api_key, owner=visitor, negative=True,
            )  # fmt: skip
        except errors.KlingUIError as exc:
            return {"error": exc.user_message}
        except Exception:
            log.exception("the prompt helper failed unexpectedly")
            return {"error": OUR_FAULT}
        return {"prompt": suggestion.prompt, "negative_prompt": suggestion.negative_prompt,
                "usd": suggestion.usd, "chat_model": suggestion.model}  # fmt: skip

    def use_suggestion(self, suggestion: str, negative: str) -> tuple[Any, Any, Any]:
        """The suggestion, as edited, into the prompt (and its negative prompt, if any)."""
        if not (suggestion or "").strip():
            return gr.skip(), gr.skip(), gr.update(visible=False)
        return (
            suggestion,
            (negative if (negative or "").strip() else gr.skip()),
            gr.update(visible=False),
        )

    def remember_prompt(self, prompt: str, kept: Any) -> tuple[Any, Any]:
        """Generate pressed: the prompt goes first in this browser's last prompts."""
        words = (prompt or "").strip()
        mine = [p for p in (kept if isinstance(kept, list) else []) if isinstance(p, str)]
        if not words:
            return gr.skip(), gr.skip()
        mine = [words, *(p for p in mine if p != words)][:KEPT_PROMPTS]
        return mine, gr.update(choices=_offered(mine), value="", visible=True)

    def recent_prompts(self, kept: Any) -> Any:
        """The page opened: this browser's last prompts to pick from (hidden if none)."""
        mine = [p for p in (kept if isinstance(kept, list) else []) if isinstance(p, str)]
        mine = mine[:KEPT_PROMPTS]
        return gr.update(choices=_offered(mine), value="", visible=bool(mine))

    def pick_recent(self, picked: str | None) -> tuple[Any, Any]:
        """A last prompt picked: into the prompt; the list is ready for the next pick."""
        if not picked:
            return gr.skip(), gr.skip()
        return picked, gr.update(value="")


def _offered(prompts: list[str]) -> list[tuple[str, str]]:
    """The last prompts as choices, each shortened for the list, after the list's name."""
    return [("Your last prompts…", ""), *((p if len(p) <= 60 else p[:59] + "…", p)
                                         for p in prompts)]  # fmt: skip
