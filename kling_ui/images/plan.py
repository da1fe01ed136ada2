"""What to do to an upright picture to make it acceptable: keep, crop or pad it, and the
size it is resized to (``_plan``), or a refusal in words. Plain arithmetic: no Pillow.

Imports ``errors`` and ``images.limits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError, RatioOutOfRange
from .limits import MAX_LONG_SIDE, MAX_RATIO, MIN_SIDE, FitMode


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
