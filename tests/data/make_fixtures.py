"""Write the small image fixtures that tests/test_images.py reads; run it to regenerate them.

    python tests/data/make_fixtures.py

Each file stands for an upload that is awkward in a real way and cannot be made on the fly as
plainly as the other test images:

- ``cmyk.jpg``: a CMYK JPEG with an Adobe marker, as Photoshop writes them (stored inverted).
  Left half red, right half blue.
- ``orientation_{3,6,8}.jpg``: a phone photo stored sideways or upside down, with the EXIF
  Orientation tag saying how to turn it, and GPS coordinates in the EXIF. Upright, each is
  white with a red square in the top-left corner and a blue one in the bottom-right;
  orientation 3 is 400x320 upright, 6 and 8 are 320x400.
- ``gray16.png``: a 16-bit greyscale PNG, a left-to-right ramp from 0 to 65535.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

HERE = Path(__file__).parent
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
MARKER = 60  # side of the corner squares, in px
# The transpose that turns an upright picture into how a camera with this orientation stores it
# (the inverse of what a viewer applies).
STORED = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def upright_picture(size: tuple[int, int]) -> Image.Image:
    im = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, MARKER - 1, MARKER - 1), fill=RED)
    draw.rectangle((size[0] - MARKER, size[1] - MARKER, size[0] - 1, size[1] - 1), fill=BLUE)
    return im


def exif_with_gps(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Fixture Phone"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.0)  # latitude
    gps[3], gps[4] = "E", (13.0, 24.0, 0.0)  # longitude
    return exif


def make_orientation(orientation: int) -> None:
    upright = upright_picture((400, 320) if orientation == 3 else (320, 400))
    path = HERE / f"orientation_{orientation}.jpg"
    upright.transpose(STORED[orientation]).save(path, quality=85, exif=exif_with_gps(orientation))
    with Image.open(path) as check:  # Pillow's own reading must agree with the description
        shown = ImageOps.exif_transpose(check)
        assert shown.size == upright.size
        assert shown.getpixel((5, 5))[0] > 200 and shown.getpixel((5, 5))[2] < 60


def make_cmyk() -> None:
    im = Image.new("CMYK", (400, 320), (0, 255, 255, 0))  # red
    im.paste((255, 255, 0, 0), (200, 0, 400, 320))  # blue
    im.save(HERE / "cmyk.jpg", quality=85)


def make_gray16() -> None:
    ramp = Image.linear_gradient("L").rotate(90).resize((400, 320))  # 0 left, 255 right
    ramp16 = ramp.convert("I").point(lambda v: v * 257).convert("I;16")
    ramp16.save(HERE / "gray16.png")


if __name__ == "__main__":
    for orientation in STORED:
        make_orientation(orientation)
    make_cmyk()
    make_gray16()
    for path in sorted(HERE.glob("*.*g")):
        print(f"{path.name}: {path.stat().st_size} bytes")
