"""The API as AI agents get it, when the app runs with ``--mcp`` (``KLING_UI_MCP=1``):
Gradio's MCP server makes each public event a tool, named after its function and described
by its docstring, which is why these are written for an agent.

What differs from the API for programs (``handlers``), and why:

- The key comes only from the connection's ``X-AIMLAPI-Key`` header (``gr.Header``: not in
  any tool's schema), never as a tool argument, which an agent's transcript and an MCP
  library's debug log would keep. With no header: the server's key, the demo, or, where
  visitors must bring keys, a refusal that says how to set the header.
- Each tool answers one JSON object as text (Gradio's MCP server hands several outputs, or a
  dict, back as a Python repr).
- ``submit`` queues and answers at once, for clients that give up on a call after a
  minute; ``generate``, ``extend`` and ``resume`` wait for the video (1 to 5 minutes).
- ``/batch``'s list of files can't be a tool (Gradio 6.31's MCP schema for file lists is
  broken): agents call ``submit`` once per image.

Each tool is a thin wrapper of the page's own events (``handlers.Handlers``): it takes the
model's fields as one mapping, published as the spec's parameters (``fields.takes_fields``:
the tool's schema is read from them, and its docstring's ``Args:`` describes them for an
agent); the request is made by the form's ``form_request``, the job followed by the job
events' steps, and each answer's status is the step's typed phase (``watching.Step``;
``ENDED`` from ``states``), not words read back from the status text. ``listen`` wires the
tools in the API's place.

Imports ``base``, ``fields``, ``form``, ``watching``, ``callers``, ``request`` (the spec),
``states``, and the client's ``VideoHost`` for an image link (the handlers only as a type).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import gradio as gr
from gradio.utils import get_upload_folder

from .. import errors
from ..client import TooLarge, TooSlow, VideoHost
from ..config import Settings
from ..images import MAX_INPUT_BYTES
from ..request import KLING
from ..states import FINAL_PHASES
from .base import KEPT, PRESS_AGAIN, _root
from .callers import agent_of
from .fields import Fields, takes_fields
from .watching import Step

if TYPE_CHECKING:
    from .handlers import Handlers
    from .wiring import Page

KEY_HEADER = "X-AIMLAPI-Key"
KEY_HINT = (
    f"Agents: put the AIML API key in the {KEY_HEADER} header of this MCP server's "
    "connection (the client's configuration), never in a tool argument."
)
log = logging.getLogger(__name__)
NO_IMAGE_GIVEN = "Give an image: an https link to a public image, or a data URI."
NOT_A_LINK = (
    "The image must be an https link to a public image (https://...) or a data URI "
    "(data:image/jpeg;base64,...). Nothing was sent."
)
# A data URI's image travels in the MCP call's body, and again in Gradio's loopback copy
# of it (``web.MAX_MCP_BODY_BYTES``, 16 MiB); the ``mcp`` library's transports refuse a
# body over their own cap first (4 MiB in mcp 1.30; Gradio sets none of its own) with a
# plain 413. Base64 is 4/3 of the image, and the rest of the call needs room (two prompts
# of 2,500 characters are at most 60 KB even escaped): ``ENVELOPE`` is kept for it.
ENVELOPE = 256 * 1024


def _body_cap() -> int:
    """The most an MCP call's body may be here: ours, or the ``mcp`` library's if less."""
    from ..web import MAX_MCP_BODY_BYTES

    try:
        from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE as library
    except ImportError:  # an mcp with no cap of its own (or none: no MCP server at all)
        return MAX_MCP_BODY_BYTES
    return min(MAX_MCP_BODY_BYTES, int(library))


# The largest inline image, in whole 100 KB: 2,900,000 bytes under a 4 MiB cap.
DATA_URI_IMAGE_BYTES = (_body_cap() - ENVELOPE) * 3 // 4 // 100_000 * 100_000
DATA_URI_MOST = -(-DATA_URI_IMAGE_BYTES // 3) * 4  # its Base64 characters, padding included
DATA_URI_WORDS = f"at most {DATA_URI_IMAGE_BYTES / 1000**2:g} MB"
BAD_DATA_URI = "That data URI is not a base64 image (data:image/jpeg;base64,...). Nothing was sent."
BIG_DATA_URI = (
    f"That data URI's image is over {DATA_URI_IMAGE_BYTES / 1000**2:g} MB "
    f"({DATA_URI_IMAGE_BYTES:,} bytes), the most an MCP call carries: send a bigger image "
    "as an https link to it. Nothing was sent."
)
NOT_STORED = (
    "This server could not store the image (its disk may be full). Try again later. "
    "Nothing was sent."
)
LINK_SECONDS = 30.0  # an image link's whole fetch
# The low balance's second press, as an agent makes it.
AGAIN = "Nothing was sent. Call the same tool again within 2 minutes to send it anyway."
# The phases after which an agent need not call again: a job that ended (``states``' final
# phases, but not a watch that stopped or a paused job: those carry on), and a call that
# found nothing to follow or failed on our side.
ENDED = (FINAL_PHASES - {"stopped", "paused"}) | {"not resumed", "error"}


@dataclass
class AgentTools:
    """The tools, each a thin wrapper of the page's own handlers."""

    handlers: Handlers

    @takes_fields(KLING)
    def generate(
        self,
        image: str | None,
        prompt: str,
        fields: Fields,
        fit: str = "reject",
        owner_token: str = "",
        model: str = "",
        end_image: str = "",
        options: str = "",
        x_aimlapi_key: gr.Header = None,  # type: ignore[assignment]
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[str]:
        """Make a 5 or 10 second video from one still image with Kling v2.6 Pro (or another model: models lists them), and wait until it
        is ready (usually 1 to 5 minutes). It spends money on a real key: call estimate first to
        learn the price. If your client gives up on calls after a minute, call submit instead and
        then status or resume. Answers JSON: generation_id (keep it: resume and status take it),
        status, final, message, and video (an MP4 URL on this server) once completed.

        Args:
            image: The still image to animate: an https URL of a public image (at most 50 MB), or a data URI (data:image/jpeg;base64,..., at most 2.9 MB). JPEG, PNG, WebP, GIF or BMP; sides 300 px or more, shape between 1:2.5 and 2.5:1.
            prompt: What should move and how the camera moves, in plain words (at most 2500 characters).
            negative_prompt: What to avoid in the video (optional).
            duration: Length of the video in seconds: 5 or 10 (10 costs twice as much).
            generate_audio: Whether the video gets generated sound.
            fit: An image whose shape is outside 1:2.5 to 2.5:1: reject (refuse it; nothing is sent), crop (cut it to the nearest allowed shape around its centre) or pad (add white bars).
            model: The video model's id (optional; empty: Kling v2.6 Pro image to video). For a model that makes video from text, leave image empty.
            end_image: The last frame, for a model that takes one (model_schema's inputs): an https URL or a data URI, like image.
            options: The model's other fields as a JSON object, like {"duration": 8} (model_schema lists them); they win over negative_prompt, duration and generate_audio.
        """
        settings = self.handlers.service.settings
        try:
            path = _image_file(image, settings) if image or not model else None
            last = _image_file(end_image, settings) if end_image else None
        except errors.KlingUIError as exc:
            yield _json({"generation_id": None, "status": "not sent", "final": True,
                         "message": exc.user_message})  # fmt: skip
            return
        try:
            asked = partial(self.handlers.model_request, path, prompt, fields, model, options)
            steps = self.handlers.generate_steps(
                path, asked, _key(x_aimlapi_key), fit or "reject",
                self._owner(owner_token, x_aimlapi_key, request), "", request, end_image=last,
            )  # fmt: skip
            for step in steps:
                if step.gid:  # the job is made: its images are in the request, not needed
                    _remove(path)
                    _remove(last)
                yield self._answer(step, x_aimlapi_key, request)
        finally:
            _remove(path)
            _remove(last)

    @takes_fields(KLING)
    def submit(
        self,
        image: str | None,
        prompt: str,
        fields: Fields,
        takes: int = 1,
        fit: str = "reject",
        owner_token: str = "",
        model: str = "",
        options: str = "",
        x_aimlapi_key: gr.Header = None,  # type: ignore[assignment]
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> str:
        """Queue 1 to 4 videos of one still image with Kling v2.6 Pro (or another model: models lists them) and answer at once, without
        waiting: the server makes them whether or not anyone watches. It spends money on a real key:
        call estimate first. Answers JSON: items, each with job_id (give it to status, which never
        waits, or to resume, which waits for the video), price and batch_id; or error, in words,
        with nothing sent.

        Args:
            image: The still image to animate: an https URL of a public image (at most 50 MB), or a data URI (data:image/jpeg;base64,..., at most 2.9 MB). JPEG, PNG, WebP, GIF or BMP; sides 300 px or more, shape between 1:2.5 and 2.5:1.
            prompt: What should move and how the camera moves, in plain words (at most 2500 characters).
            negative_prompt: What to avoid in the video (optional).
            duration: Length of each video in seconds: 5 or 10.
            generate_audio: Whether the videos get generated sound.
            takes: How many videos of this image and prompt, 1 to 4 (each is paid).
            fit: An image whose shape is outside 1:2.5 to 2.5:1: reject (refuse it; nothing is sent), crop (cut it to the nearest allowed shape around its centre) or pad (add white bars).
            model: The video model's id (optional; empty: Kling v2.6 Pro image to video). For a model that makes video from text, leave image empty; one that needs a last frame takes generate.
            options: The model's other fields as a JSON object, like {"duration": 8} (model_schema lists them); they win over negative_prompt, duration and generate_audio.
        """
        service = self.handlers.service
        owner = self._owner(owner_token, x_aimlapi_key, request)
        visitor = self.handlers._visitor(owner, request)
        path: str | None = ""
        try:
            if not image and not model:  # as generate says it
                raise errors.InputError(NO_IMAGE_GIVEN)
            asked = self.handlers.model_request(image, prompt, fields, model, options)
            low = self.handlers._unconfirmed_low_balance(
                visitor, _key(x_aimlapi_key), asked, _count(takes)
            )
            if low:
                return _json({"error": f"{low} {AGAIN}", "items": []})
            path = _image_file(image, service.settings) if image or not model else None
            answer = service.submit(
                path, asked, takes=int(takes or 1), api_key=_key(x_aimlapi_key),
                fit=fit or "reject", owner=visitor,
            )  # fmt: skip
        except errors.KlingUIError as exc:
            return _json(_refusal(exc.user_message))
        except (TypeError, ValueError):
            return _json({"error": "takes must be a whole number from 1 to 4; nothing was sent."})
        finally:
            _remove(path)
        return _json(answer)

    @takes_fields(KLING)
    def extend(
        self,
        generation_id: str,
        prompt: str,
        fields: Fields,
        owner_token: str = "",
        model: str = "",
        options: str = "",
        x_aimlapi_key: gr.Header = None,  # type: ignore[assignment]
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[str]:
        """Make a video longer: the next 5 or 10 seconds of a finished video, starting from
        its last frame, and wait until it is ready (1 to 5 minutes; it spends money like
        generate). Answers JSON as generate does; once completed, video is the whole chain
        (every part so far, stitched into one MP4). Call it again with the new
        generation_id to go on.

        Args:
            generation_id: The finished video to continue: the generation_id or job_id an earlier answer gave.
            prompt: What happens next, in plain words (at most 2500 characters).
            negative_prompt: What to avoid in this part (optional).
            duration: Length of the new part in seconds: 5 or 10.
            generate_audio: Whether the new part gets generated sound.
            model: The video model for the new part (optional; empty: Kling v2.6 Pro image to video): any model that starts from an image (models lists them).
            options: The model's other fields as a JSON object, like {"duration": 8} (model_schema lists them); they win over negative_prompt, duration and generate_audio.
        """
        owner = self._owner(owner_token, x_aimlapi_key, request)
        asked = partial(self.handlers.model_request, None, prompt, fields, model, options,
                        needs_image=False)  # fmt: skip
        steps = self.handlers.extend_steps(
            generation_id, asked, _key(x_aimlapi_key), owner, request
        )
        for step in steps:
            yield self._answer(step, x_aimlapi_key, request)

    def resume(
        self,
        generation_id: str,
        owner_token: str = "",
        x_aimlapi_key: gr.Header = None,  # type: ignore[assignment]
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[str]:
        """Wait for a video started earlier (by generate, submit, this app's page or its command
        line) until it is ready, fetching it if needed; never starts a new paid job. Answers JSON as
        generate does: status, final, message, and video (an MP4 URL) once completed.

        Args:
            generation_id: The job's id: the generation_id or job_id an earlier answer gave.
        """
        owner = self._owner(owner_token, x_aimlapi_key, request)
        steps = self.handlers.resume_steps(generation_id, _key(x_aimlapi_key), owner, request)
        for step in steps:
            yield self._answer(step, x_aimlapi_key, request)

    def status(
        self,
        generation_id: str,
        x_aimlapi_key: gr.Header = None,  # type: ignore[assignment]
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> str:
        """Look at a job once, without waiting: its state (queued, generating, completed, failed,
        ...), how long it has run, its price and charge, and video (an MP4 URL) once completed.
        Answers JSON; call it again a few seconds later to follow a job.

        Args:
            generation_id: The job's id: the generation_id or job_id an earlier answer gave.
        """
        return _json(self._status(generation_id, x_aimlapi_key, request))

    @takes_fields(KLING, priced=True)
    def estimate(self, fields: Fields, count: int = 1) -> str:
        """The price in US dollars of videos before anything is sent (free; sends nothing). Answers
        JSON: usd (the total, null when not known in advance), usd_each, source (the vendor's
        catalogue or the table shipped with the app), as_of, and words.

        Args:
            duration: Length of each video in seconds: 5 or 10.
            generate_audio: Whether the videos get generated sound.
            count: How many videos.
        """
        return _json(self.handlers.estimate(**fields, count=count))

    def models(self) -> str:
        """The video models this app can make videos with (free; sends nothing). Answers JSON: source ("catalogue": the vendor's list; "snapshot": the list bundled with the app), note, and models, each with id, name, kind (image-to-video, text-to-video or start-end), inputs (first_frame, last_frame) and price (with its defaults; null when not known)."""
        return _json(self.handlers.models())

    def model_schema(self, model: str) -> str:
        """One model's settings (free; sends nothing). Answers JSON: schema (the JSON schema of its fields), defaults, required, inputs (the images it takes) and kind; or error.

        Args:
            model: The model's id, as the models tool lists it.
        """
        return _json(self.handlers.model_schema(model))

    def improve_prompt(
        self,
        image: str = "",
        prompt: str = "",
        model: str = "",
        variant: str = "",
        owner_token: str = "",
        x_aimlapi_key: gr.Header = None,  # type: ignore[assignment]
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> str:
        """Suggest a better prompt for an image and a prompt, by a chat model that sees the image (it spends a fraction of a cent on a real key; no video is made). Answers JSON: prompt, negative_prompt (where the model takes one), usd, chat_model; or error, in words.

        Args:
            image: The still image: an https URL or a data URI, as generate takes it (empty for a model that makes video from text).
            prompt: The prompt to improve (may be empty when an image is given).
            model: The video model the prompt is for (optional; empty: Kling v2.6 Pro image to video).
            variant: How: "" (improve), "cinematic", "motion" (describe the motion only) or "shorter".
        """
        settings = self.handlers.service.settings
        path = None
        try:
            path = _image_file(image, settings) if image else None
            answer = self.handlers.improve_prompt(
                path, prompt, model, variant, _key(x_aimlapi_key),
                self._owner(owner_token, x_aimlapi_key, request), request=request,
            )  # fmt: skip
        except errors.KlingUIError as exc:
            answer = {"error": exc.user_message}
        finally:
            _remove(path)
        return _json(answer)

    def _owner(self, owner_token: str, key: str | None, request: Any = None) -> str:
        """Whose jobs an agent's are, as a browser's are its token's: its key's, when it
        sends one (the key itself is never kept, only a digest of it); else its MCP
        session's (``callers.AgentCaller``), so one agent's flood is not every agent's;
        else (no session to tell) its address's. Sessions are free to open: the address's
        share (the service's limits count per address too) bounds them all, and an address
        brings in new sessions as it does new browsers (``admit_browser``: past its hour's
        number, a session is its address's)."""
        service = self.handlers.service
        typed = _key(key)
        if typed:
            return service.digest("agent-key:" + typed)
        agent = agent_of(request, service.digest)
        if agent is not None and agent.session:
            token = service.digest(f"agent-session:{agent.address}|{agent.session}")
            # A new session is a new visitor, as a new browser is: counted the same way.
            if service.admit_browser(token, agent.address):
                return token
        return owner_token

    def _answer(self, step: Step, key: str | None, request: Any) -> str:
        """One update as JSON: the job's full status once it has an id, its phase and words
        before (or when it never got one). The status is the step's typed phase (never read
        back from its text); the message is the status text's lines after the first."""
        gid = step.gid if isinstance(step.gid, str) else ""
        rest = str(step.text).partition("\n")[2]
        answer: dict[str, Any] = {"generation_id": gid or None, "status": step.phase}
        if gid and self.handlers.service.knows(gid):
            answer.update(self._status(gid, key, request))
            answer["status"] = step.phase
        answer.setdefault("final", step.phase in ENDED)
        answer["message"] = rest.strip().replace(PRESS_AGAIN, AGAIN)
        if "API key" in rest:
            answer["hint"] = KEY_HINT
        return _json(answer)

    def _status(self, any_id: str, key: str | None, request: Any) -> dict[str, Any]:
        """The job's status as ``/status`` gives it, for this agent (its key's jobs)."""
        visitor = self.handlers._visitor(self._owner("", key, request), request)
        try:
            answer = self.handlers.service.status(any_id, owner=visitor, api_key=_key(key))
        except errors.KlingUIError as exc:
            return {"error": exc.user_message}
        if answer.get("video"):
            answer["video"] = _root(request) + answer["video"]
        return answer


def listen(handlers: Handlers, page: Page) -> None:
    """The tools, as the API's events (``--mcp``): the key from the X-AIMLAPI-Key header
    only, one JSON answer each, ``submit`` in place of ``/batch``. Their inputs are hidden
    components of their own, or the page's (the text fields, the id, the owner)."""
    form, videos, owner = page.form, page.videos, page.owner.session
    api: dict[str, Any] = {"concurrency_limit": None}
    tools = AgentTools(handlers)
    answer = gr.Textbox(visible=False)
    takes = gr.Number(value=1, precision=0, minimum=1, maximum=4, visible=False)
    text_in = [form.prompt, form.negative, form.duration, form.audio]
    # An agent's image is text (a link or a data URI) that the tool fetches or decodes
    # itself, so a bad link is answered in words; its fit is a choice of its own.
    link = gr.Textbox(visible=False)
    fit = gr.Radio(["reject", "crop", "pad"], value="reject", visible=False)
    # The model, a last frame (text, like the image; generate's) and the model's other fields.
    model, end_link, options = (gr.Textbox(value="", visible=False) for _ in range(3))
    for name, fn, inputs in (
        ("generate", tools.generate, [link, *text_in, fit, owner, model, end_link, options]),
        ("submit", tools.submit, [link, *text_in, takes, fit, owner, model, options]),
        ("extend", tools.extend, [videos.resume_id, *text_in, owner, model, options]),
        ("resume", tools.resume, [videos.resume_id, owner]),
    ):
        trigger = gr.Button(visible=False, elem_id=f"api-{name}")
        trigger.click(fn, inputs, answer, api_name=name, **api)
    gr.api(tools.status, api_name="status")
    gr.api(tools.estimate, api_name="estimate")
    gr.api(tools.models, api_name="models")
    gr.api(tools.model_schema, api_name="model_schema")
    variant = gr.Textbox(value="", visible=False)
    gr.Button(visible=False, elem_id="api-improve-prompt").click(
        tools.improve_prompt, [link, form.prompt, model, variant, owner], answer,
        api_name="improve_prompt", **api,
    )  # fmt: skip


def _count(takes: Any) -> int:
    """The number of videos asked for, for the low-balance question (the service checks it)."""
    try:
        return max(1, int(takes or 1))
    except (TypeError, ValueError):
        return 1


def _image_file(value: Any, settings: Settings) -> str:
    """The image an agent sent (an https link or a data URI), as a file here to check and
    send, in a folder of its own that ``_remove`` deletes once the job is made: fetched or
    decoded by us, so a link that can't be fetched, or a data URI that isn't one, is
    answered in words with nothing sent (Gradio's own fetch of a file input answered an
    agent with a generic error). The fetch is the videos' (``client.VideoHost``): public
    addresses only, connected to the address checked, streamed to at most
    ``MAX_INPUT_BYTES``, and whole within ``LINK_SECONDS`` (the downloads' own limit if
    shorter), so a huge file or a host that drips holds nothing for long."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise errors.InputError(NO_IMAGE_GIVEN)
    # "kept-": the retention sweep's name for the page's copies, so a folder that a process
    # stopped mid-call left behind goes with them (``base.KEPT``).
    folder = Path(get_upload_folder()) / (KEPT + secrets.token_hex(16))
    if text.lower().startswith("data:"):
        return _decoded(text, folder)
    if not text.lower().startswith("https://") or any(c.isspace() for c in text):
        raise errors.InputError(NOT_A_LINK)
    return _fetched(text, folder, settings)


def _decoded(text: str, folder: Path) -> str:
    """A data URI's image, decoded into a new file in ``folder``; refused in words when it
    is not a base64 image or is over ``DATA_URI_IMAGE_BYTES``."""
    head, comma, body = text.partition(",")
    if not comma or not head.lower().endswith(";base64"):
        raise errors.InputError(BAD_DATA_URI)
    if len(body) > DATA_URI_MOST:
        raise errors.InputError(BIG_DATA_URI)
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InputError(BAD_DATA_URI) from None
    if len(data) > DATA_URI_IMAGE_BYTES:
        raise errors.InputError(BIG_DATA_URI)
    path = _new_file(folder, "image-from-data-uri")
    try:
        with open(path, "wb") as out:
            out.write(data)
    except OSError:
        _stored_nothing(path)
    return str(path)


def _fetched(text: str, folder: Path, settings: Settings) -> str:
    """An https link's image, fetched into a new file in ``folder`` (``_image_file`` says
    how); refused in words when it can't be fetched whole in time."""
    path = _new_file(folder, "image-from-link")
    host = text[len("https://") :].split("/", 1)[0][:100]
    seconds = min(LINK_SECONDS, settings.download_total_timeout)
    try:
        with open(path, "wb") as out:
            VideoHost(settings).fetch_file(text, out, most=MAX_INPUT_BYTES, seconds=seconds)
        return str(path)
    except TooLarge:
        _remove(str(path))
        raise errors.InputError(
            f"The image at {host} is over {MAX_INPUT_BYTES // 1024**2} MB, the most this app "
            "takes: link to a smaller copy. Nothing was sent."
        ) from None
    except Exception as exc:  # DNS, refused, private address, HTTP error, too slow
        _remove(str(path))
        log.info("an agent's image link could not be fetched: %s", type(exc).__name__)
        slow = isinstance(exc, TooSlow)
        why = (
            f"it did not arrive whole within {seconds:g} seconds"
            if slow
            else ("it must be a public https address of an image that answers now")
        )
        raise errors.InputError(
            f"The image link could not be fetched from {host}: {why}. Check the link, or "
            "send the image as a data URI (data:image/jpeg;base64,...). Nothing was sent."
        ) from None


def _new_file(folder: Path, name: str) -> Path:
    """A new, empty file (owner only) in a new folder of its own; an error in words, and
    nothing left behind, when this machine can't make them (a full disk, say)."""
    path = folder / name
    try:
        folder.mkdir(mode=0o700, parents=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        _stored_nothing(path)
    return path


def _stored_nothing(path: Path) -> NoReturn:
    log.warning("an agent's image could not be stored in %s", path.parent.parent)
    _remove(str(path))
    raise errors.KlingUIError(NOT_STORED) from None


def _remove(path: str | None) -> None:
    """Delete an agent's image and the folder ``_image_file`` made for it (nothing else)."""
    if path:
        shutil.rmtree(Path(path).parent, ignore_errors=True)


def _key(header: str | None) -> str:
    return (header or "").strip() if isinstance(header, str) else ""


def _refusal(words: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"error": words, "items": []}
    if "API key" in words:
        answer["hint"] = KEY_HINT
    return answer


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
