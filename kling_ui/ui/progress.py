"""The job's section: the progress card, the video, and (hidden from view, there for
programs, scripts and the page's own script) the generation id and the status text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from .card import EMPTY
from .parts import LocalMP4Video

# The card's copy button (a click anywhere in the card that lands on [data-copy]).
COPY_JS = """
element.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy id"; }, 1500);
  }, () => {});
});
"""


@dataclass
class JobPanel:
    gen_id: Any
    status: Any
    video: Any
    card: Any
    cont: Any  # "Continue this video": the next part from its last frame

    @property
    def outputs(self) -> list[Any]:
        """What a job event streams to on the page."""
        return [self.gen_id, self.status, self.video, self.card]

    @property
    def api_outputs(self) -> list[Any]:
        """What the API's job events stream: the id, the status text and the video."""
        return [self.gen_id, self.status, self.video]


def job_section() -> JobPanel:
    card = gr.HTML(EMPTY, js_on_load=COPY_JS, elem_id="progress-card", padding=False)
    video = LocalMP4Video(
        label="Video", autoplay=True, interactive=False, buttons=["download"], elem_id="video"
    )
    cont = gr.Button(
        "Continue this video from its last frame", size="sm", elem_id="continue-current"
    )
    gen_id = gr.Textbox(label="Generation id", visible="hidden", elem_id="generation-id")
    status = gr.Textbox(label="Status", visible="hidden", elem_id="status")
    return JobPanel(gen_id, status, video, card, cont)
