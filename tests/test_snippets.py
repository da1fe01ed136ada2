"""Copy as code (issue 14): the create request as cURL and as Python (requests).

Each snippet is run as a person would run it, bash for cURL and this Python for the script,
with ``AIMLAPI_KEY`` and ``AIMLAPI_BASE_URL`` set, against the simulator over real HTTP; what
crossed the wire is read at the simulator (its body check is spied on, image included). The
page's side is tested through ``Handlers``, as Gradio calls it.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from apprunner import spy_on_creates
from PIL import Image

from kling_ui import snippets
from kling_ui.config import MODEL, Settings
from kling_ui.errors import InputError
from kling_ui.request import Request
from kling_ui.service import GenerationService
from kling_ui.simulator import Simulator
from kling_ui.ui import Handlers, build_ui
from kling_ui.ui.form import with_request
from kling_ui.ui.handlers import ADOPTED
from kling_ui.ui.studio import SLOTS

pytestmark = pytest.mark.timeout(120)

RUN_KEY = "sk-snippet-run-key-41"  # the key in the environment the snippet runs in
APP_KEY = "sk-snippet-app-key-93"  # the app's own key: never in a snippet either
# Everything a shell or a string literal could get wrong, and text that doesn't print.
NASTY = (
    'It\'s "quoted" $HOME ${PATH} `whoami` $(touch pwned) \\back\\slash \\n !! %s %% \n'
    "\tsecond line; café 猫 שלום 😀 \u200f<b>&amp;</b>' -- end\\"
)
NASTY_NEGATIVE = 'don\'t: "x" $USER `id` \\\\ \u200d\u2028 — ünïcode'
RUNNERS = {"curl": ["bash"], "python": [sys.executable]}


@pytest.fixture
def sent(simulator, monkeypatch) -> list[dict]:
    """The create bodies the simulator received, image included (its record cuts it)."""
    return spy_on_creates(monkeypatch)


def picture(folder: Path, name: str, fmt: str = "JPEG") -> Path:
    path = folder / name
    Image.new("RGB", (640, 480), (30, 90, 200)).save(path, fmt)
    return path


def run(kind: str, code: str, folder: Path, simulator) -> subprocess.CompletedProcess:
    """The snippet, saved in ``folder`` (beside the image) and run from there."""
    script = folder / ("create.sh" if kind == "curl" else "create.py")
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "AIMLAPI_KEY": RUN_KEY, "AIMLAPI_BASE_URL": simulator.url}
    return subprocess.run(
        [*RUNNERS[kind], script.name], cwd=folder, env=env, capture_output=True, timeout=60
    )


def the_one_job(
    sent: list[dict],
    simulator,
    answer: subprocess.CompletedProcess,
    earlier: frozenset = frozenset(),
) -> dict:
    """The body of the one job the snippet made (beside the ``earlier`` ones, one create
    each), after checking it was made with the key from the environment and its id printed."""
    assert answer.returncode == 0, answer.stderr.decode()
    new = set(simulator.jobs) - earlier
    assert simulator.creates == len(earlier) + 1 and len(new) == 1 and len(sent) == 1
    assert new.pop() in answer.stdout.decode()
    create = simulator.requests_to("/v2/video/generations")[-1]
    assert create.headers["authorization"] == f"Bearer {RUN_KEY}"
    assert create.headers["content-type"].startswith("application/json")
    return sent[0]


def sent_image(body: dict) -> tuple[str, bytes]:
    """(the data URI's type, the image's bytes)."""
    head, _, data = body["image_url"].partition(",")
    return head, base64.b64decode(data, validate=True)


# --- run against the simulator ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_a_snippet_creates_the_job_with_the_prompts_byte_for_byte(kind, simulator, sent, tmp_path):
    image = picture(tmp_path, "photo.jpg")
    code = snippets.SNIPPETS[kind](
        "photo.jpg",
        Request.make(NASTY, negative_prompt=NASTY_NEGATIVE, duration=10, generate_audio=False),
    )
    body = the_one_job(sent, simulator, run(kind, code, tmp_path, simulator))
    assert body["prompt"] == NASTY and body["negative_prompt"] == NASTY_NEGATIVE
    assert (body["duration"], body["generate_audio"]) == (10, False)
    assert sent_image(body) == ("data:image/jpeg;base64", image.read_bytes())
    assert not (tmp_path / "pwned").exists()  # nothing in the prompt ran


@pytest.mark.parametrize("kind", ["curl", "python"])
@pytest.mark.parametrize(
    ("name", "fmt", "mime"),
    [
        ("it's a $HOME `pic`.PNG", "PNG", "image/png"),
        ("-photo with spaces.webp", "WEBP", "image/webp"),
        ("still.gif", "GIF", "image/gif"),
        ("scan.bmp", "BMP", "image/bmp"),
        ("photo.jpeg", "JPEG", "image/jpeg"),
    ],
)
def test_a_snippet_sends_the_file_as_it_is_typed_by_its_name(
    kind, name, fmt, mime, simulator, sent, tmp_path
):
    image = picture(tmp_path, name, fmt)
    code = snippets.SNIPPETS[kind](name, Request.make("A boat drifts."))
    body = the_one_job(sent, simulator, run(kind, code, tmp_path, simulator))
    assert sent_image(body) == (f"data:{mime};base64", image.read_bytes())
    assert "negative_prompt" not in body  # only when there is one, as the app sends it


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_a_snippet_run_with_a_key_the_api_refuses_exits_non_zero_with_its_answer(kind, tmp_path):
    """A script that runs the code can tell a refused request from a created job."""
    picture(tmp_path, "photo.jpg")
    code = snippets.SNIPPETS[kind]("photo.jpg", Request.make("A boat drifts."))
    with Simulator(api_key="sk-the-only-key-it-takes-5") as simulator:
        answer = run(kind, code, tmp_path, simulator)
        assert simulator.jobs == {}
    assert answer.returncode != 0
    assert b"invalid or missing API key" in answer.stdout  # the API's own answer, shown


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_a_snippet_holds_no_key_and_no_base64_of_the_image(kind, tmp_path):
    image = picture(tmp_path, "photo.jpg")
    code = snippets.SNIPPETS[kind](
        "photo.jpg", Request.make("A boat drifts.", negative_prompt="blur")
    )
    assert APP_KEY not in code and RUN_KEY not in code and "sk-" not in code
    assert ("$AIMLAPI_KEY" if kind == "curl" else 'os.environ["AIMLAPI_KEY"]') in code
    assert "AIMLAPI_BASE_URL" in code and "https://api.aimlapi.com" in code
    assert not re.search(r"base64,[A-Za-z0-9+/=]{4,}", code)
    assert base64.b64encode(image.read_bytes())[:24].decode() not in code
    assert len(code) < 2500


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_a_snippet_says_it_sends_the_file_not_the_pages_prepared_copy(kind):
    code = snippets.SNIPPETS[kind]("photo.jpg", Request.make("A boat drifts."))
    assert "prepared copy" in code and "sends the file as it is" in code


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_what_does_not_print_is_written_as_an_escape(kind):
    """A bidi mark or a zero-width joiner can't make the code look other than it is."""
    code = snippets.SNIPPETS[kind](
        "photo.jpg", Request.make("left \u202e right\u200d, line\u2028two")
    )
    assert "\\u202e" in code and "\\u200d" in code and "\\u2028" in code
    assert all(ch.isprintable() or ch == "\n" for ch in code)


def test_the_curl_snippet_needs_no_gnu_only_options():
    code = snippets.curl_snippet("photo.jpg", Request.make("A boat drifts."))
    assert "base64 < \"$IMAGE\" | tr -d '\\n'" in code and "-w0" not in code
    assert "--data-binary @-" in code


@pytest.mark.parametrize(
    ("name", "mime"),
    [("a.jpg", "image/jpeg"), ("A.JPEG", "image/jpeg"), ("a.png", "image/png"),
     ("a.webp", "image/webp"), ("a.gif", "image/gif"), ("a.bmp", "image/bmp")],
)  # fmt: skip
def test_the_images_type_comes_from_its_name(name, mime):
    assert snippets.mime_type(name) == mime


@pytest.mark.parametrize("name", ["a.heic", "a.txt", "noextension", "a.jpg.svg"])
def test_an_image_name_that_says_no_type_we_take_is_refused_in_words(name):
    with pytest.raises(InputError, match=r"\.jpg, \.png"):
        snippets.mime_type(name)


# --- the page ---------------------------------------------------------------------------


class Tab:
    """One browser's handlers, with its owner token."""

    def __init__(self, handlers: Handlers) -> None:
        self.handlers, self.token = handlers, secrets.token_urlsafe(24)

    def generate(self, image, prompt, negative="", duration=5, audio=True) -> str:
        *_, last = self.handlers.generate(
            image, prompt, negative, duration, audio, "", "reject", self.token
        )
        return last[0]

    def code_for_job(self, kind, gid):
        return self.handlers.code_for_job(kind, gid, self.token)

    def code_for_form(self, kind, *fields):
        """Copy as code pressed with the form's fields, as the page's event calls it."""
        event = with_request(
            partial(self.handlers.code_for_form, kind), studio=self.handlers.plan_of
        )
        # The model whose form is shown (ours), no last frame, the spare fields unused.
        return event(None, *fields, MODEL, None, *([None] * len(SLOTS)))


@pytest.fixture
def tab(simulator, tmp_path) -> Tab:
    settings = Settings(
        base_url=simulator.url, api_key=APP_KEY, data_dir=tmp_path / "data", poll_interval=0.05
    )
    return Tab(Handlers(GenerationService(settings)))


def test_the_copy_events_are_private(simulator, tmp_path):
    settings = Settings(base_url=simulator.url, api_key=APP_KEY, data_dir=tmp_path / "data")
    blocks = build_ui(GenerationService(settings), browser_secret="s")
    # Each is the handler with its kind bound (functools.partial); the form's, through the
    # event that makes the form's request (``form.with_request``: its ``handler``).
    names = {"code_for_form", "code_for_job"}
    bound = {f: getattr(f.fn, "handler", f.fn) for f in blocks.fns.values()}
    handler = {f: getattr(getattr(fn, "func", fn), "__name__", "") for f, fn in bound.items()}
    copying = [f for f, name in handler.items() if name in names]
    assert len(copying) == 4 and all(f.api_visibility == "private" for f in copying)


def shown(update) -> bool:
    return update.get("visible") is True and bool(update.get("value"))


def page_words(tab: Tab, image, prompt, negative="", duration=5, audio=True) -> str:
    """What the page says when Generate is pressed with these fields (nothing is sent)."""
    ((_, status, _, _),) = with_request(tab.handlers.generate_page)(
        None, image, prompt, negative, duration, audio, "", "reject", tab.token
    )
    assert status.startswith("Status: not sent"), status
    return status.split("\n", 1)[1]


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_the_forms_code_names_the_uploaded_file_and_reads_the_key_from_the_environment(
    kind, tab, tmp_path
):
    upload = picture(tmp_path, "sunset at sea.png", "PNG")  # Gradio keeps the upload's name
    box, note = tab.code_for_form(kind, str(upload), "Waves roll in.", "", "5", True)
    assert shown(box) and box["language"] == snippets.LANGUAGES[kind]
    assert "sunset at sea.png" in box["value"] and str(tmp_path) not in box["value"]
    assert "AIMLAPI_KEY" in box["value"] and APP_KEY not in box["value"]
    assert note.startswith(("cURL", "Python")) and "AIMLAPI_KEY" in note


@pytest.mark.parametrize(
    ("image", "prompt", "negative", "duration"),
    [
        (None, "Waves roll in.", "", 5),  # no image
        ("photo", "   ", "", 5),
        ("photo", "x" * 2501, "", 5),
        ("photo", "A NUL \x00 here.", "", 5),
        ("photo", "Waves roll in.", "bad \x07 bell", 5),
        ("photo", "A lone \ud800 surrogate.", "", 5),
    ],
)
def test_what_generate_would_refuse_gives_the_pages_words_and_no_code(
    tab, photo, simulator, image, prompt, negative, duration
):
    image = photo if image == "photo" else image
    for kind in ("curl", "python"):
        box, note = tab.code_for_form(kind, image, prompt, negative, duration, True)
        assert box == {"__type__": "update", "value": "", "visible": False}
        assert note == "⚠ " + page_words(tab, image, prompt, negative, duration)
    assert simulator.creates == 0


def test_the_forms_code_refuses_a_duration_the_page_would(tab, photo):
    box, note = tab.code_for_form("curl", photo, "Waves.", "", 7, True)
    assert not shown(box) and note == "⚠ Duration must be 5 or 10 seconds, not 7."


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_a_videos_code_makes_the_same_request_from_the_image_it_sent(
    kind, tab, photo, simulator, sent, tmp_path
):
    """Outside the app, with the job's image saved under the placeholder's name (as Remix
    hands it back), the snippet makes the job that video's request made."""
    gid = tab.generate(photo, NASTY, NASTY_NEGATIVE, 10, False)
    job = tab.handlers.service.entry(gid)
    box, note = tab.code_for_job(kind, gid)
    assert shown(box) and note.startswith(("cURL", "Python")) and "Remix" in note
    assert f"(job {job.shown_id})" in box["value"] and APP_KEY not in box["value"]
    kept = tab.handlers.service.input_image(job)
    (tmp_path / snippets.JOB_IMAGE).write_bytes(kept.read_bytes())
    earlier = frozenset(simulator.jobs)
    sent.clear()
    answer = run(kind, box["value"], tmp_path, simulator)
    body = the_one_job(sent, simulator, answer, earlier)
    assert (body["prompt"], body["negative_prompt"]) == (NASTY, NASTY_NEGATIVE)
    assert (body["duration"], body["generate_audio"]) == (10, False)
    assert sent_image(body) == ("data:image/jpeg;base64", kept.read_bytes())


def test_another_browsers_video_gives_no_code(tab, photo):
    gid = tab.generate(photo, "Mine alone.")
    stranger = Tab(tab.handlers)
    for kind in ("curl", "python"):
        box, note = stranger.code_for_job(kind, gid)
        assert not shown(box) and "Mine alone" not in str(box)
        button = "Copy as cURL" if kind == "curl" else "Copy as Python"
        assert note == f"Pick one of your videos in the gallery first, then press {button}."


def test_nothing_picked_gives_no_code(tab):
    box, note = tab.code_for_job("curl", "")
    assert not shown(box) and note.startswith("Pick one of your videos")


def test_a_video_adopted_by_its_id_has_nothing_to_copy(tab, simulator):
    made_elsewhere = simulator.create_job({"duration": 5}, key=APP_KEY)["id"]
    *_, (gid, status, _) = tab.handlers.resume(made_elsewhere, "", tab.token)
    assert gid and not status.startswith("Status: not")
    box, note = tab.code_for_job("python", gid)
    assert not shown(box) and note == ADOPTED


# --- another model ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_another_models_code_sends_both_frames_under_its_own_names(kind, simulator, sent, tmp_path):
    """Runway Gen-4 Turbo (a simulator model): its last frame is ``tail_image_url``; both
    files are encoded when the code runs, and the header names the model."""
    from kling_ui.catalogue import snapshot
    from kling_ui.catalogue.specs import register_snapshot

    register_snapshot(snapshot())
    first = picture(tmp_path, "first.jpg")
    last = tmp_path / "last frame.png"
    Image.new("RGB", (640, 480), (200, 30, 30)).save(last)
    asked = Request.make(NASTY, model="runway/gen4_turbo", seed=7, duration=10)
    code = snippets.SNIPPETS[kind]("first.jpg", asked, last_name="last frame.png")
    assert code.startswith("# The create request of kling-ui: runway/gen4_turbo.")
    body = the_one_job(sent, simulator, run(kind, code, tmp_path, simulator))
    assert body["model"] == "runway/gen4_turbo" and body["prompt"] == NASTY
    assert (body["seed"], body["duration"]) == (7, 10)
    assert sent_image(body) == ("data:image/jpeg;base64", first.read_bytes())
    head, _, data = body["tail_image_url"].partition(",")
    assert (head, base64.b64decode(data)) == ("data:image/png;base64", last.read_bytes())


@pytest.mark.parametrize("kind", ["curl", "python"])
def test_a_text_to_video_models_code_sends_no_image(kind, simulator, sent, tmp_path):
    from kling_ui.catalogue import snapshot
    from kling_ui.catalogue.specs import register_snapshot

    register_snapshot(snapshot())
    asked = Request.make("A paper boat drifts.", model="klingai/video-v2-6-pro-text-to-video")
    code = snippets.SNIPPETS[kind]("", asked)
    assert "base64" not in code and "IMAGE" not in code
    body = the_one_job(sent, simulator, run(kind, code, tmp_path, simulator))
    assert body["model"] == "klingai/video-v2-6-pro-text-to-video" and "image_url" not in body
