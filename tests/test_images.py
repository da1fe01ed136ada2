"""prepare_image: any upload in, a compliant data URI out, or an InputError that names the problem.

Test images are drawn with Pillow into tmp_path; the few that need a real camera's quirks
(CMYK, EXIF orientation with GPS, 16-bit) are checked in under tests/data, written by
tests/data/make_fixtures.py.
"""

from __future__ import annotations

import base64
import binascii
import io
import random
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageCms, ImageDraw

from kling_ui import images
from kling_ui.errors import InputError
from kling_ui.images import (
    MAX_INPUT_BYTES,
    MAX_JPEG_BYTES,
    MAX_LONG_SIDE,
    PreparedImage,
    prepare_image,
)

DATA = Path(__file__).parent / "data"
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
PREFIX = "data:image/jpeg;base64,"
NOT_AN_IMAGE = "not an image we can read; use JPEG, PNG, WebP, GIF or BMP"


def save(tmp_path: Path, im: Image.Image, name: str, **params) -> Path:
    path = tmp_path / name
    im.save(path, **params)
    return path


def decode(prepared: PreparedImage) -> tuple[Image.Image, bytes]:
    """The JPEG inside a data URI, loaded, with its bytes."""
    assert prepared.data_uri.startswith(PREFIX)
    data = base64.b64decode(prepared.data_uri[len(PREFIX) :], validate=True)
    im = Image.open(io.BytesIO(data))
    im.load()
    return im, data


def close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose header claims width x height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = binascii.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def swapped_primaries_profile() -> bytes:
    """An RGB ICC profile that is sRGB with the red and green primaries exchanged.

    A pixel stored as pure red under this profile is pure green in sRGB, so a converter that
    honours the profile is easy to tell from one that ignores it.
    """
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack_from(">I", data, 128)
    tags = {}
    for i in range(count):
        entry = 132 + 12 * i
        signature, offset, size = struct.unpack_from(">4sII", data, entry)
        tags[signature] = (entry, offset, size)
    (red_entry, *red), (green_entry, *green) = tags[b"rXYZ"], tags[b"gXYZ"]
    struct.pack_into(">4sII", data, red_entry, b"rXYZ", *green)
    struct.pack_into(">4sII", data, green_entry, b"gXYZ", *red)
    return bytes(data).replace("sRGB".encode("utf-16-be"), "Swap".encode("utf-16-be"))


@pytest.fixture(scope="module")
def noisy_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 MP JPEG full of fine detail, the hardest kind of photo to keep small."""
    size = (6000, 4000)
    ramp = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40)
    photo = Image.merge("RGB", (ramp, noise, ramp.transpose(Image.Transpose.ROTATE_180)))
    return save(tmp_path_factory.mktemp("photo"), photo, "photo.jpg", quality=92)


# --- What is accepted ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode", "params"),
    [
        ("photo.jpg", "RGB", {}),
        ("progressive.jpg", "RGB", {"progressive": True}),
        ("grey.jpg", "L", {}),
        ("picture.png", "RGB", {}),
        ("picture.webp", "RGB", {"quality": 90}),
        ("lossless.webp", "RGB", {"lossless": True}),
        ("picture.gif", "P", {}),
        ("picture.bmp", "RGB", {}),
        ("phone.mpo", "RGB", {"save_all": True}),
    ],
)
def test_each_upload_format_becomes_a_jpeg_of_the_same_size_and_colour(
    tmp_path, name, mode, params
):
    picture = Image.new("RGB", (400, 320), (200, 30, 40))
    picture = picture.convert(mode, palette=Image.Palette.ADAPTIVE)  # no dithering for "P"
    prepared = prepare_image(save(tmp_path, picture, name, **params))
    sent, _ = decode(prepared)
    assert (sent.format, sent.mode, sent.size) == ("JPEG", "RGB", (400, 320))
    assert close(sent.getpixel((200, 160)), picture.convert("RGB").getpixel((200, 160)), 12)


@pytest.mark.parametrize(("name", "params"), [("anim.gif", {}), ("anim.webp", {"lossless": True})])
def test_an_animation_is_sent_as_its_first_frame(tmp_path, name, params):
    frames = [Image.new("RGB", (400, 320), colour) for colour in (RED, BLUE, GREEN)]
    path = save(tmp_path, frames[0], name, save_all=True, append_images=frames[1:], **params)
    sent, _ = decode(prepare_image(path))
    assert close(sent.getpixel((200, 160)), RED)


def test_the_data_uri_is_a_jpeg_of_the_reported_size_and_byte_count(tmp_path):
    prepared = prepare_image(save(tmp_path, Image.new("RGB", (640, 480), BLUE), "a.png"))
    sent, data = decode(prepared)
    assert sent.size == (prepared.width, prepared.height) == (640, 480)
    assert (prepared.source_width, prepared.source_height) == (640, 480)
    assert prepared.byte_size == len(data)
    assert "\n" not in prepared.data_uri
    assert prepared.adjusted is None


def test_the_data_uri_stays_out_of_repr(tmp_path):
    prepared = prepare_image(save(tmp_path, Image.new("RGB", (400, 400)), "a.png"))
    assert "base64" not in repr(prepared)


@pytest.mark.parametrize("path_type", [str, Path])
def test_a_path_may_be_a_string_or_a_path_object(tmp_path, path_type):
    path = save(tmp_path, Image.new("RGB", (400, 400)), "a.png")
    assert prepare_image(path_type(path)).width == 400


def test_an_https_url_is_passed_through_untouched():
    url = "https://cdn.example.com/cat.jpg?sig=abc"
    prepared = prepare_image(url)
    assert prepared.data_uri == url
    assert (prepared.width, prepared.height, prepared.byte_size, prepared.adjusted) == (
        0,
        0,
        0,
        None,
    )


# --- What is refused, and what the message says ----------------------------------------------


def tiff(path: Path) -> None:
    Image.new("RGB", (400, 400)).save(path, "TIFF")


def truncated_jpeg(path: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((400, 400), 50).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: buffer.tell() // 2])


def truncated_png(path: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((400, 400), 50).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: buffer.tell() // 2])


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("empty.jpg", b"", "empty file"),
        ("notes.jpg", b"just some text, not a picture\n", NOT_AN_IMAGE),
        ("page.png", b"<!DOCTYPE html><html><body>hi</body></html>", NOT_AN_IMAGE),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', NOT_AN_IMAGE),
        ("doc.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", NOT_AN_IMAGE),
        ("scan.tif", tiff, NOT_AN_IMAGE),
        ("cut.jpg", truncated_jpeg, "damaged or incomplete"),
        ("cut.png", truncated_png, "damaged or incomplete"),
        ("bad.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, NOT_AN_IMAGE),
    ],
)
def test_a_file_that_is_not_a_usable_image_is_refused_with_the_reason(
    tmp_path, name, write, message
):
    path = tmp_path / name
    if callable(write):
        write(path)
    else:
        path.write_bytes(write)
    with pytest.raises(InputError, match=message):
        prepare_image(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="gone.jpg was not found"):
        prepare_image(tmp_path / "gone.jpg")


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="could not be read"):
        prepare_image(tmp_path)


@pytest.mark.parametrize("source", ["", "   ", None])
def test_no_image_at_all_is_refused(source):
    with pytest.raises(InputError, match="No image"):
        prepare_image(source)


def test_a_file_over_the_upload_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.jpg"
    with path.open("wb") as f:
        f.truncate(MAX_INPUT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(InputError, match=r"50\.0 MB; the largest image we accept is 50 MB"):
        prepare_image(path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/cat.jpg", "must start with https://"),
        ("ftp://example.com/cat.jpg", "must start with https://"),
        ("https://", "not a valid https address"),
        ("https://example.com/a cat.jpg", "not a valid https address"),
    ],
)
def test_a_link_that_is_not_a_valid_https_url_is_refused(url, message):
    with pytest.raises(InputError, match=message):
        prepare_image(url)


def test_an_unknown_fit_mode_is_refused(tmp_path):
    with pytest.raises(InputError, match='Unknown fit mode "stretch"'):
        prepare_image(tmp_path / "a.png", fit="stretch")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((1, 1), "1×1 pixels; each side must be at least 300"),
        ((299, 400), "299×400 pixels; each side must be at least 300"),
        ((400, 299), "400×299 pixels; each side must be at least 300"),
    ],
)
def test_an_image_with_a_side_under_300_px_is_refused_with_its_size(tmp_path, size, message):
    with pytest.raises(InputError, match=message):
        prepare_image(save(tmp_path, Image.new("RGB", size), "small.png"))


@pytest.mark.parametrize("size", [(300, 300), (300, 750), (2048, 2048)])
def test_an_image_exactly_at_the_limits_is_sent_unchanged(tmp_path, size):
    prepared = prepare_image(save(tmp_path, Image.new("RGB", size), "edge.png"))
    assert ((prepared.width, prepared.height), prepared.adjusted) == (size, None)


@pytest.mark.parametrize(
    ("size", "accepted"),
    [
        ((750, 300), True),  # 2.5:1 exactly
        ((751, 300), False),
        ((300, 750), True),  # 1:2.5 exactly
        ((300, 751), False),
        ((1000, 401), True),
        ((1000, 399), False),
    ],
)
def test_the_aspect_ratio_limit_is_inclusive(tmp_path, size, accepted):
    path = save(tmp_path, Image.new("RGB", size), "ratio.png")
    if accepted:
        prepared = prepare_image(path)
        assert (prepared.width, prepared.height) == size
    else:
        with pytest.raises(InputError, match="allowed range is 1:2.5 to 2.5:1"):
            prepare_image(path)


@pytest.mark.parametrize(
    ("size", "ratio"),
    [((900, 300), "3.00:1"), ((300, 900), "1:3.00"), ((751, 300), "2.503:1")],
)
def test_a_refused_ratio_is_stated_and_crop_or_pad_offered(tmp_path, size, ratio):
    with pytest.raises(InputError, match="Choose crop or pad") as caught:
        prepare_image(save(tmp_path, Image.new("RGB", size), "wide.png"))
    assert f"an aspect ratio of {ratio};" in str(caught.value)


# --- Decompression bombs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((50_000, 50_000), "too many pixels to open safely"),  # Pillow's own hard limit
        ((9_000, 9_000), "9000×9000 pixels \\(81 MP\\); the most we open is 80 MP"),
    ],
)
def test_an_image_declaring_too_many_pixels_is_refused_fast(tmp_path, size, message):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(*size))
    started = time.perf_counter()
    with pytest.raises(InputError, match=message):
        prepare_image(path)
    assert time.perf_counter() - started < 2.0


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillows_bomb_warning_becomes_a_refusal_when_warnings_are_errors(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(12_000, 10_000))
    with pytest.raises(InputError, match="too many pixels"):
        prepare_image(path)


def test_a_48_megapixel_phone_photo_is_within_the_pixel_limit(tmp_path):
    path = save(tmp_path, Image.new("RGB", (8064, 6048), (90, 120, 150)), "phone.jpg")
    prepared = prepare_image(path)
    assert (prepared.width, prepared.height) == (2048, 1536)


# --- Decode memory ---------------------------------------------------------------------------
#
# Formats with no reduced decode are refused by what their full decode would hold in memory,
# read from the header. The files below declare a size over their pixels' worth of data: what
# is refused for memory says so; what is not goes on to decode and is found damaged, so the
# message tells which happened, and the refusal is proof that nothing was decoded.

MEMORY_REFUSAL = "has to be decoded whole, so the most we open is"
DAMAGED = "damaged or incomplete"


def png_with_junk(width: int, height: int, depth: int, colour_type: int) -> bytes:
    """A PNG header declaring ``width`` x ``height``, then 300 KB of random bytes as its data
    (enough bytes for the pixel count to pass the damaged-file check)."""
    junk = random.Random(width * height).randbytes(300_000)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", junk)
        + png_chunk(b"IEND", b"")
    )


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def jpeg_declaring(width: int, height: int, mode: str = "RGB", **params) -> bytes:
    """A small JPEG whose frame header (SOF) is rewritten to declare ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new(mode, (64, 64)).save(buffer, "JPEG", **params)
    data = bytearray(buffer.getvalue())
    sof = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def first_scan_of_one_component(data: bytes) -> bytes:
    """The JPEG with its first scan (SOS) saying it holds one component of three."""
    sos = data.index(b"\xff\xda")
    return data[: sos + 4] + b"\x01" + data[sos + 5 :]


def bmp_rle8_declaring(width: int, height: int) -> bytes:
    """An RLE8-compressed BMP header declaring ``width`` x ``height``, with one run of data."""
    pixels = b"\x10\x01\x00\x01"  # 16 pixels of colour 1, end of bitmap
    palette = bytes(1024)
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return header + info + palette + pixels


@pytest.mark.parametrize(
    ("name", "data", "most"),
    [
        ("rgb.png", png_with_junk(6700, 6700, 8, 2), "44 MP"),  # 45 MP, 4 bytes a pixel
        ("rgba16.png", png_with_junk(6700, 6700, 16, 6), "44 MP"),
        ("scan.jpg", jpeg_declaring(6000, 5000, progressive=True, subsampling=0), "25 MP"),
        ("cmyk.jpg", jpeg_declaring(5000, 4000, "CMYK", progressive=True), "19 MP"),
        ("sequential.jpg", first_scan_of_one_component(jpeg_declaring(8000, 7000)), "44 MP"),
        ("rle.bmp", bmp_rle8_declaring(8000, 8000), "59 MP"),
    ],
    ids=[
        "png-rgb-45-mp",
        "png-rgba-16-bit-45-mp",
        "jpeg-progressive-444-30-mp",
        "jpeg-progressive-cmyk-20-mp",
        "jpeg-scans-one-component-first-56-mp",
        "bmp-rle8-64-mp",
    ],
)
def test_a_picture_whose_decode_would_take_too_much_memory_is_refused_before_decoding(
    tmp_path, name, data, most
):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=MEMORY_REFUSAL) as caught:
        prepare_image(path)
    message = str(caught.value)
    assert f"the most we open is {most} (80 MP as a standard JPEG)" in message
    assert "Save a smaller copy, or save it as a standard JPEG" in message


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("rgb.png", png_with_junk(6675, 6675, 8, 2)),  # 44.6 MP: the largest square taken
        ("photo.jpg", jpeg_declaring(8944, 8944)),  # baseline: decoded at 1/4 scale
        ("editor.jpg", jpeg_declaring(6000, 4000, progressive=True, subsampling=0)),  # 24 MP
        ("rle.bmp", bmp_rle8_declaring(7000, 7000)),
    ],
    ids=["png-rgb-44.6-mp", "jpeg-baseline-80-mp", "jpeg-progressive-444-24-mp", "bmp-rle8-49-mp"],
)
def test_a_picture_within_the_decode_memory_goes_on_to_be_decoded(tmp_path, name, data):
    """Decoded, then found damaged (PNG, BMP) or sent with its missing rows grey (libjpeg
    fills them in): either way not refused for memory."""
    path = tmp_path / name
    path.write_bytes(data)
    try:
        prepared = prepare_image(path)
    except InputError as exc:
        assert DAMAGED in str(exc)
    else:
        assert name.endswith(".jpg") and max(prepared.width, prepared.height) == 2048


def test_a_webp_over_its_decode_memory_is_refused(tmp_path):
    path = tmp_path / "flat.webp"
    Image.new("RGB", (3400, 3400), BLUE).save(path, lossless=True)  # 11.6 MP in a few KB
    with pytest.raises(InputError, match=MEMORY_REFUSAL) as caught:
        prepare_image(path)
    assert "3400×3400 pixels (12 MP); a WebP image has to be decoded whole" in str(caught.value)
    assert "the most we open is 11 MP" in str(caught.value)


def sixteen_bit_grey_png(width: int, height: int) -> bytes:
    """A 16-bit greyscale PNG, a ramp from black to white across, written row by row: each
    row after the first is stored as its difference from the one above (PNG's Up filter), so
    the file is a few hundred KB, as an encoder would make it."""
    ramp = b"".join(struct.pack(">H", x * 65535 // (width - 1)) for x in range(width))
    same = b"\2" + bytes(len(ramp))
    deflate = zlib.compressobj(9)
    data = deflate.compress(b"\0" + ramp)
    data += b"".join(deflate.compress(same) for _ in range(height - 1)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def test_issue_11s_16_bit_png_is_converted_a_strip_at_a_time(tmp_path, monkeypatch):
    """The issue's file: 8900x8900 pixels of 16-bit grey in a few hundred KB. It fits the
    budget (2 bytes a pixel), but its conversion to 8 bits used to be made at full size, in
    three copies (890 MB of memory); now only strips of it are converted as it is resized."""
    path = tmp_path / "grey16.png"
    path.write_bytes(sixteen_bit_grey_png(8900, 8900))
    assert path.stat().st_size < 400_000
    converted: list[int] = []
    convert = Image.Image.convert

    def counting_convert(self, *args, **kwargs):
        converted.append(self.width * self.height)
        return convert(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", counting_convert)
    prepared = prepare_image(path)
    monkeypatch.undo()

    assert (prepared.width, prepared.height, prepared.adjusted) == (
        2048,
        2048,
        "resized from 8900×8900",
    )
    sent, _ = decode(prepared)
    left, middle, right = (sent.getpixel((x, 1024))[0] for x in (2, 1024, 2045))
    assert left < 10 and 118 <= middle <= 138 and right > 245
    assert converted, "nothing was converted"
    # Strips of about a megapixel, and the 2048x2048 picture sent: never the 79 MP source.
    assert max(converted) <= MAX_LONG_SIDE**2, f"{max(converted):,} pixels converted at once"


@pytest.mark.parametrize(
    ("mode", "size", "box", "out"),
    [
        ("P", (2600, 1300), (0, 0, 2600, 1300), (2048, 1024)),  # palette, just over 2048
        ("RGBA", (3000, 2000), (250, 0, 2750, 2000), (2048, 1639)),  # cropped, transparent
        ("LA", (600, 12500), (0, 0, 600, 12500), (99, 2048)),  # reduced 2x first, then resized
        ("1", (2500, 1000), (0, 0, 2500, 1000), (2048, 820)),
    ],
)
def test_strips_meet_without_seams(monkeypatch, mode, size, box, out):
    """Resized a strip at a time, a picture comes out as it would have resized whole."""
    rng = random.Random(7)
    picture = Image.merge("RGB", [Image.effect_noise(size, 90) for _ in range(3)])
    draw = ImageDraw.Draw(picture)
    for _ in range(60):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.rectangle((x, y, x + 200, y + 7), fill=(rng.randrange(256), 0, 255))
    if mode == "P":  # noise as palette indices into a palette of random colours
        picture = Image.frombytes("P", size, picture.getchannel("R").tobytes())
        picture.putpalette(rng.randbytes(768))
    else:
        alpha = Image.linear_gradient("L").resize(size)
        picture = picture.convert("RGBA")
        picture.putalpha(alpha)
        picture = picture.convert(mode)
    monkeypatch.setattr(images.render, "_STRIP_PIXELS", 200_000)  # dozens of strips

    strips = images._resample_in_strips(picture, box, out)

    whole = images._flatten(images._to_working_mode(picture))
    factor = (
        int((box[2] - box[0]) / out[0] / 3.0) or 1,
        int((box[3] - box[1]) / out[1] / 3.0) or 1,
    )
    if factor != (1, 1):
        whole = whole.reduce(factor)
    reduced_box = (box[0] / factor[0], box[1] / factor[1], box[2] / factor[0], box[3] / factor[1])
    whole = whole.resize(out, Image.Resampling.BICUBIC, box=reduced_box)
    assert strips.mode == whole.mode and strips.size == whole.size == out
    worst = max(high for _, high in ImageChops.difference(strips, whole).getextrema())
    assert worst <= 1


class TestDecodesShareOneMemoryBudget:
    """Uploads being prepared at once hold at most DECODE_BUDGET of decoded pixels together:
    a decode that doesn't fit waits its turn (first come, first served)."""

    def waiter(self, budget: images._MemoryBudget, cost: int) -> tuple[threading.Thread, list]:
        entered: list[int] = []

        def hold() -> None:
            with budget.hold(cost):
                entered.append(budget.used)

        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        return thread, entered

    @staticmethod
    def until_queued(budget: images._MemoryBudget, count: int) -> None:
        for _ in range(5000):
            if len(budget._turns) == count:
                return
            time.sleep(0.001)
        raise AssertionError("the waiter never asked for its turn")

    def test_what_fits_goes_ahead_and_one_alone_always_may(self):
        budget = images._MemoryBudget(100)
        with budget.hold(40), budget.hold(60):
            assert budget.used == 100
        with budget.hold(500):  # more than the whole budget, but alone
            assert budget.used == 500
        assert budget.used == 0

    def test_a_decode_that_does_not_fit_waits_and_later_ones_queue_behind_it(self):
        budget = images._MemoryBudget(100)
        with budget.hold(80):
            big, big_entered = self.waiter(budget, 50)
            self.until_queued(budget, 1)
            small, small_entered = self.waiter(budget, 10)  # would fit, but comes second
            self.until_queued(budget, 2)
            assert big_entered == small_entered == []
        big.join(5)
        small.join(5)
        assert big_entered == [50]
        assert small_entered in ([60], [10])  # beside the first, or after it
        assert budget.used == 0 and not budget._turns


# --- Orientation and metadata ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "upright"), [(3, (400, 320)), (6, (320, 400)), (8, (320, 400))]
)
def test_an_exif_rotated_photo_is_sent_upright(orientation, upright):
    prepared = prepare_image(DATA / f"orientation_{orientation}.jpg")
    sent, _ = decode(prepared)
    assert sent.size == upright == (prepared.source_width, prepared.source_height)
    assert close(sent.getpixel((10, 10)), RED)  # the red marker is top-left
    assert close(sent.getpixel((upright[0] - 10, upright[1] - 10)), BLUE)
    assert close(sent.getpixel((upright[0] - 10, 10)), WHITE)


def test_a_large_rotated_photo_is_resized_and_turned_upright(tmp_path):
    upright = Image.new("RGB", (2000, 4000), WHITE)
    ImageDraw.Draw(upright).rectangle((0, 0, 299, 299), fill=RED)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    prepared = prepare_image(save(tmp_path, stored, "big.jpg", exif=exif), fit="crop")
    sent, _ = decode(prepared)
    assert sent.size == (1024, 2048)
    assert prepared.adjusted == "resized from 2000×4000"
    assert close(sent.getpixel((20, 20)), RED)
    assert close(sent.getpixel((1000, 20)), WHITE)


TEXT_ORIENTATION = (  # a TIFF directory whose Orientation tag is the text "6", not a number
    b"MM\x00*\x00\x00\x00\x08\x00\x01" + struct.pack(">HHI4s", 0x0112, 2, 2, b"6\0\0\0") + b"\0" * 4
)


@pytest.mark.parametrize(
    ("name", "exif"),
    [
        ("broken.png", b"not a TIFF directory"),
        ("broken.webp", b"not a TIFF directory"),
        ("text.jpg", TEXT_ORIENTATION),
    ],
)
def test_unreadable_exif_is_ignored_and_the_picture_sent_as_stored(tmp_path, name, exif):
    params = {"lossless": True} if name.endswith(".webp") else {}
    path = save(tmp_path, Image.new("RGB", (400, 320), RED), name, exif=exif, **params)
    sent, data = decode(prepare_image(path))
    assert sent.size == (400, 320)
    assert b"Exif" not in data


def test_exif_and_gps_are_not_sent():
    with Image.open(DATA / "orientation_6.jpg") as original:
        assert original.getexif().get_ifd(0x8825)  # the fixture does carry GPS
    sent, data = decode(prepare_image(DATA / "orientation_6.jpg"))
    assert b"Exif" not in data
    assert not sent.getexif()


def test_comments_and_colour_profiles_are_not_sent(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = save(
        tmp_path, Image.new("RGB", (400, 400), RED), "a.jpg", comment=b"secret", icc_profile=srgb
    )
    sent, data = decode(prepare_image(path))
    assert b"secret" not in data
    assert "icc_profile" not in sent.info
    assert close(sent.getpixel((200, 200)), RED)


# --- Colour modes ----------------------------------------------------------------------------


def rgba_half_transparent() -> Image.Image:
    im = Image.new("RGBA", (400, 400), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (0, 0, 200, 400))  # left half fully transparent blue
    return im


def palette_with_transparency() -> Image.Image:
    im = Image.new("P", (400, 400), 0)
    im.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)  # index 0 blue, 1 red
    im.paste(1, (200, 0, 400, 400))
    im.info["transparency"] = 0
    return im


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("rgba.png", rgba_half_transparent),
        ("rgba.webp", rgba_half_transparent),
        ("la.png", lambda: rgba_half_transparent().convert("LA")),
        ("palette.png", palette_with_transparency),
        ("palette.gif", palette_with_transparency),
    ],
)
def test_transparent_areas_become_white(tmp_path, name, make):
    picture = make()
    params = {"transparency": 0} if picture.mode == "P" else {}
    if name.endswith(".webp"):
        params["lossless"] = True
    sent, _ = decode(prepare_image(save(tmp_path, picture, name, **params)))
    assert close(sent.getpixel((100, 200)), WHITE, 8)
    opaque = picture.convert("RGBA").getpixel((300, 200))[:3]
    assert close(sent.getpixel((300, 200)), opaque if name != "la.png" else (76, 76, 76))


def test_half_transparent_red_is_blended_onto_white(tmp_path):
    path = save(tmp_path, Image.new("RGBA", (400, 400), (255, 0, 0, 128)), "glass.png")
    sent, _ = decode(prepare_image(path))
    assert close(sent.getpixel((200, 200)), (255, 127, 127), 10)


def test_a_cmyk_jpeg_keeps_its_colours():
    sent, _ = decode(prepare_image(DATA / "cmyk.jpg"))
    assert close(sent.getpixel((100, 160)), RED)
    assert close(sent.getpixel((300, 160)), BLUE)


def test_a_16_bit_greyscale_ramp_keeps_its_mid_tones():
    sent, _ = decode(prepare_image(DATA / "gray16.png"))
    left, middle, right = (sent.getpixel((x, 160))[0] for x in (2, 200, 397))
    assert left < 10
    assert 118 <= middle <= 138  # a clipping conversion would make this 255
    assert right > 245


def test_a_palette_image_keeps_its_colours(tmp_path):
    picture = Image.new("RGB", (400, 400), GREEN)
    picture.paste(RED, (0, 0, 200, 400))
    path = save(tmp_path, picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=4), "p.png")
    sent, _ = decode(prepare_image(path))
    assert close(sent.getpixel((100, 200)), RED)
    assert close(sent.getpixel((300, 200)), GREEN)


def test_a_1_bit_image_stays_black_and_white(tmp_path):
    picture = Image.new("1", (400, 400), 0)
    picture.paste(1, (200, 0, 400, 400))
    sent, _ = decode(prepare_image(save(tmp_path, picture, "bw.png")))
    assert close(sent.getpixel((100, 200)), (0, 0, 0), 10)
    assert close(sent.getpixel((300, 200)), WHITE, 10)


def test_a_wide_gamut_profile_is_converted_to_srgb(tmp_path):
    profile = swapped_primaries_profile()
    path = save(tmp_path, Image.new("RGB", (400, 400), RED), "tagged.png", icc_profile=profile)
    sent, _ = decode(prepare_image(path))
    assert close(sent.getpixel((200, 200)), GREEN)


def test_a_broken_colour_profile_is_ignored(tmp_path):
    path = save(tmp_path, Image.new("RGB", (400, 400), RED), "odd.png", icc_profile=b"nonsense")
    sent, _ = decode(prepare_image(path))
    assert close(sent.getpixel((200, 200)), RED)


# --- Crop, pad and resize --------------------------------------------------------------------


def banded(size: tuple[int, int], band: int) -> Image.Image:
    """Green, with red bands of ``band`` px at both ends of the long side."""
    w, h = size
    im = Image.new("RGB", size, GREEN)
    ends = (
        [(0, 0, band, h), (w - band, 0, w, h)] if w >= h else [(0, 0, w, band), (0, h - band, w, h)]
    )
    for box in ends:
        im.paste(RED, box)
    return im


@pytest.mark.parametrize(
    ("size", "expected", "note"),
    [
        ((1000, 300), (750, 300), "cropped to 2.5:1"),
        ((300, 1000), (300, 750), "cropped to 1:2.5"),
        ((6000, 2000), (2048, 820), "cropped to 2.5:1, resized from 6000×2000"),
    ],
)
def test_crop_keeps_the_centre_at_the_nearest_allowed_ratio(tmp_path, size, expected, note):
    band = (max(size) - max(expected) * min(size) // min(expected)) // 2
    prepared = prepare_image(save(tmp_path, banded(size, band), "wide.png"), fit="crop")
    sent, _ = decode(prepared)
    assert (sent.size, prepared.adjusted) == (expected, note)
    for corner in ((2, 2), (expected[0] - 3, expected[1] - 3)):
        assert close(sent.getpixel(corner), GREEN)  # the red ends were cut away


def test_crop_that_would_leave_a_side_under_300_px_is_refused(tmp_path):
    with pytest.raises(InputError, match="cropped to 2.5:1 it would be 500×200"):
        prepare_image(save(tmp_path, Image.new("RGB", (1000, 200)), "strip.png"), fit="crop")


@pytest.mark.parametrize(
    ("size", "expected", "inside", "outside", "note"),
    [
        ((1000, 300), (1000, 400), (500, 200), (500, 10), "padded to 2.5:1"),
        ((300, 1000), (400, 1000), (200, 500), (10, 500), "padded to 1:2.5"),
        ((1000, 200), (1000, 400), (500, 200), (500, 40), "padded to 2.5:1"),
        (
            (5000, 1000),
            (2048, 820),
            (1024, 410),
            (1024, 5),
            "padded to 2.5:1, resized from 5000×1000",
        ),
    ],
)
def test_pad_adds_white_bars_to_the_nearest_allowed_ratio(
    tmp_path, size, expected, inside, outside, note
):
    prepared = prepare_image(save(tmp_path, Image.new("RGB", size, GREEN), "strip.png"), fit="pad")
    sent, _ = decode(prepared)
    assert (sent.size, prepared.adjusted) == (expected, note)
    assert close(sent.getpixel(inside), GREEN)
    assert close(sent.getpixel(outside), WHITE)


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_crop_and_pad_leave_an_image_within_the_limits_alone(tmp_path, fit):
    prepared = prepare_image(save(tmp_path, Image.new("RGB", (800, 600)), "ok.png"), fit=fit)
    assert ((prepared.width, prepared.height), prepared.adjusted) == ((800, 600), None)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4096, 2048), (2048, 1024)),
        ((2048, 4096), (1024, 2048)),
        ((2500, 1000), (2048, 820)),  # 819.2 rounds up: 2048x819 would be wider than 2.5:1
        ((2049, 2049), (2048, 2048)),
    ],
)
def test_a_large_image_is_resized_to_a_long_side_of_2048_within_the_ratio(tmp_path, size, expected):
    prepared = prepare_image(save(tmp_path, Image.new("RGB", size, BLUE), "big.png"))
    assert (prepared.width, prepared.height) == expected
    assert max(expected) / min(expected) <= 2.5
    assert prepared.adjusted == f"resized from {size[0]}×{size[1]}"


def test_a_24_megapixel_photo_becomes_a_2048_px_jpeg_under_2_mb_of_base64(noisy_photo):
    prepared = prepare_image(noisy_photo)
    sent, _ = decode(prepared)
    assert sent.size == (MAX_LONG_SIDE, 1366)
    assert prepared.byte_size <= MAX_JPEG_BYTES
    assert len(prepared.data_uri) < 2_000_000
    assert prepared.adjusted == "resized from 6000×4000"


def test_a_picture_too_detailed_for_the_budget_is_shrunk_until_it_fits(tmp_path):
    noise = Image.merge("RGB", [Image.effect_noise((2048, 2048), 128) for _ in range(3)])
    prepared = prepare_image(save(tmp_path, noise, "static.bmp"))
    assert prepared.byte_size <= MAX_JPEG_BYTES
    assert prepared.width == prepared.height < 2048
    assert prepared.adjusted == "resized from 2048×2048"


# --- Nothing but InputError ever escapes -----------------------------------------------------


def sample_files() -> dict[str, bytes]:
    picture = Image.new("RGB", (320, 320), (10, 200, 90))
    ImageDraw.Draw(picture).ellipse((40, 40, 280, 280), fill=RED)
    files = {}
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP"):
        buffer = io.BytesIO()
        picture.save(buffer, fmt)
        files[fmt] = buffer.getvalue()
    return files


SAMPLES = sample_files()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fmt=st.sampled_from(sorted(SAMPLES)),
    cut=st.floats(min_value=0.0, max_value=1.0),
    edits=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8),
)
def test_a_damaged_file_never_raises_anything_but_input_error(tmp_path, fmt, cut, edits):
    data = bytearray(SAMPLES[fmt][: max(1, int(len(SAMPLES[fmt]) * cut))])
    for where, value in edits:
        data[min(len(data) - 1, int(len(data) * where))] = value
    path = tmp_path / "damaged.img"
    path.write_bytes(bytes(data))
    try:
        prepared = prepare_image(path)
    except InputError:
        return
    decode(prepared)


def test_a_tiny_file_declaring_a_big_canvas_under_the_cap_is_refused_before_decoding(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 6000, 5000, 8, 0, 0, 0, 0)  # 30 MP, 8-bit grey
    path = tmp_path / "bomb.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 6001, 9))
        + chunk(b"IEND", b"")
    )
    started = time.perf_counter()
    with pytest.raises(InputError, match="declares 6000×5000 pixels"):
        prepare_image(path)
    assert time.perf_counter() - started < 2.0


def test_a_flat_one_bit_drawing_is_not_mistaken_for_a_damaged_file(tmp_path):
    """Found by Hypothesis: deflate packs a flat 1-bit PNG into ~8000 pixels a byte,
    legitimately; only more than a file can hold is refused."""
    width, height = 1956, 2045
    rows = bytes((1 + (width + 7) // 8) * height)  # filter 0, every pixel black

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    path = tmp_path / "flat.png"
    path.write_bytes(data)
    assert width * height / len(data) > 2000  # denser than the old flat limit allowed
    prepared = prepare_image(path)
    assert (prepared.source_width, prepared.source_height) == (width, height)


def test_a_flat_webp_is_not_mistaken_for_a_damaged_file(tmp_path):
    """Found by Hypothesis: lossless WebP packs a flat 4 MP picture into a few dozen bytes."""
    path = tmp_path / "flat.webp"
    Image.new("RGB", (1956, 2045), (0, 0, 0)).save(path, lossless=True)
    assert path.stat().st_size < 2000
    prepared = prepare_image(path)
    assert (prepared.source_width, prepared.source_height) == (1956, 2045)
