"""The pixels: a JPEG's reduced decode (``_draft``), crop or pad and resize a strip at a
time, conversion to 8-bit sRGB (an ICC profile honoured, transparency laid on white), the
picture turned upright, and the JPEG encode within the size budget.

Imports Pillow and ``images.limits`` / ``images.plan``.
"""

from __future__ import annotations

import functools
import io
import math
import os
import tempfile

from PIL import Image

from .limits import JPEG_QUALITY, MAX_JPEG_BYTES, MIN_JPEG_QUALITY, MIN_SIDE
from .plan import _fit_long_side, _Plan

try:
    from PIL import ImageCms
except ImportError:  # pragma: no cover - Pillow built without LittleCMS
    ImageCms = None  # type: ignore[assignment]

# Resizing converts (and flattens) this many source pixels at a time.
_STRIP_PIXELS = 1 << 20
# Bicubic, not Lanczos: after JPEG's own downscaling the rest is a small step, where the two
# are indistinguishable and bicubic takes two thirds of the time. A step of more than 3x
# starts with a box reduction by a whole factor (as Pillow's reducing_gap=3.0).
_RESAMPLE = Image.Resampling.BICUBIC
_REDUCING_GAP = 3.0
_WHITE = (255, 255, 255)
# What Pillow raises for a file it recognised but could not decode (its own fuzzers' list).
_DAMAGED = (OSError, SyntaxError, ValueError, EOFError, IndexError, OverflowError, MemoryError)
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except _DAMAGED:  # unreadable EXIF is no reason to refuse the picture
        return 1
    return value if isinstance(value, int) else 1


def _draft(im: Image.Image, plan: _Plan) -> float:
    """Have a JPEG decode at 1/2, 1/4 or 1/8 scale where that still covers the plan's size
    (for much less than a full decode costs); returns the scale chosen."""
    stored_w, stored_h = im.size
    if plan.size[0] >= plan.keep[0]:
        return 1.0
    factor = plan.size[0] / plan.keep[0]
    drafted = im.draft("RGB", (math.ceil(stored_w * factor), math.ceil(stored_h * factor)))
    return drafted[1][2] / stored_w if drafted else 1.0


def _render(im: Image.Image, plan: _Plan, stored: tuple[int, int], scale: float) -> Image.Image:
    """Crop or pad and resize per the plan (for the stored orientation and size; ``im`` may be
    a JPEG decoding at ``scale`` times that), as 8-bit sRGB."""
    stored_w, stored_h = stored
    keep_w, keep_h = plan.keep
    left, top = (stored_w - keep_w) // 2, (stored_h - keep_h) // 2
    box = (left * scale, top * scale, (left + keep_w) * scale, (top + keep_h) * scale)
    if im.size == plan.size and box == (0, 0, *im.size):
        im = _to_srgb(_to_working_mode(im))  # at most 2048 px a side: small
    else:
        im = _to_srgb(_resample_in_strips(im, box, plan.size))
    if plan.canvas != plan.size:
        canvas = Image.new("RGB", plan.canvas, _WHITE)
        canvas.paste(im, ((plan.canvas[0] - im.width) // 2, (plan.canvas[1] - im.height) // 2))
        im = canvas
    return im


def _resample_in_strips(
    im: Image.Image, box: tuple[float, float, float, float], size: tuple[int, int]
) -> Image.Image:
    """Resize ``box`` of ``im`` to ``size``, converting to a working mode (transparency
    flattened onto white) one horizontal strip at a time, so no full-size copy is made.

    As ``resize(size, BICUBIC, box, reducing_gap)`` would: each strip is reduced by the same
    whole factor on one grid, then resampled with enough rows either side for the filter to
    see what it would in the whole picture, so the strips meet without seams. Laying
    transparency onto white before resampling gives what Pillow's resampling of premultiplied
    colours, laid on white after, would: both steps are linear.
    """
    left, top, right, bottom = box
    scale_x, scale_y = (right - left) / size[0], (bottom - top) / size[1]
    reduce_x = int(scale_x / _REDUCING_GAP) or 1
    reduce_y = int(scale_y / _REDUCING_GAP) or 1
    # Bicubic reaches 2 output pixels either side; 2 more for rounding. In source pixels:
    margin_x = (2 * max(scale_x / reduce_x, 1) + 2) * reduce_x
    margin_y = (2 * max(scale_y / reduce_y, 1) + 2) * reduce_y
    x0 = max(0, math.floor((left - margin_x) / reduce_x) * reduce_x)
    x1 = min(im.size[0], math.ceil((right + margin_x) / reduce_x) * reduce_x)
    rows = max(1, int(_STRIP_PIXELS / ((x1 - x0) * scale_y)))  # output rows per strip
    out: Image.Image | None = None
    for out_top in range(0, size[1], rows):
        out_bottom = min(size[1], out_top + rows)
        y_top, y_bottom = top + out_top * scale_y, top + out_bottom * scale_y
        y0 = max(0, math.floor((y_top - margin_y) / reduce_y) * reduce_y)
        y1 = min(im.size[1], math.ceil((y_bottom + margin_y) / reduce_y) * reduce_y)
        strip = _flatten(_to_working_mode(im.crop((x0, y0, x1, y1))))
        if reduce_x > 1 or reduce_y > 1:
            strip = strip.reduce((reduce_x, reduce_y))
        part_box = (
            (left - x0) / reduce_x,
            (y_top - y0) / reduce_y,
            (right - x0) / reduce_x,
            (y_bottom - y0) / reduce_y,
        )
        part = strip.resize((size[0], out_bottom - out_top), _RESAMPLE, box=part_box)
        if out is None:
            out = Image.new(part.mode, size)
            if "icc_profile" in im.info:
                out.info["icc_profile"] = im.info["icc_profile"]
        out.paste(part, (0, out_top))
    assert out is not None
    return out


def _to_working_mode(im: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, RGB, RGBA or CMYK, which resize handles well."""
    if im.mode in ("L", "RGB", "RGBA", "CMYK") and "transparency" not in im.info:
        im.load()
        return im
    if im.mode.startswith("I"):
        # 16-bit samples: scale to 8 bits; a plain convert("L") would clip them to white.
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if "A" in im.mode or "a" in im.mode or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")  # palette, 1-bit, YCbCr


def _flatten(im: Image.Image) -> Image.Image:
    """An RGBA picture laid onto white; anything else as it is."""
    if im.mode != "RGBA":
        return im
    flat = Image.new("RGB", im.size, _WHITE)
    flat.paste(im, mask=im.getchannel("A"))
    flat.info = im.info
    return flat


def _to_srgb(im: Image.Image) -> Image.Image:
    """Flatten transparency onto white and convert to 8-bit sRGB, honouring an ICC profile."""
    im = _flatten(im)
    icc = im.info.get("icc_profile")
    if icc and ImageCms is not None and im.mode in ("RGB", "CMYK"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if "srgb" not in ImageCms.getProfileDescription(profile).lower():
                return ImageCms.profileToProfile(im, profile, _srgb(), outputMode="RGB")
        except (ImageCms.PyCMSError, *_DAMAGED):
            pass  # a broken profile: the plain conversion below is the best we can do
    return im if im.mode == "RGB" else im.convert("RGB")


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _encode_jpeg(im: Image.Image) -> tuple[Image.Image, bytes]:
    """Encode as a baseline JPEG within MAX_JPEG_BYTES; returns the picture as encoded."""
    im.info.clear()  # nothing of the source's metadata (EXIF, GPS, ICC, comments) goes out
    quality = JPEG_QUALITY
    while True:
        encoded = _jpeg_bytes(im, quality)
        if len(encoded) <= MAX_JPEG_BYTES:
            return im, encoded
        if quality > MIN_JPEG_QUALITY:
            quality -= 10
            continue
        smaller = _fit_long_side(im.size, max(im.size) * 4 // 5)
        if min(smaller) < MIN_SIDE:  # pragma: no cover - 750x300 px can't fill the budget
            return im, encoded
        im = im.resize(smaller, Image.Resampling.BICUBIC)


def _jpeg_bytes(im: Image.Image, quality: int) -> bytes:
    """``im`` as a baseline JPEG, encoded into a file, not a ``BytesIO``: Pillow encodes
    into a file descriptor with the GIL released, and into a ``BytesIO`` holding it (8 ms a
    2 MP picture in which no other thread of the app could run: the page's event loop
    included, while 50 pictures arrived at once, bench 3). An anonymous file in memory where
    the system has one (Linux), else a temporary file."""
    memfd = getattr(os, "memfd_create", None)
    with open(memfd("kling-ui-jpeg"), "w+b") if memfd else tempfile.TemporaryFile() as out:
        im.save(out, "JPEG", quality=quality, optimize=False, progressive=False)
        out.seek(0)
        return out.read()
