"""Issue 25 in a real browser: the model picker, the form a model's schema builds (and what
switching keeps), a start+end frame job and a text-to-video one, through the simulator's
catalogue and its creates."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from a11y import describe, serious_violations
from browsing import (  # noqa: F401  (fixtures)
    CARD,
    app,
    expect,
    expect_video_playing,
    fill_job,
    is_final,
    live,
    open_page,
    phase,
    screenshot,
    sim,
    status_lines,
    tile,
)
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CREATE = "/v2/video/generations"


def pick_model(page, name: str) -> None:
    """Choose ``name`` in the model picker as a person does: open it, type, click."""
    box = page.locator("#model input")
    box.click()
    box.fill(name.split(" ·")[0])
    page.get_by_role("option", name=name, exact=True).click()


def creates(sim) -> list[dict]:
    return [r.body for r in sim.requests_to(CREATE) if r.method == "POST"]


def radio_labels(page, elem: str) -> list[str]:
    return page.locator(f"#{elem} label").all_inner_texts()


def test_switching_models_builds_each_form_and_keeps_what_applies(live, sim, page, photo):
    open_page(page, live.url)
    settings = page.locator("#model-settings")
    expect(settings).to_be_hidden()
    expect(page.locator("#end-image")).to_be_hidden()
    fill_job(page, photo, "The meadow sways in the wind.")
    page.get_by_text("More settings").click()
    page.locator("#negative textarea").fill("blur, text")
    page.locator("#duration").get_by_text("10 seconds").click()

    # Wan 2.6: its own lengths, its resolution and shot type, a seed box, and its prompt
    # rewriting shown, off. The prompt, the image, the negative prompt and 10 s all apply.
    pick_model(page, "Wan 2.6 · image to video")
    expect(settings).to_be_visible()
    expect(page.locator("#model-choice-0")).to_contain_text("Resolution")
    expect(page.locator("#model-number-0")).to_contain_text("Seed")
    rewrite = page.locator("#model-switch-0")
    expect(rewrite).to_contain_text("the vendor rewrites your prompt")
    expect(rewrite.locator("input")).not_to_be_checked()
    assert [t.strip() for t in radio_labels(page, "duration")] == [
        "5 seconds", "10 seconds", "15 seconds"
    ]  # fmt: skip
    expect(page.locator("#duration input[value='10']")).to_be_checked()
    expect(page.locator("#negative textarea")).to_have_value("blur, text")
    expect(page.locator("#prompt textarea")).to_have_value("The meadow sways in the wind.")
    expect(page.locator("#image img")).to_be_visible()
    expect(page.locator("#model-note")).to_contain_text("Wan 2.6")
    found = serious_violations(page)  # another model's form is as accessible as ours
    assert not found, describe(found)
    screenshot(page, "model-wan.png")

    # Veo 3.1: no negative prompt (hidden), 10 s is not one of its lengths (its default, 8).
    pick_model(page, "Veo 3.1 · image to video")
    expect(page.locator("#negative")).to_be_hidden()
    expect(page.locator("#duration input[value='8']")).to_be_checked()
    expect(page.locator("#model-choice-0")).to_contain_text("Aspect ratio")

    # A text-to-video model has no image slot.
    pick_model(page, "Kling v2.6 Pro · text to video")
    expect(page.locator("#image")).to_be_hidden()

    # Back to ours: the form it always was, the negative prompt still there.
    pick_model(page, "Kling v2.6 Pro · image to video")
    expect(settings).to_be_hidden()
    expect(page.locator("#image img")).to_be_visible()
    assert [t.strip() for t in radio_labels(page, "duration")] == ["5 seconds", "10 seconds"]
    expect(page.locator("#negative textarea")).to_have_value("blur, text")
    expect(page.locator("#price")).to_contain_text("5 s with audio: $0.70")
    assert creates(sim) == []  # switching sends nothing


def test_a_first_and_last_frame_job_sends_both_frames_and_plays(live, sim, page, photo, tmp_path):
    last = tmp_path / "last.png"
    Image.new("RGB", (800, 600), (200, 60, 30)).save(last)
    open_page(page, live.url)
    pick_model(page, "Runway Gen-4 Turbo · image to video")
    end = page.locator("#end-image")
    expect(end).to_contain_text("Last frame (optional)")
    fill_job(page, photo, "The field turns to autumn.")
    end.locator("input[type=file]").set_input_files(last)
    expect(page.locator("#end-image-note")).to_contain_text("Last frame OK")
    page.locator("#model-number-0 input").fill("42")  # the seed
    page.locator("#model-number-0 input").blur()
    page.locator("#generate").click()
    lines = status_lines(page, is_final)
    assert phase(lines[-1]) == "completed", lines
    expect_video_playing(page)
    (body,) = creates(sim)
    assert body["model"] == "runway/gen4_turbo"
    # (The simulator records an image as its size: "<image N chars>".)
    assert body["image_url"].startswith("<image") and body["tail_image_url"].startswith("<image")
    assert body["seed"] == 42 and body["duration"] == 5
    screenshot(page, "model-start-end.png")

    # Remix, in a clean form: the model, both frames and the seed come back.
    page.reload()
    expect(page.locator("#generate")).to_be_enabled()
    expect(tile(page, "The field turns to autumn")).to_contain_text("Runway Gen-4 Turbo")
    tile(page, "The field turns to autumn").click()
    status_lines(page, is_final)
    page.wait_for_function("document.querySelector('#video video')?.readyState >= 1")
    page.locator("#remix").click()
    expect(page.locator("#gallery-note")).to_contain_text("Remixed: that job's model")
    expect(page.locator("#model input")).to_have_value("Runway Gen-4 Turbo · image to video")
    expect(page.locator("#model-number-0 input")).to_have_value("42")
    expect(page.locator("#end-image img")).to_be_visible()
    expect(page.locator("#image img")).to_be_visible()
    expect(page.locator("#prompt textarea")).to_have_value("The field turns to autumn.")

    # The MP4 itself says how it was made: dropped on a fresh page, it fills the form too.
    src = page.locator("#video video").get_attribute("src")
    mp4 = tmp_path / "made-here.mp4"
    mp4.write_bytes(page.request.get(urljoin(live.url, src)).body())
    page.reload()
    expect(page.locator("#generate")).to_be_enabled()
    page.locator("#settings-from-video input[type=file]").set_input_files(mp4)
    expect(page.locator("#gallery-note")).to_contain_text("(Found from the video's settings.)")
    expect(page.locator("#model input")).to_have_value("Runway Gen-4 Turbo · image to video")
    expect(page.locator("#model-number-0 input")).to_have_value("42")
    expect(page.locator("#prompt textarea")).to_have_value("The field turns to autumn.")
    expect(page.locator("#end-image img")).to_be_visible()  # this browser's own job: its frames


def test_a_text_to_video_model_needs_no_image(live, sim, page, photo):
    open_page(page, live.url)
    page.locator("#image input[type=file]").set_input_files(photo)  # left from before
    pick_model(page, "Kling v2.6 Pro · text to video")
    page.locator("#prompt textarea").fill("A paper boat drifts down a rainy street.")
    page.locator("#generate").click()
    lines = status_lines(page, is_final)
    assert phase(lines[-1]) == "completed", (lines, page.locator(CARD).all_inner_texts())
    (body,) = creates(sim)
    assert body["model"] == "klingai/video-v2-6-pro-text-to-video"
    assert "image_url" not in body


def test_reference_images_are_sent_in_order_and_a_refused_one_is_named(
    live, sim, page, photo, tmp_path
):
    """Seedance 2.0 takes reference images: the slot shows for it only, a refused one is
    named by its number and taken off, and the others go in the create in their order."""
    wide, tall = tmp_path / "wide.png", tmp_path / "tall.png"
    Image.new("RGB", (1200, 600), (200, 30, 30)).save(wide)
    Image.new("RGB", (300, 1200), (0, 0, 0)).save(tall)
    open_page(page, live.url)
    references = page.locator("#references")
    expect(references).to_be_hidden()
    pick_model(page, "Seedance 2.0 · text to video")
    expect(references).to_be_visible()
    expect(references).to_contain_text("Reference images (optional, up to 9)")
    references.locator("input[type=file]").set_input_files([photo, str(tall)])
    note = page.locator("#references-note")
    expect(note).to_contain_text("Reference image 2:")
    expect(references).not_to_contain_text("tall.png")
    expect(note).to_contain_text("Image fit in More settings")
    references.locator("input[type=file]").set_input_files(str(wide))  # added to the first
    expect(note).to_contain_text("2 reference images OK")
    screenshot(page, "model-references.png")
    page.locator("#prompt textarea").fill("Two cats meet on a wall.")
    page.locator("#generate").click()
    lines = status_lines(page, is_final)
    assert phase(lines[-1]) == "completed", (lines, page.locator(CARD).all_inner_texts())
    (body,) = creates(sim)
    assert body["model"] == "bytedance/seedance-2-0" and "image_url" not in body
    sizes = [int(item.split()[1]) for item in body["image_urls"]]  # "<image N chars>"
    assert len(sizes) == 2 and sizes[0] != sizes[1]
    pick_model(page, "Kling v2.6 Pro · image to video")
    expect(references).to_be_hidden()
