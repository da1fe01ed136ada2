"""Invariants, tried on many generated cases with Hypothesis.

- Any image ``prepare_image`` accepts comes out within Kling's limits (sides, ratio), within
  ours (long side, body size), and decodes to the size it reports; it is accepted exactly
  when its size allows it, for each fit mode.
- Anything it refuses, however damaged, is refused with ``InputError``, never another
  exception.
- The status parser never raises on any JSON, and always answers with a known phase.
"""

from __future__ import annotations

import base64
import io
import math
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from kling_ui.errors import InputError
from kling_ui.images import prepare_image
from kling_ui.jobs import Phase, parse_generation

MIN_SIDE, MAX_RATIO, MAX_LONG_SIDE = 300, 2.5, 2048
MAX_BODY = 2_000_000  # the data URI, as sent in the JSON body
PHASES = set(typing.get_args(Phase))

MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16"]
FORMATS = ["PNG", "JPEG", "WEBP", "GIF", "BMP"]
FITS = ["reject", "crop", "pad"]

examples = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _can_save(mode: str, fmt: str) -> bool:
    try:
        Image.new(mode, (4, 4)).save(io.BytesIO(), fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


# The (mode, format) pairs Pillow can write: what a person's software could have produced.
WRITABLE = [(m, f) for m in MODES for f in FORMATS if _can_save(m, f)]


def test_the_generated_images_cover_every_mode_and_format():
    assert {m for m, _ in WRITABLE} == set(MODES)
    assert {f for _, f in WRITABLE} == set(FORMATS)


def make_image(width: int, height: int, mode: str, colour: int) -> Image.Image:
    """A picture with a little structure, in ``mode``."""
    im = Image.new("RGB", (width, height), (colour, 255 - colour, (colour * 7) % 256))
    ImageDraw.Draw(im).rectangle((0, 0, width // 3, height // 3), fill=(250, 20, 20))
    if mode == "I;16":
        return im.convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
    if mode == "P":
        return im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    if mode == "1":  # a plain threshold: dithering would make noise that JPEG must shrink
        return im.convert("L").point(lambda v: 255 if v > 127 else 0).convert("1")
    return im.convert(mode)


def expected_to_pass(width: int, height: int, fit: str) -> bool:
    """Whether the image's size allows it, with this fit mode (the rules, restated)."""
    long, short = max(width, height), min(width, height)
    if long <= short * MAX_RATIO:
        return short >= MIN_SIDE
    if fit == "reject":
        return False
    if fit == "crop":  # cut the long side to 2.5 times the short one
        return short >= MIN_SIDE
    return math.ceil(long / MAX_RATIO) >= MIN_SIDE  # pad the short side up to long / 2.5


# Sides across the whole range, but mostly near the limits, where mistakes live.
side = st.one_of(
    st.integers(1, 3000),
    st.integers(280, 320),
    st.integers(700, 800),
    st.integers(2000, 2100),
)


@examples
@given(
    width=side,
    height=side,
    kind=st.sampled_from(WRITABLE),
    fit=st.sampled_from(FITS),
    colour=st.integers(0, 255),
)
def test_accepted_images_are_within_the_limits_and_decode(
    tmp_path_factory, width, height, kind, fit, colour
):
    mode, fmt = kind
    if fmt == "WEBP":  # WebP's format can't store a side over 16383; ours never are
        assume(max(width, height) <= 16383)
    path = tmp_path_factory.mktemp("prop") / f"upload.{fmt.lower()}"
    make_image(width, height, mode, colour).save(path, fmt)

    try:
        prepared = prepare_image(path, fit=fit)
    except InputError as exc:
        assert not expected_to_pass(width, height, fit), exc.user_message
        assert exc.user_message and f"{width}×{height}" in exc.user_message
        return
    assert expected_to_pass(width, height, fit), (width, height, fit)

    w, h = prepared.width, prepared.height
    assert min(w, h) >= MIN_SIDE
    assert max(w, h) <= min(w, h) * MAX_RATIO
    assert max(w, h) <= MAX_LONG_SIDE
    assert len(prepared.data_uri) < MAX_BODY
    assert prepared.data_uri.startswith("data:image/jpeg;base64,")
    encoded = base64.b64decode(prepared.data_uri.split(",", 1)[1], validate=True)
    assert len(encoded) == prepared.byte_size
    with Image.open(io.BytesIO(encoded)) as sent:
        assert sent.format == "JPEG" and sent.mode == "RGB"
        assert sent.size == (w, h)
        sent.load()
    assert (prepared.source_width, prepared.source_height) == (width, height)
    ratio, source_ratio = max(w, h) / min(w, h), max(width, height) / min(width, height)
    if source_ratio <= MAX_RATIO:
        # Only resized, if at all: the shape is kept (the short side rounds by one pixel).
        assert abs(ratio - source_ratio) <= source_ratio * (1.5 / min(w, h))
        assert (w >= h) == (width >= height) or width == height
    else:  # cropped or padded to the nearest allowed shape: just inside the limit
        assert ratio >= MAX_RATIO * (1 - 2 / min(w, h))
        assert prepared.adjusted and ("cropped" if fit == "crop" else "padded") in prepared.adjusted
    if (w, h) != (width, height):  # whatever was done is said
        assert prepared.adjusted and any(
            word in prepared.adjusted for word in ("resized", "cropped", "padded")
        )
    if max(width, height) <= MAX_LONG_SIDE and expected_to_pass(width, height, "reject"):
        assert (w, h) == (width, height)  # nothing needless is done to a good image
        assert prepared.adjusted is None


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    """A few good uploads, one per format, to damage."""
    folder = tmp_path_factory.mktemp("seeds")
    seeds = {}
    for fmt in FORMATS:
        path = folder / f"seed.{fmt.lower()}"
        make_image(640, 480, "RGB", 90).save(path, fmt)
        seeds[fmt] = path.read_bytes()
    return seeds


@examples
@given(data=st.data(), fmt=st.sampled_from(FORMATS), fit=st.sampled_from(FITS))
def test_damaged_files_are_refused_with_input_error_only(
    tmp_path_factory, valid_files, data, fmt, fit
):
    raw = bytearray(valid_files[fmt])
    how = data.draw(st.sampled_from(["truncate", "flip", "splice", "header-only"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 20))):
            at = data.draw(st.integers(0, len(raw) - 1))
            raw[at] = data.draw(st.integers(0, 255))
    elif how == "splice":
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    else:
        raw = raw[: data.draw(st.integers(1, 64))] + data.draw(st.binary(max_size=64))
    path = tmp_path_factory.mktemp("damaged") / f"upload.{fmt.lower()}"
    path.write_bytes(bytes(raw))
    check_refused_or_within_limits(path, fit)


@examples
@given(blob=st.binary(max_size=2048), name=st.sampled_from(["a.jpg", "a.png", "a", "a.gif"]))
def test_arbitrary_bytes_are_refused_with_input_error_only(tmp_path_factory, blob, name):
    path = tmp_path_factory.mktemp("blob") / name
    path.write_bytes(blob)
    check_refused_or_within_limits(path, "reject")


def check_refused_or_within_limits(path: Path, fit: str) -> None:
    try:
        prepared = prepare_image(path, fit=fit)
    except InputError as exc:
        assert exc.user_message.strip()
        assert "Traceback" not in exc.user_message
        return
    except Exception as exc:  # noqa: BLE001 - the property: nothing else ever escapes
        pytest.fail(f"prepare_image raised {type(exc).__name__}: {exc}")
    assert min(prepared.width, prepared.height) >= MIN_SIDE
    assert max(prepared.width, prepared.height) <= MAX_LONG_SIDE
    assert len(prepared.data_uri) < MAX_BODY


# --- the status parser -------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# Job-shaped objects: the contract's keys, with any values (and the words that matter).
statuses = st.sampled_from(
    ["queued", "waiting", "generating", "active", "completed", "error", "failed", "paused", ""]
)
job_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=40), json_values),
        "status": st.one_of(statuses, statuses.map(str.upper), json_values),
        "video": st.one_of(
            st.none(),
            st.fixed_dictionaries({}, optional={"url": json_values | st.just("https://cdn/v.mp4")}),
            json_values,
        ),
        "error": st.one_of(
            st.none(),
            st.fixed_dictionaries({}, optional={"name": json_values, "message": json_values}),
            json_values,
        ),
        "meta": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "usage": st.fixed_dictionaries(
                        {},
                        optional={"credits_used": json_values, "tokens_used": json_values},
                    )
                    | json_values
                },
            ),
            json_values,
        ),
    },
)


@settings(max_examples=60, deadline=None)
@given(payload=st.one_of(json_values, job_like), gid=st.one_of(st.none(), st.text(max_size=40)))
def test_the_status_parser_never_raises_and_answers_a_known_phase(payload, gid):
    job = parse_generation(payload, gid)
    assert job.phase in PHASES
    assert job.phase not in ("submitted", "retrying", "downloading", "stopped")  # not the API's
    assert isinstance(job.generation_id, str) and isinstance(job.status, str)
    if job.phase == "completed":
        assert isinstance(job.video_url, str) and job.video_url
    assert job.credits is None or isinstance(job.credits, float)
    for text in (job.error_name, job.error_message):
        assert text is None or isinstance(text, str)
    if isinstance(payload, dict) and isinstance(payload.get("id"), str) and payload["id"]:
        assert job.generation_id == payload["id"]
