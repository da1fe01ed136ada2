"""The one entry point, ``prepare_image``: any upload (or an https link) in, a compliant
``PreparedImage`` out, or an ``InputError`` that names the problem.

The file is refused before decoding where we can (its size on disk, the pixels its header
declares, the memory its decode would take); then it waits its turn (``images.turns``),
is planned (``images.plan``), rendered and encoded (``images.render``).

Imports Pillow, ``errors`` and the other modules of ``images``.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from ..errors import InputError
from .cost import (
    _check_density,
    _decode_bytes,
    _jpeg_coefficient_bytes,
    _too_big_to_decode,
)
from .limits import _FITS, DECODE_BUDGET, MAX_INPUT_BYTES, MAX_PIXELS, FitMode
from .plan import _Plan, _plan
from .render import _DAMAGED, _UPRIGHT, _draft, _encode_jpeg, _orientation, _render
from .turns import _DECODE_MEMORY, _DECODE_TURNS

# What people upload. The JPEG opener also reads MPO, the multi-picture JPEG of many phones.
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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
    jpeg: bytes = field(default=b"", repr=False)  # the data URI's bytes; b"" for a URL


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
        # Let the pixels go before the memory is handed on: the decoded source (until the
        # caller's ``with`` ends) and the resized picture would otherwise sit beside the next
        # upload's decode (17 MB more with four 44.6 MP PNGs at once, bench 1).
        out_w, out_h = picture.size
        del picture
        im.close()
        data_uri = "data:image/jpeg;base64," + base64.b64encode(encoded).decode("ascii")

    notes = [plan.fit_note] if plan.fit_note else []
    if plan.resized or (out_w, out_h) != plan.canvas:
        notes.append(f"resized from {width}×{height}")
    return PreparedImage(
        data_uri=data_uri,
        width=out_w,
        height=out_h,
        byte_size=len(encoded),
        source_width=width,
        source_height=height,
        adjusted=", ".join(notes) or None,
        jpeg=encoded,
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
