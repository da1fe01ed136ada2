"""Bad and borderline inputs through the app's API, as a program (or a careless person) sends them.

Each bad input must get a clear message naming the problem ("Status: not sent", then what is
wrong) and send nothing to the API; each valid one, however awkward, must go through: one
create, the job completes, the video is delivered. What the API actually received is read at
the simulator (its body check is spied on), so "the sent image is upright" is checked on the
bytes that crossed the wire.
"""

from __future__ import annotations

import base64
import io
import os
import resource
import struct
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from apprunner import generate, spy_on_creates
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from kling_ui.errors import InputError
from kling_ui.images import prepare_image

pytestmark = pytest.mark.timeout(120)

DATA = Path(__file__).parent / "data"
PROMPT = "The scene comes alive; the camera pushes in slowly."


# --- the app, and what reached the API -------------------------------------------------------


@pytest.fixture
def sent(live_app, monkeypatch) -> list[dict]:
    """The bodies of the create requests the simulator received, image included."""
    return spy_on_creates(monkeypatch)


def decode_sent_image(body: dict) -> Image.Image:
    uri = body["image_url"]
    assert uri.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


# --- image makers: each writes one file into a folder and returns its path -------------------


def picture(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A picture with some structure (a gradient and a shape), so JPEG has work to do."""
    im = Image.linear_gradient("L").resize(size).convert("RGB")
    ImageDraw.Draw(im).ellipse((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), "red")
    return im if mode == "RGB" else im.convert(mode)


def saved(name: str, size: tuple[int, int], fmt: str | None = None, **kw) -> Callable:
    def make(folder: Path) -> Path:
        path = folder / name
        picture(size).save(path, fmt, **kw)
        return path

    return make


def raw(name: str, data: bytes) -> Callable:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def fixture_file(name: str) -> Callable:
    return lambda folder: DATA / name


def truncated_jpeg(folder: Path) -> Path:
    buffer = io.BytesIO()
    noisy = Image.effect_noise((800, 600), 60).convert("RGB")
    noisy.save(buffer, "JPEG", quality=90)
    path = folder / "cut-off.jpg"
    path.write_bytes(buffer.getvalue()[: buffer.tell() // 2])
    return path


def corrupt_png(folder: Path) -> Path:
    """A PNG whose compressed pixels are garbage: the header reads, the pixels don't."""
    buffer = io.BytesIO()
    picture((640, 480)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 400] = bytes(range(256)) + bytes(range(134))
    path = folder / "broken.png"
    path.write_bytes(bytes(data))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> Callable:
    """A few-KB PNG whose header declares ``width`` x ``height``: a decompression bomb."""

    def make(folder: Path) -> Path:
        row = b"\x00" + bytes(width * 3)
        body = zlib.compress(row * 64, 9)  # the first rows only: the rest is the bomb's promise
        data = (
            b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b"")
        )
        path = folder / f"bomb-{width}x{height}.png"
        path.write_bytes(data)
        return path

    return make


def forty_mb_photo(folder: Path) -> Path:
    """A 13.6 MP picture stored uncompressed: about 40 MB on disk, well within 50 MB."""
    path = folder / "forty-mb.png"
    picture((4000, 3400)).save(path, compress_level=0)
    assert 38_000_000 < path.stat().st_size < 45_000_000
    return path


def palette_png(folder: Path) -> Path:
    path = folder / "palette.png"
    picture((640, 480)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path)
    return path


def transparent_png(folder: Path) -> Path:
    path = folder / "transparent.png"
    im = picture((640, 480)).convert("RGBA")
    im.putalpha(Image.linear_gradient("L").resize((640, 480)))  # from clear to opaque
    im.save(path)
    return path


def animated(fmt: str) -> Callable:
    def make(folder: Path) -> Path:
        frames = [
            Image.new("RGB", (640, 480), colour) for colour in ("red", "green", "blue", "white")
        ]
        path = folder / f"animated.{fmt.lower()}"
        frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
        with Image.open(path) as check:
            assert getattr(check, "n_frames", 1) == 4
        return path

    return make


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """One input: the image and fields sent, and what must happen."""

    id: str
    image: Callable[[Path], Path] | None = saved("photo.jpg", (800, 600))
    changes: dict = field(default_factory=dict)
    words: tuple[str, ...] = ()  # for a refused input: the problem, named
    valid: bool = False
    check: Callable[[dict], None] | None = None  # for a valid one: the body the API received


def prompt_arrives_exactly(text: str) -> Callable[[dict], None]:
    def check(body: dict) -> None:
        assert body["prompt"] == text

    return check


def upright(size: tuple[int, int]) -> Callable[[dict], None]:
    """The fixture's upright picture: red square top-left, blue bottom-right, no EXIF."""

    def check(body: dict) -> None:
        with decode_sent_image(body) as im:
            assert im.size == size
            assert not im.getexif()  # GPS and orientation are gone, so no viewer turns it again
            rgb = im.convert("RGB")
            r, g, b = rgb.getpixel((10, 10))
            assert r > 180 and g < 90 and b < 90, "red square not top-left"
            r, g, b = rgb.getpixel((size[0] - 10, size[1] - 10))
            assert b > 180 and r < 90 and g < 90, "blue square not bottom-right"

    return check


def sent_size(size: tuple[int, int]) -> Callable[[dict], None]:
    def check(body: dict) -> None:
        with decode_sent_image(body) as im:
            assert im.size == size and im.mode == "RGB"

    return check


# Hebrew, a right-to-left mark, then Arabic: "the sea moves slowly".
RTL = (
    "\u05d4\u05d9\u05dd \u05e0\u05e2 \u05dc\u05d0\u05d8 "
    "\u200f\u0627\u0644\u0628\u062d\u0631 \u064a\u062a\u062d\u0631\u0643"
)
INPUTS = [
    # --- images that can't be used -------------------------------------------------------------
    Input("empty-file", raw("empty.jpg", b""), words=("empty.jpg is an empty file",)),
    Input("truncated-jpeg", truncated_jpeg, words=("cut-off.jpg", "damaged or incomplete")),
    Input(
        "text-named-jpg",
        raw("notes.jpg", b"Shopping list: eggs, milk, bread.\n" * 20),
        words=("notes.jpg is not an image we can read", "JPEG, PNG"),
    ),
    Input(
        "html",
        raw("page.html", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"),
        words=("page.html is not an image we can read",),
    ),
    Input(
        "svg",
        raw(
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="600">'
            b'<rect width="800" height="600" fill="red"/></svg>',
        ),
        words=("drawing.svg is not an image we can read",),
    ),
    Input("pdf", saved("scan.pdf", (800, 600), "PDF"), words=("scan.pdf is not an image",)),
    Input("tiff", saved("photo.tiff", (800, 600), "TIFF"), words=("photo.tiff is not an image",)),
    Input(
        "jpeg-header-only",
        raw("header.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
        words=("header.jpg",),
    ),
    Input("corrupt-png-data", corrupt_png, words=("broken.png", "damaged or incomplete")),
    Input(
        "zip-named-png",
        raw("archive.png", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(200)),
        words=("archive.png is not an image we can read",),
    ),
    Input(
        "heic-from-an-iphone",  # an ISO media header with the HEIC brand, as phones write
        raw("IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(400)),
        words=("IMG_0001.HEIC is a HEIC/HEIF photo", "export it as JPEG"),
    ),
    Input("1x1", saved("dot.png", (1, 1)), words=("1×1 pixels", "at least 300")),
    Input("299-px-side", saved("narrow.png", (299, 600)), words=("299×600", "at least 300")),
    Input(
        "ratio-just-over-2.5-to-1",
        saved("wide.png", (751, 300)),
        words=("751×300", "2.503:1", "1:2.5 to 2.5:1", "crop or pad"),
    ),
    Input(
        "ratio-just-over-1-to-2.5",
        saved("tall.png", (300, 751)),
        words=("300×751", "1:2.503", "crop or pad"),
    ),
    Input(
        "bomb-gigapixel",
        bomb_png(40_000, 25_000),
        words=("too many pixels", "80 MP"),
    ),
    Input("bomb-100-mp", bomb_png(10_000, 10_000), words=("10000×10000", "80 MP")),
    # --- text that can't be used ---------------------------------------------------------------
    Input("empty-prompt", changes={"prompt": ""}, words=("Write a prompt",)),
    Input("blank-prompt", changes={"prompt": "  \n\t \u3000 "}, words=("Write a prompt",)),
    Input(
        "prompt-2501-chars",
        changes={"prompt": "a" * 2501},
        words=("2501 characters", "limit is 2500", "Shorten it by 1"),
    ),
    Input(
        "prompt-control-chars",
        changes={"prompt": "A bell rings\x07 twice\x1b[31m"},
        words=("control characters",),
    ),
    Input("prompt-nul", changes={"prompt": "The sea\x00 moves."}, words=("control characters",)),
    Input(
        "negative-prompt-2501-chars",
        changes={"negative_prompt": "blur, " * 417},  # 2502 characters
        words=("negative prompt is 2502 characters", "limit is 2500"),
    ),
    Input(
        "negative-prompt-nul",
        changes={"negative_prompt": "blur\x00"},
        words=("negative prompt contains control characters",),
    ),
    Input("no-image", image=None, words=("Add an image first",)),
    Input(
        "audio-switch-a-string",
        changes={"generate_audio": "yes"},
        words=('"Generate audio" must be on or off',),
    ),
    Input(
        "audio-switch-a-number",
        changes={"generate_audio": 1},
        words=('"Generate audio" must be on or off',),
    ),
    Input("prompt-null", changes={"prompt": None}, words=("Write a prompt",)),
    # --- awkward but valid: each goes through --------------------------------------------------
    Input("300x300", saved("square.png", (300, 300)), valid=True, check=sent_size((300, 300))),
    Input(
        "ratio-exactly-2.5-to-1",
        saved("wide-ok.png", (750, 300)),
        valid=True,
        check=sent_size((750, 300)),
    ),
    Input(
        "ratio-exactly-1-to-2.5",
        saved("tall-ok.jpg", (300, 750)),
        valid=True,
        check=sent_size((300, 750)),
    ),
    Input("forty-mb-photo", forty_mb_photo, valid=True, check=sent_size((2048, 1741))),
    Input("16-bit-png", fixture_file("gray16.png"), valid=True, check=sent_size((400, 320))),
    Input("cmyk-jpeg", fixture_file("cmyk.jpg"), valid=True, check=sent_size((400, 320))),
    Input("palette-png", palette_png, valid=True, check=sent_size((640, 480))),
    Input("transparent-png", transparent_png, valid=True, check=sent_size((640, 480))),
    Input("animated-gif", animated("GIF"), valid=True, check=sent_size((640, 480))),
    Input("animated-webp", animated("WEBP"), valid=True, check=sent_size((640, 480))),
    Input(
        "exif-orientation-3",
        fixture_file("orientation_3.jpg"),
        valid=True,
        check=upright((400, 320)),
    ),
    Input(
        "exif-orientation-6",
        fixture_file("orientation_6.jpg"),
        valid=True,
        check=upright((320, 400)),
    ),
    Input(
        "exif-orientation-8",
        fixture_file("orientation_8.jpg"),
        valid=True,
        check=upright((320, 400)),
    ),
    Input(
        "prompt-2500-chars",
        changes={"prompt": "a" * 2500},
        valid=True,
        check=prompt_arrives_exactly("a" * 2500),
    ),
    Input(
        "prompt-emoji",
        changes={"prompt": "The 🐈‍⬛ stretches, 👀 blinks and yawns 🥱; 🇳🇴 flag waves."},
        valid=True,
        check=prompt_arrives_exactly("The 🐈‍⬛ stretches, 👀 blinks and yawns 🥱; 🇳🇴 flag waves."),
    ),
    Input(
        "prompt-cjk",
        changes={
            "prompt": "猫がゆっくりと振り向き、まばたきする。镜头缓慢推进。고양이가 하품한다."
        },
        valid=True,
        check=prompt_arrives_exactly(
            "猫がゆっくりと振り向き、まばたきする。镜头缓慢推进。고양이가 하품한다."
        ),
    ),
    Input("prompt-rtl", changes={"prompt": RTL}, valid=True, check=prompt_arrives_exactly(RTL)),
    Input(
        "prompt-with-newlines-and-tabs",
        changes={"prompt": "First the waves rise.\n\tThen the gulls fly off.\r\n"},
        valid=True,
    ),
    Input(
        "negative-prompt-2500-chars",
        changes={"negative_prompt": "b" * 2500},
        valid=True,
        check=lambda body: body["negative_prompt"] == "b" * 2500,
    ),
    Input("duration-10", changes={"duration": 10}, valid=True),
]


def test_the_table_has_at_least_25_distinct_inputs():
    ids = [case.id for case in INPUTS]
    assert len(set(ids)) == len(ids)
    assert sum(not case.valid for case in INPUTS) >= 25
    assert sum(case.valid for case in INPUTS) >= 15


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the 100 MP bomb
@pytest.mark.parametrize("case", INPUTS, ids=[c.id for c in INPUTS])
def test_input(case: Input, client, live_app, sent, tmp_path):
    image = case.image(tmp_path) if case.image else None
    peak_before = _peak_rss_mb()
    started = time.monotonic()
    outputs = generate(client, image, **{"prompt": PROMPT, **case.changes})
    took = time.monotonic() - started
    gid, status, video = outputs[-1]
    for _, text, _ in outputs:
        assert "Traceback" not in text and "Something went wrong" not in text

    if not case.valid:
        assert status.startswith("Status: not sent\n"), status
        for words in case.words:
            assert words.lower() in status.lower(), (words, status)
        assert (gid, video) == ("", None)
        assert live_app.sim.creates == 0 and sent == []
        if case.id.startswith("bomb"):
            assert took < 5, f"a decompression bomb took {took:.1f} s to refuse"
            assert _peak_rss_mb() - peak_before < 200, "the bomb was decoded"
        return

    assert status.startswith("Status: completed"), status
    assert video is not None and gid
    assert live_app.sim.creates == 1 and len(sent) == 1
    entry = live_app.service.entry(gid)
    assert entry is not None and entry.state == "done"
    body = sent[0]
    assert body["prompt"] == case.changes.get("prompt", PROMPT)
    assert body["duration"] == case.changes.get("duration", 5)
    assert body["generate_audio"] is True
    assert len(body["image_url"]) < 2_000_000
    if case.check:
        case.check(body)


# --- what Gradio itself refuses, before our handler ------------------------------------------


@pytest.mark.parametrize("duration", [7, 0, True, "7"])
def test_a_duration_other_than_5_or_10_is_refused_clearly(client, live_app, duration, photo):
    try:
        status = generate(client, photo, duration=duration)[-1][1]
    except AppError as exc:  # Gradio's own check of the radio's choices
        message = str(exc)
        assert "not in the list of choices" in message and "5, 10" in message
    else:
        assert status.startswith("Status: not sent") and "5 or 10" in status
    assert live_app.sim.creates == 0


@pytest.mark.parametrize("missing", ["image", "prompt"])
def test_a_missing_required_field_is_named(client, live_app, missing, photo):
    args = {
        "image": handle_file(str(photo)),
        "prompt": PROMPT,
        "negative_prompt": "",
        "duration": 5,
        "generate_audio": True,
        "api_key": "",
    }
    del args[missing]
    with pytest.raises(TypeError, match=f"required argument: {missing}"):
        client.submit(**args, api_name="/generate").result()
    assert live_app.sim.creates == 0


def test_optional_fields_left_out_take_their_defaults(client, live_app, sent, photo):
    job = client.submit(image=handle_file(str(photo)), prompt=PROMPT, api_name="/generate")
    job.result()
    assert job.outputs()[-1][1].startswith("Status: completed")
    assert live_app.sim.creates == 1
    assert sent[0]["duration"] == 5 and sent[0]["generate_audio"] is True
    assert "negative_prompt" not in sent[0]


# --- the same images, straight to prepare_image ----------------------------------------------


@pytest.mark.parametrize(
    "name, size", [("orientation_3.jpg", (400, 320)), ("orientation_6.jpg", (320, 400))]
)
def test_prepare_image_turns_phone_photos_upright(name, size):
    prepared = prepare_image(DATA / name)
    assert (prepared.width, prepared.height) == size
    assert (prepared.source_width, prepared.source_height) == size
    upright(size)({"image_url": prepared.data_uri})


def test_a_bomb_is_refused_before_decoding(tmp_path):
    path = bomb_png(40_000, 25_000)(tmp_path)
    assert os.path.getsize(path) < 10_000
    peak_before = _peak_rss_mb()
    started = time.monotonic()
    with pytest.raises(InputError, match="too many pixels"):
        prepare_image(path)
    assert time.monotonic() - started < 0.5
    assert _peak_rss_mb() - peak_before < 50


# --- found by these tests ----------------------------------------------------------------------


def short_png(width: int, height: int, rows: int) -> bytes:
    """A PNG whose pixel stream ends cleanly after ``rows`` rows: the rest of it is missing."""
    row = b"\x00" + bytes([200]) * (width * 3)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(row * rows, 9))
        + _png_chunk(b"IEND", b"")
    )


def gif_on_a_big_screen(width: int, height: int) -> bytes:
    """A 400x400 GIF whose header declares a ``width`` x ``height`` logical screen."""
    buffer = io.BytesIO()
    Image.new("P", (400, 400)).save(buffer, "GIF")
    data = bytearray(buffer.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


@pytest.mark.xfail(
    reason="BUG: a PNG whose pixel data ends early (a cleanly closed zlib stream) is accepted; "
    "Pillow fills the missing rows with black and the picture is sent",
    strict=True,
)
def test_a_png_missing_half_its_rows_is_refused(client, live_app, tmp_path):
    path = tmp_path / "half.png"
    path.write_bytes(short_png(800, 600, rows=300))
    status = generate(client, path)[-1][1]
    assert live_app.sim.creates == 0
    assert status.startswith("Status: not sent") and "damaged or incomplete" in status


@pytest.mark.parametrize(
    "name, data",
    [
        ("bomb.png", short_png(8900, 8900, rows=1)),
        ("bomb.gif", gif_on_a_big_screen(6000, 6000)),
    ],
    ids=["png-79-mp-in-100-bytes", "gif-36-mp-in-700-bytes"],
)
def test_a_tiny_file_declaring_a_huge_canvas_is_refused_at_once(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    assert len(data) < 1_000
    started = time.monotonic()
    with pytest.raises(InputError):
        prepare_image(path)
    assert time.monotonic() - started < 0.5
