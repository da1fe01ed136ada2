"""What a decode costs, counted from the file's header before any pixel is decoded: the
density check (pixels a byte may hold), the memory a decode holds at its peak (with a
progressive JPEG's coefficients), and the refusal in words when it is over the budget.

Imports ``errors`` and ``images.limits``; reads Pillow images' headers (no Pillow import
at run time beyond the type).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import InputError
from .limits import (
    DECODE_BUDGET,
    DENSITY_CHECK_FROM,
    MAX_BYTES_PER_BYTE,
    MAX_GIF_PIXELS_PER_BYTE,
    MAX_PIXELS,
)

if TYPE_CHECKING:
    from PIL import Image

_LEAST_BITS = {"1": 1, "P": 1, "L": 1, "LA": 2, "PA": 2}  # per pixel, as stored at the least


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
