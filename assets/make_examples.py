"""Draw the example images shown under the form (nothing can be downloaded here).

Run once: ``python assets/make_examples.py``; the JPEGs are committed.
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent


def vertical_gradient(size, top, bottom):
    w, h = size
    column = Image.linear_gradient("L").resize((1, h))
    return Image.composite(
        Image.new("RGB", (1, h), bottom), Image.new("RGB", (1, h), top), column
    ).resize((w, h))


def lighthouse():
    im = vertical_gradient((1280, 720), (255, 170, 110), (60, 40, 110))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 520, 1280, 720], fill=(30, 50, 90))
    for y in range(530, 720, 18):
        d.line([(0, y), (1280, y + 6)], fill=(70, 100, 150), width=3)
    d.polygon([(560, 560), (720, 560), (700, 600), (580, 600)], fill=(50, 45, 45))
    d.polygon([(600, 200), (680, 200), (700, 560), (580, 560)], fill=(240, 240, 235))
    for y in (260, 360, 460):
        d.polygon([(596, y), (684, y), (688, y + 40), (592, y + 40)], fill=(200, 40, 40))
    d.rectangle([590, 160, 690, 200], fill=(255, 240, 150))
    d.polygon([(580, 160), (700, 160), (640, 110)], fill=(60, 60, 60))
    d.polygon([(690, 170), (1280, 60), (1280, 260)], fill=(255, 250, 200))
    return im.filter(ImageFilter.SMOOTH)


def balloon():
    im = vertical_gradient((720, 1080), (110, 180, 255), (230, 245, 255))
    d = ImageDraw.Draw(im)
    for x, y, r in ((120, 200, 60), (560, 330, 80), (300, 900, 110)):
        d.ellipse([x - r, y - r // 2, x + r, y + r // 2], fill=(255, 255, 255))
    d.ellipse([210, 260, 510, 600], fill=(230, 60, 60))
    for x0, color in ((260, (250, 200, 40)), (330, (60, 120, 220)), (400, (250, 200, 40))):
        d.chord([x0, 260, x0 + 60, 600], 0, 360, fill=color)
    d.line([(300, 590), (330, 700)], fill=(80, 60, 40), width=4)
    d.line([(420, 590), (390, 700)], fill=(80, 60, 40), width=4)
    d.rectangle([325, 700, 395, 750], fill=(140, 90, 50))
    d.rectangle([0, 980, 720, 1080], fill=(80, 150, 70))
    return im.filter(ImageFilter.SMOOTH)


def cat():
    im = vertical_gradient((1024, 1024), (245, 225, 200), (200, 160, 130))
    d = ImageDraw.Draw(im)
    d.ellipse([300, 520, 760, 960], fill=(90, 90, 100))
    d.ellipse([340, 260, 700, 600], fill=(100, 100, 110))
    d.polygon([(360, 340), (380, 170), (480, 290)], fill=(100, 100, 110))
    d.polygon([(680, 340), (660, 170), (560, 290)], fill=(100, 100, 110))
    for cx in (450, 590):
        d.ellipse([cx - 34, 380, cx + 34, 440], fill=(180, 220, 90))
        d.ellipse([cx - 8, 384, cx + 8, 436], fill=(20, 20, 20))
    d.polygon([(505, 480), (535, 480), (520, 500)], fill=(230, 140, 150))
    for dy in (-12, 0, 12):
        d.line([(470, 500 + dy), (360, 490 + 2 * dy)], fill=(230, 230, 230), width=2)
        d.line([(570, 500 + dy), (680, 490 + 2 * dy)], fill=(230, 230, 230), width=2)
    return im.filter(ImageFilter.SMOOTH)


if __name__ == "__main__":
    for name, draw in (("lighthouse", lighthouse), ("balloon", balloon), ("cat", cat)):
        draw().save(HERE / f"example-{name}.jpg", quality=88)
        print("wrote", f"example-{name}.jpg")
