"""Any upload in, a compliant data URI out: the only module that imports Pillow.

Kling takes a JPEG or PNG with both sides at least 300 px and an aspect ratio between 1:2.5
and 2.5:1; the output video follows the input's shape and is about 1080p, so anything larger
than 2048 px on the long side only makes the request slower. ``prepare_image`` checks an
upload against those limits and re-encodes it as a small, upright, metadata-free sRGB JPEG
(``data:image/jpeg;base64,...``). An https URL is passed through untouched.

Every problem with the image becomes an ``InputError`` whose message names it; no Pillow
exception leaves this module. Hostile files are refused before decoding where we can: by the
file's size on disk, then by the pixel count its header declares, then by the memory its
decode would take (``DECODE_BUDGET``).

Memory: a baseline JPEG is decoded at the reduced scale its DCT allows (1/2, 1/4 or 1/8),
since we only need 2048 px. Other formats (PNG, WebP, GIF, BMP, progressive JPEG) can't be
decoded smaller, so what their full decode costs is counted from the header (pixels times the
bytes a pixel takes in Pillow's mode, plus the decoder's own buffers) and a picture costing
more than the budget is refused in words. After the decode the picture is converted (palette,
16-bit, transparency, 1-bit) and resized a strip at a time, so no second full-size copy is
made. All decodes in flight share one budget.

Imports: ``errors`` and Pillow; nothing else of ours imports Pillow.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import math
import os
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from PIL import Image

from .errors import InputError, RatioOutOfRange

try:
    from PIL import ImageCms
except ImportError:  # pragma: no cover - Pillow built without LittleCMS
    ImageCms = None  # type: ignore[assignment]

FitMode = Literal["reject", "crop", "pad"]

MIN_SIDE = 300
MAX_RATIO = 2.5
MAX_LONG_SIDE = 2048
MAX_INPUT_BYTES = 50 * 1024 * 1024
# Below Pillow's own bomb threshold (about 89.5 MP), so Pillow never has to warn about an image
# we accept; a 48 MP phone photo or a 61 MP camera file still passes.
MAX_PIXELS = 80_000_000
# A file can only hold so many pixels per byte, and a big canvas declared by a smaller file
# is damaged or a decompression bomb under the pixel cap (decoding it would cost seconds and
# 300 MB). Where the limit is physics it is checked: deflate (PNG) packs at most about 1032
# bytes into one, so at most about 1100 * 8 / (bits per pixel) pixels a byte (344 for RGB,
# 8800 for a 1-bit drawing; palette and grey images may be 1-bit). GIF's LZW keeps its old
# bound. JPEG and WebP are left to their own decoders: a flat WebP really is a few bytes.
MAX_BYTES_PER_BYTE = 1100
MAX_GIF_PIXELS_PER_BYTE = 2000
_LEAST_BITS = {"1": 1, "P": 1, "L": 1, "LA": 2, "PA": 2}  # per pixel, as stored at the least
DENSITY_CHECK_FROM = 4_000_000  # pixels: small images may be as flat as they like
JPEG_QUALITY = 90
# Base64 grows by 4/3: 1.4 MB of JPEG stays under 2 MB of request body. Over it, we lower the
# quality in steps down to MIN_JPEG_QUALITY, then shrink the picture.
MAX_JPEG_BYTES = 1_400_000
MIN_JPEG_QUALITY = 60
# Many users uploading at once would hold as many decoded photos in memory as there are
# requests; a decode is CPU-bound anyway, so more at once than cores gains nothing. The slots
# are shared fairly between visitors (``_FairSlots``): one visitor's pile of big images does
# not hold up another's check (it did: 0.05 s became 17 s behind another's queue).
DECODE_SLOTS = max(2, os.cpu_count() or 2)
# The most memory the decoded pixels (with the decoder's own buffers) of the uploads being
# prepared may take at once, and so the most one picture's decode may take. The app idles at
# about 160 MB and the working copies add up to about 40 MB, so it stays under 400 MB
# (bench/bench_images.py measures the largest accepted image of each kind). What this allows,
# for a square picture (MAX_PIXELS caps every kind at 80 MP):
#   JPEG: 80 MP, decoded at 1/2, 1/4 or 1/8 scale. A progressive one also holds its DCT
#     coefficients at full size (2 bytes a sample): 44 MP at 4:2:0, 35 MP at 4:2:2, 25 MP at
#     4:4:4, 14 MP in CMYK;
#   PNG: 80 MP grey, palette or 1-bit (1 byte a pixel) and 16-bit grey (2 bytes); 44 MP in
#     colour or with transparency, 8- or 16-bit (Pillow keeps 4 bytes a pixel);
#   GIF: 80 MP; BMP: 80 MP (the 50 MB file limit comes first for 24 and 32 bits), 59 MP if
#     RLE-compressed (Pillow's decoder holds three copies);
#   WebP: 11 MP, less the file's size (16 bytes a pixel: libwebp's two canvases, a copy of
#     one, and Pillow's image).
DECODE_BUDGET = 170 * 1024 * 1024
# Resizing converts (and flattens) this many source pixels at a time.
_STRIP_PIXELS = 1 << 20
# Bicubic, not Lanczos: after JPEG's own downscaling the rest is a small step, where the two
# are indistinguishable and bicubic takes two thirds of the time. A step of more than 3x
# starts with a box reduction by a whole factor (as Pillow's reducing_gap=3.0).
_RESAMPLE = Image.Resampling.BICUBIC
_REDUCING_GAP = 3.0

# What people upload. The JPEG opener also reads MPO, the multi-picture JPEG of many phones.
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
_WHITE = (255, 255, 255)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FITS = ("reject", "crop", "pad")
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


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to send: the data URI (or https URL) and what was done to get it."""

    data_uri: str = field(repr=False)
    width: int  # as sent; 0 for a URL
    height: int
    byte_size: int  # of the encoded JPEG; 0 for a URL
    source_width: int  # upright, before any crop, pad or resize; 0 for a URL
    source_height: int
    adjusted: str | None = None  # e.g. "cropped to 2.5:1, resized from 6000×2000"


@dataclass(frozen=True)
class _Plan:
    """What to do to an upright ``width`` x ``height`` image to make it acceptable."""

    keep: tuple[int, int]  # the centred part of the source to keep (all of it unless cropped)
    size: tuple[int, int]  # what that part is resized to
    canvas: tuple[int, int]  # the final size; larger than ``size`` only when padded
    fit_note: str | None  # "cropped to 2.5:1", "padded to 1:2.5" or None
    resized: bool  # the long side was brought down to MAX_LONG_SIDE

    def transposed(self) -> _Plan:
        return _Plan(
            self.keep[::-1], self.size[::-1], self.canvas[::-1], self.fit_note, self.resized
        )


def prepare_image(
    source: str | os.PathLike[str], *, fit: FitMode = "reject", owner: str = ""
) -> PreparedImage:
    """Check an image against Kling's limits and return it as something the API accepts.

    ``source`` is a file path or an https URL. With ``fit="reject"`` an image outside the
    allowed aspect ratio is refused; ``"crop"`` cuts it to the nearest allowed ratio around the
    centre, ``"pad"`` adds white bars. ``owner`` names who asks (the service's visitor): the
    decode slots are shared fairly between owners. Raises ``InputError`` with a message for
    a person.
    """
    if fit not in _FITS:
        raise InputError(f'Unknown fit mode "{fit}"; use one of: {", ".join(_FITS)}.')
    if not source or not str(source).strip():
        raise InputError("No image was given; choose an image file.")
    if isinstance(source, str) and _URL.match(source.strip()):
        return _pass_url(source.strip())
    path = Path(source)
    # A visitor's address, where it says one: fresh browsers are free to make, addresses not.
    turn_of = getattr(owner, "place", "") or owner
    with _open_upload(path) as fp, _DECODE_TURNS.hold(turn_of):
        try:
            with Image.open(fp, formats=_FORMATS) as im:
                _check_density(im, os.fstat(fp.fileno()).st_size, path.name)
                return _prepare(im, fit, fp.fileno())
        except InputError:
            raise
        except Image.UnidentifiedImageError:
            fp.seek(0)
            if _is_heif(fp.read(12)):
                raise InputError(
                    f"{path.name} is a HEIC/HEIF photo (the iPhone's usual format), which isn't "
                    "supported: export it as JPEG and upload that (on an iPhone, Settings > "
                    "Camera > Formats > Most Compatible takes JPEG photos)."
                ) from None
            raise InputError(
                f"{path.name} is not an image we can read; use JPEG, PNG, WebP, GIF or BMP."
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError(
                f"{path.name} has too many pixels to open safely; the most we open is "
                f"{MAX_PIXELS // 1_000_000} MP. Save a smaller copy and try again."
            ) from None
        except _DAMAGED:
            raise InputError(
                f"The image file {path.name} is damaged or incomplete; save or export it "
                "again and upload the new copy."
            ) from None


# ISO media brands of HEIF stills (HEIC from phones, AVIF): read by no browser we can count on,
# nor by Pillow without a plugin, so they are named and refused with the way out.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)


def _is_heif(head: bytes) -> bool:
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def _check_density(im: Image.Image, file_size: int, name: str) -> None:
    pixels = im.size[0] * im.size[1]
    if im.format == "PNG":
        bits = _LEAST_BITS.get(im.mode, 8 * len(im.getbands()))
        most = MAX_BYTES_PER_BYTE * 8 // bits * file_size
    elif im.format == "GIF":
        most = MAX_GIF_PIXELS_PER_BYTE * file_size
    else:
        return
    if DENSITY_CHECK_FROM < pixels <= MAX_PIXELS and pixels > most:
        raise InputError(
            f"{name} declares {im.size[0]}×{im.size[1]} pixels but is only {file_size:,} bytes: "
            "it is damaged or not a real picture. Save or export it again and upload that copy."
        )


def _pass_url(url: str) -> PreparedImage:
    if not url.lower().startswith("https://"):
        raise InputError("Image links must start with https:// (a secure link); upload the file.")
    if not url[len("https://") :].split("/", 1)[0] or any(c.isspace() for c in url):
        raise InputError("That image link is not a valid https address.")
    return PreparedImage(
        data_uri=url, width=0, height=0, byte_size=0, source_width=0, source_height=0
    )


def _open_upload(path: Path) -> BinaryIO:
    """Open the file, refusing an empty or oversized one before anything reads it."""
    try:
        fp = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"The image file {path.name} was not found.") from None
    except OSError:
        raise InputError(f"{path.name or path} could not be read; choose an image file.") from None
    size = os.fstat(fp.fileno()).st_size
    if size == 0 or size > MAX_INPUT_BYTES:
        fp.close()
        if size == 0:
            raise InputError(f"{path.name} is an empty file; choose the image again.")
        raise InputError(
            f"{path.name} is {size / 1024**2:.1f} MB; the largest image we accept is "
            f"{MAX_INPUT_BYTES // 1024**2} MB. Save a smaller copy and try again."
        )
    return fp


def _prepare(im: Image.Image, fit: FitMode, fd: int) -> PreparedImage:
    stored_w, stored_h = im.size
    if stored_w * stored_h > MAX_PIXELS:  # declared by the header; nothing is decoded yet
        raise InputError(
            f"The image is {stored_w}×{stored_h} pixels ({stored_w * stored_h / 1e6:.0f} MP); "
            f"the most we open is {MAX_PIXELS // 1_000_000} MP. Save a smaller copy and try again."
        )
    is_jpeg = im.format in ("JPEG", "MPO")
    coefficients = 0
    if is_jpeg:  # its EXIF comes before the pixels: plan, and choose the reduced decode, first
        orientation, width, height, plan, stored_plan = _upright_plan(im, fit)
        coefficients = _jpeg_coefficient_bytes(im, fd)
        scale = _draft(im, stored_plan)
    cost = _decode_bytes(im, os.fstat(fd).st_size) + coefficients  # of the drafted size
    if cost > DECODE_BUDGET:
        raise InputError(_too_big_to_decode(im, stored_w, stored_h, cost))

    with _DECODE_MEMORY.hold(cost):
        if not is_jpeg:
            im.load()  # PNG may keep its EXIF after the pixels; only JPEG gains from waiting
            orientation, width, height, plan, stored_plan = _upright_plan(im, fit)
            scale = 1.0
        picture = _render(im, stored_plan, (stored_w, stored_h), scale)
        if orientation in _UPRIGHT:
            picture = picture.transpose(_UPRIGHT[orientation])
        picture, encoded = _encode_jpeg(picture)

    notes = [plan.fit_note] if plan.fit_note else []
    if plan.resized or picture.size != plan.canvas:
        notes.append(f"resized from {width}×{height}")
    return PreparedImage(
        data_uri="data:image/jpeg;base64," + base64.b64encode(encoded).decode("ascii"),
        width=picture.width,
        height=picture.height,
        byte_size=len(encoded),
        source_width=width,
        source_height=height,
        adjusted=", ".join(notes) or None,
    )


def _upright_plan(im: Image.Image, fit: FitMode) -> tuple[int, int, int, _Plan, _Plan]:
    """The EXIF orientation, the upright size, the plan for it and for the stored pixels."""
    orientation = _orientation(im)
    swapped = orientation in (5, 6, 7, 8)
    stored_w, stored_h = im.size
    width, height = (stored_h, stored_w) if swapped else (stored_w, stored_h)
    plan = _plan(width, height, fit)
    # Crop and pad are centred, so the upright plan maps onto the stored pixels by a swap;
    # the picture is turned upright last, when it is small.
    return orientation, width, height, plan, plan.transposed() if swapped else plan


# --- Whose turn it is to decode -------------------------------------------------------------


class _FairSlots:
    """``slots`` decodes at once, shared fairly between owners.

    A free slot goes to the waiting owner who holds the fewest slots now, the earliest of
    them first: an owner alone may use every slot, but one with a queue of big images gets
    one turn in the next round, not every turn before a newcomer.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.held: dict[str, int] = {}  # owner -> slots held now
        self.waiting: deque[tuple[str, object]] = deque()  # (owner, turn), in arrival order
        self._changed = threading.Condition()

    def _next(self) -> object | None:
        """The turn that a free slot goes to."""
        best: tuple[int, object] | None = None
        for owner, turn in self.waiting:
            held = self.held.get(owner, 0)
            if best is None or held < best[0]:
                best = (held, turn)
        return best[1] if best else None

    @contextlib.contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        turn = object()
        with self._changed:
            self.waiting.append((owner, turn))
            try:
                self._changed.wait_for(
                    lambda: sum(self.held.values()) < self.slots and self._next() is turn
                )
            finally:
                self.waiting.remove((owner, turn))
                self._changed.notify_all()
            self.held[owner] = self.held.get(owner, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self.held[owner] -= 1
                if not self.held[owner]:
                    del self.held[owner]
                self._changed.notify_all()


_DECODE_TURNS = _FairSlots(DECODE_SLOTS)


# --- What a decode costs ------------------------------------------------------------------


class _MemoryBudget:
    """Bytes of decoded pixels held at once by all the uploads being prepared.

    A decode waits until its cost fits beside the others' (first come, first served), so many
    large uploads at once are prepared one after another instead of together; one alone may
    always go ahead.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._turns: deque[object] = deque()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, cost: int) -> Iterator[None]:
        turn = object()
        with self._changed:
            self._turns.append(turn)
            try:
                self._changed.wait_for(
                    lambda: (
                        self._turns[0] is turn
                        and (self.used == 0 or self.used + cost <= self.total)
                    )
                )
            finally:
                self._turns.remove(turn)
                self._changed.notify_all()
            self.used += cost
        try:
            yield
        finally:
            with self._changed:
                self.used -= cost
                self._changed.notify_all()


_DECODE_MEMORY = _MemoryBudget(DECODE_BUDGET)


def _pixel_bytes(mode: str) -> int:
    """The bytes one pixel takes in memory in a Pillow mode."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4  # every other mode keeps a pixel in 32 bits (RGB too, and LA)


def _decode_bytes(im: Image.Image, file_size: int) -> int:
    """What decoding ``im`` at its (possibly drafted) size holds in memory at its peak."""
    pixels = im.size[0] * im.size[1]
    if im.format == "WEBP":
        # libwebp keeps a copy of the file, decodes into an RGBA canvas and keeps a second one
        # for the next frame; Pillow takes a copy of the canvas as bytes, then decodes that
        # into its own image.
        return file_size + pixels * 4 * 4
    per_pixel = _pixel_bytes(im.mode)
    if im.format == "BMP" and im.info.get("compression") in (1, 2):
        # RLE: Pillow's decoder builds the pixels in a bytearray, copies them to bytes, then
        # into the image.
        return pixels * per_pixel * 3
    return pixels * per_pixel


def _jpeg_coefficient_bytes(im: Image.Image, fd: int) -> int:
    """The DCT coefficients libjpeg keeps for the whole picture, if it must: 0 when it streams.

    A progressive JPEG (or one whose first scan lacks some colour components) is decoded scan by
    scan into a full-resolution array of 16-bit coefficients, whatever the output scale. A file
    whose first scan can't be found is counted so too.
    """
    if not (im.info.get("progressive") or _first_scan_components(fd) < len(im.layer)):
        return 0
    h_max = max(layer[1] for layer in im.layer)
    v_max = max(layer[2] for layer in im.layer)
    total = 0
    for _, h, v, _ in im.layer:
        blocks_w = -(-im.size[0] * h // (h_max * 8))
        blocks_h = -(-im.size[1] * v // (v_max * 8))
        total += -(-blocks_w // h) * h * -(-blocks_h // v) * v * 64 * 2
    return total


def _first_scan_components(fd: int) -> int:
    """How many components the JPEG's first scan (SOS) holds; 0 if it can't be found."""
    pos = 2  # after SOI
    for _ in range(10_000):
        head = os.pread(fd, 4, pos)
        if len(head) < 2:
            return 0
        marker = head[1]
        if head[0] != 0xFF or marker == 0xFF:  # junk between segments (as Pillow skips), fill
            pos += 1
        elif marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
        elif len(head) < 4:
            return 0
        elif marker == 0xDA:
            count = os.pread(fd, 1, pos + 4)
            return count[0] if count else 0
        else:
            pos += 2 + int.from_bytes(head[2:4], "big")
    return 0


def _too_big_to_decode(im: Image.Image, width: int, height: int, cost: int) -> str:
    pixels = width * height
    most = min(MAX_PIXELS, DECODE_BUDGET * pixels // cost) // 1_000_000
    if im.format in ("JPEG", "MPO"):
        kind = "a progressive JPEG"
    elif im.format == "WEBP":
        kind = "a WebP image"
    elif im.format == "BMP" and im.info.get("compression") in (1, 2):
        kind = "a compressed (RLE) BMP"
    elif im.mode.startswith("I;16"):
        kind = f"a 16-bit {im.format}"
    else:
        kind = f"a colour or transparent {im.format}"
    return (
        f"The image is {width}×{height} pixels ({pixels / 1e6:.0f} MP); {kind} has to be "
        f"decoded whole, so the most we open is {most} MP "
        f"({MAX_PIXELS // 1_000_000} MP as a standard JPEG). Save a smaller copy, or save it "
        "as a standard JPEG, and try again."
    )


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except _DAMAGED:  # unreadable EXIF is no reason to refuse the picture
        return 1
    return value if isinstance(value, int) else 1


def _plan(width: int, height: int, fit: FitMode) -> _Plan:
    """Decide crop, pad and resize for an upright image, or refuse it."""
    wide, long, short = width >= height, max(width, height), min(width, height)
    keep = canvas = (width, height)
    fit_note = None
    if long > short * MAX_RATIO:
        allowed = f"{MAX_RATIO:g}:1" if wide else f"1:{MAX_RATIO:g}"
        if fit == "reject":
            ratio = f"{_ratio_text(long, short)}:1" if wide else f"1:{_ratio_text(long, short)}"
            raise RatioOutOfRange(
                f"The image is {width}×{height} pixels, an aspect ratio of {ratio}; the allowed "
                f"range is 1:{MAX_RATIO:g} to {MAX_RATIO:g}:1."
            )
        if fit == "crop":
            cut = int(short * MAX_RATIO)  # rounds down: the ratio stays within the limit
            keep = canvas = (cut, height) if wide else (width, cut)
            fit_note = f"cropped to {allowed}"
        else:
            grown = math.ceil(long / MAX_RATIO)
            canvas = (width, grown) if wide else (grown, height)
            fit_note = f"padded to {allowed}"
    if min(canvas) < MIN_SIDE:
        after = f"; {fit_note} it would be {canvas[0]}×{canvas[1]}" if fit_note else ""
        raise InputError(
            f"The image is {width}×{height} pixels{after}; each side must be at least "
            f"{MIN_SIDE} pixels. Use a larger image."
        )
    out = _fit_long_side(canvas, min(MAX_LONG_SIDE, max(canvas)))
    size = out
    if canvas != keep:  # padded: the picture spans the canvas's long side
        size = _fit_long_side(keep, max(out))
        size = (min(size[0], out[0]), min(size[1], out[1]))
    return _Plan(keep, size, out, fit_note, resized=out != canvas)


def _ratio_text(long: int, short: int) -> str:
    """The ratio with enough decimals that it visibly exceeds the limit: 2.503, not 2.50."""
    for digits in (2, 3):
        text = f"{long / short:.{digits}f}"
        if float(text) > MAX_RATIO:
            break
    return text


def _fit_long_side(size: tuple[int, int], long: int) -> tuple[int, int]:
    """Scale ``size`` to the given long side; the short side rounds up, so the ratio never grows."""
    w, h = size
    if w >= h:
        return long, max(1, -(-h * long // w))
    return max(1, -(-w * long // h)), long


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
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=quality, optimize=False, progressive=False)
        if buffer.tell() <= MAX_JPEG_BYTES:
            return im, buffer.getvalue()
        if quality > MIN_JPEG_QUALITY:
            quality -= 10
            continue
        smaller = _fit_long_side(im.size, max(im.size) * 4 // 5)
        if min(smaller) < MIN_SIDE:  # pragma: no cover - 750x300 px can't fill the budget
            return im, buffer.getvalue()
        im = im.resize(smaller, Image.Resampling.BICUBIC)
