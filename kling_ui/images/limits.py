"""The limits an image must meet, each a named constant with its reason (no Pillow here).

Kling takes a JPEG or PNG with both sides at least 300 px and an aspect ratio between 1:2.5
and 2.5:1; the output video follows the input's shape and is about 1080p, so anything larger
than 2048 px on the long side only makes the request slower. The rest bound what a hostile
or damaged file may cost us: its size on disk, the pixels its header declares, the pixels a
byte of it may hold, and the memory its decode may take (``DECODE_BUDGET``).

Imports nothing of ours.
"""

from __future__ import annotations

import os
from typing import Literal

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
_FITS = ("reject", "crop", "pad")
