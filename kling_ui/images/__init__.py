"""Any upload in, a compliant data URI out: the only package that imports Pillow.

Kling takes a JPEG or PNG with both sides at least 300 px and an aspect ratio between 1:2.5
and 2.5:1; the output video follows the input's shape and is about 1080p, so anything larger
than 2048 px on the long side only makes the request slower. ``prepare_image`` checks an
upload against those limits and re-encodes it as a small, upright, metadata-free sRGB JPEG
(``data:image/jpeg;base64,...``). An https URL is passed through untouched.

Every problem with the image becomes an ``InputError`` whose message names it; no Pillow
exception leaves this package. Hostile files are refused before decoding where we can: by the
file's size on disk, then by the pixel count its header declares, then by the memory its
decode would take (``DECODE_BUDGET``).

Memory: a baseline JPEG is decoded at the reduced scale its DCT allows (1/2, 1/4 or 1/8),
since we only need 2048 px. Other formats (PNG, WebP, GIF, BMP, progressive JPEG) can't be
decoded smaller, so what their full decode costs is counted from the header (pixels times the
bytes a pixel takes in Pillow's mode, plus the decoder's own buffers) and a picture costing
more than the budget is refused in words. After the decode the picture is converted (palette,
16-bit, transparency, 1-bit) and resized a strip at a time, so no second full-size copy is
made. All decodes in flight share one budget.

One job a module, in the order an upload meets them:
  limits.py   every limit, a named constant with its reason (no Pillow)
  prepare.py  the entry point: open, refuse early, wait a turn, plan, render, encode
  turns.py    whose turn it is to decode: fair slots between visitors, one memory budget
  cost.py     what a decode costs, read from the header; the density check
  plan.py     crop, pad and resize decided for an upright picture, or refused (no Pillow)
  render.py   the pixels: reduced decode, strips, sRGB, upright, the JPEG encode

Imports ``errors`` and Pillow; nothing else of ours imports Pillow.
"""

from __future__ import annotations

from .limits import MAX_INPUT_BYTES, MAX_JPEG_BYTES, MAX_LONG_SIDE
from .prepare import PreparedImage, prepare_image
from .render import _flatten, _resample_in_strips, _to_working_mode
from .turns import _DECODE_TURNS, _MemoryBudget

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_JPEG_BYTES",
    "MAX_LONG_SIDE",
    "PreparedImage",
    "prepare_image",
    "_DECODE_TURNS",
    "_MemoryBudget",
    "_flatten",
    "_resample_in_strips",
    "_to_working_mode",
]
