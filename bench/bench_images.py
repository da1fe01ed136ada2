"""1. Image to request: an uploaded photo to the create request's body, ready to send.

Ours is what happens to an upload in our page once Gradio has stored it: Gradio's own
preprocessing of the event's input (``async_move_files_to_cache`` with the upload-folder
check, ``ImageData.model_validate``, then ``UploadedImage.preprocess``, which hands on the
path), ``images.prepare_image(path)`` and ``Request.make(...).body()``.

The baseline is the straightforward Pillow path: open, ``convert("RGB")``, resize to a long
side of 2048 with LANCZOS, save as JPEG quality 90 into a BytesIO, base64, and the same
``body()``. Both run in this process on the same file, interleaved (the order alternates),
after one warm-up each; medians of N. Target: ours at most 0.4x the baseline on a 24 MP
(6000x4000) JPEG, with a body under 2 MB; 12 MP and 48 MP are reported alongside.

Then the memory one image takes: for each format (and the costliest modes of each), the
largest image ``prepare_image`` accepts, each prepared in a fresh subprocess that has first
imported what the app imports (Gradio and kling_ui), as the app would (in a worker thread,
with two malloc arenas). Its peak resident size (VmHWM, reset through /proc/self/clear_refs
after the imports) is set against the same file through plain Pillow (open, convert to RGB,
resize, JPEG) in the same kind of process. Also one image over the limits (refused before
decoding), and four of the largest colour PNGs at once. Target: every peak under 400 MB.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from bench._common import CACHE, ROOT, SHARED, fmt_mb, fmt_s, make_photo, median, row
from kling_ui.files import atomic_path

PROMPT = "The cat slowly turns its head toward the camera and blinks."
BODY_LIMIT = 2_000_000  # bytes of JSON; "under 2 MB" read strictly (decimal)
TARGET_RATIO = 0.4
FULL_SIZES = [("24 MP", 6000, 4000, 9), ("12 MP", 4240, 2832, 7), ("48 MP", 8000, 6000, 7)]
QUICK_SIZES = [("4 MP (quick)", 2400, 1600, 2)]

MB = 1024 * 1024
MEMORY_TARGET = 400 * MB
# (label, kind, width, height, copies at once, accepted?): the largest accepted image of each
# format and costly mode (see DECODE_BUDGET in kling_ui/images/limits.py), then what is refused.
MEMORY_CASES = [
    ("JPEG, baseline 4:2:0", "jpeg", 8944, 8944, 1, True),
    ("JPEG, progressive 4:4:4", "jpeg-progressive-444", 5040, 5040, 1, True),
    ("JPEG, progressive CMYK", "jpeg-progressive-cmyk", 3850, 3850, 1, True),
    ("PNG, 8-bit RGB", "png-rgb", 6675, 6675, 1, True),
    ("PNG, 8-bit RGBA", "png-rgba", 6675, 6675, 1, True),
    ("PNG, 16-bit RGBA", "png-rgba16", 6675, 6675, 1, True),
    ("PNG, 16-bit grey (issue 11's file)", "png-grey16", 8900, 8900, 1, True),
    ("PNG, palette with transparency", "png-palette", 8944, 8944, 1, True),
    ("GIF", "gif", 8944, 8944, 1, True),
    ("WebP, lossy RGB", "webp", 3330, 3330, 1, True),
    ("WebP, lossless RGBA", "webp-lossless-rgba", 3330, 3330, 1, True),
    ("BMP, 24-bit (50 MB file)", "bmp", 4800, 3600, 1, True),
    ("BMP, RLE8", "bmp-rle8", 7708, 7708, 1, True),
    ("PNG, 8-bit RGB, over the limit", "png-rgb", 8944, 8944, 1, False),
    ("PNG, 8-bit RGB, 4 at once", "png-rgb", 6675, 6675, 4, True),
]
QUICK_MEMORY_CASES = [
    ("PNG, 16-bit grey (quick)", "png-grey16", 2400, 2400, 1, True),
    ("WebP, lossless RGBA (quick)", "webp-lossless-rgba", 1600, 1200, 1, True),
]


def baseline_body(path: Path) -> dict[str, Any]:
    from PIL import Image

    from kling_ui.request import Request

    with Image.open(path) as opened:
        im = opened.convert("RGB")
    w, h = im.size
    scale = 2048 / max(w, h)
    im = im.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=90)
    uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return Request.make(PROMPT, images={"image": uri}).body()


class OursPath:
    """Gradio's preprocessing of an uploaded file, then ours, as in the page's handler."""

    def __init__(self, photo: Path) -> None:
        from gradio.processing_utils import async_move_files_to_cache

        from kling_ui.ui import UploadedImage

        self._move = async_move_files_to_cache
        self.block = UploadedImage(type="filepath", image_mode=None, sources=["upload"])
        # Where Gradio's upload route would have written the file: its cache folder, in a
        # folder of this run's own (two runs at once never share, nor remove, each other's).
        cache = Path(self.block.GRADIO_CACHE)
        cache.mkdir(parents=True, exist_ok=True)
        self.upload_dir = Path(tempfile.mkdtemp(prefix=f"kling-ui-bench-{photo.stem}-", dir=cache))
        self.uploaded = self.upload_dir / "IMG_0001.jpg"
        shutil.copyfile(photo, self.uploaded)
        self.payload = {
            "path": str(self.uploaded),
            "orig_name": "IMG_0001.jpg",
            "size": self.uploaded.stat().st_size,
            "mime_type": "image/jpeg",
            "is_stream": False,
            "meta": {"_type": "gradio.FileData"},
        }
        self.loop = asyncio.new_event_loop()

    def gradio_side(self) -> str:
        cached = self.loop.run_until_complete(
            self._move(dict(self.payload), self.block, check_in_upload_folder=True)
        )
        model = self.block.data_model.model_validate(cached, context={"validate_meta": True})
        return self.block.preprocess(model)

    def body(self) -> dict[str, Any]:
        from kling_ui.images import prepare_image
        from kling_ui.request import Request

        path = self.gradio_side()
        prepared = prepare_image(path)
        return Request.make(PROMPT, images={"image": prepared.data_uri}).body()

    def close(self) -> None:
        self.loop.close()
        shutil.rmtree(self.upload_dir, ignore_errors=True)


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(width: int, height: int, iterations: int) -> dict[str, Any]:
    photo = make_photo(width, height)
    ours = OursPath(photo)
    try:
        ours_body, base_body = ours.body(), baseline_body(photo)  # warm-up (and checks)
        assert ours.gradio_side() == str(ours.uploaded)
        ours_times: list[float] = []
        base_times: list[float] = []
        gradio_times: list[float] = []
        for i in range(iterations):
            pair = [("ours", ours.body), ("base", lambda: baseline_body(photo))]
            for name, fn in pair if i % 2 == 0 else reversed(pair):
                seconds, _ = _timed(fn)
                (ours_times if name == "ours" else base_times).append(seconds)
        for _ in range(iterations):
            gradio_times.append(_timed(ours.gradio_side)[0])
    finally:
        ours.close()
    ours_med, base_med = median(ours_times), median(base_times)
    return {
        "width": width,
        "height": height,
        "file_bytes": photo.stat().st_size,
        "iterations": iterations,
        "ours_s": ours_times,
        "baseline_s": base_times,
        "ours_median_s": ours_med,
        "baseline_median_s": base_med,
        "gradio_preprocess_median_s": median(gradio_times),
        "ratio": ours_med / base_med,
        "body_bytes": len(json.dumps(ours_body).encode()),
        "baseline_body_bytes": len(json.dumps(base_body).encode()),
    }


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    results = {label: measure(w, h, n) for label, w, h, n in sizes}
    memory = run_memory(QUICK_MEMORY_CASES if quick else MEMORY_CASES, quick)
    main_label = sizes[0][0]
    main = results[main_label]
    rows = []
    for label, *_ in sizes:
        r = results[label]
        is_main = label == main_label
        met = r["ratio"] <= TARGET_RATIO and r["body_bytes"] < BODY_LIMIT
        rows.append(
            row(
                f"1. Image to request, {label} JPEG ({r['width']}x{r['height']}, "
                f"{fmt_mb(r['file_bytes'])})",
                f"{fmt_s(r['ours_median_s'])}, body {fmt_mb(r['body_bytes'])}",
                f"{fmt_s(r['baseline_median_s'])}, body {fmt_mb(r['baseline_body_bytes'])}",
                r["ratio"],
                "≤ 0.4x, body < 2 MB" if is_main else "(reported)",
                met if is_main else None,
            )
        )
    rows += memory["rows"]
    return {
        "name": "image_to_request",
        "rows": rows,
        "metrics": {
            "ours_median_s": main["ours_median_s"],
            "baseline_median_s": main["baseline_median_s"],
            "ratio": main["ratio"],
            "body_bytes": main["body_bytes"],
            "gradio_preprocess_median_s": main["gradio_preprocess_median_s"],
            "sizes": results,
            "memory_worst_peak_rss_bytes": memory["worst_peak"],
            "memory_idle_rss_bytes": memory["idle"],
            "memory": memory["cases"],
        },
        "notes": [
            "Image to request: ours = Gradio's preprocessing of the uploaded file "
            "(async_move_files_to_cache with the upload-folder check, ImageData validation, "
            "UploadedImage.preprocess) + images.prepare_image + Request.body(); "
            "baseline = Image.open, convert('RGB'), resize to 2048 long side with LANCZOS, "
            "JPEG q90 to BytesIO, base64, same body(). Same file, same process, interleaved "
            f"(alternating order), one warm-up each, median of {sizes[0][3]} "
            f"(Gradio's own part alone: {fmt_s(main['gradio_preprocess_median_s'])}). "
            "Body size is the JSON the create POST sends. The photos are synthetic "
            "(gradients, shapes, per-channel noise, EXIF), JPEG quality 92.",
            memory["note"],
        ],
    }


# --- Memory: the largest accepted image of each format ---------------------------------------


def _base_picture(width: int, height: int) -> Any:
    """Gradients and shapes: compresses well (a big PNG stays under 50 MB) but is no bomb."""
    from PIL import Image, ImageDraw

    size = (width, height)
    im = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize(size),
            Image.linear_gradient("L").rotate(90).resize(size),
            Image.radial_gradient("L").resize(size),
        ),
    )
    draw = ImageDraw.Draw(im)
    for i in range(40):
        x, y = (i * 7919) % width, (i * 104729) % height
        colour = ((i * 50) % 256, (i * 90) % 256, (i * 130) % 256)
        draw.ellipse((x, y, x + width // 10, y + height // 12), fill=colour)
    return im


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _write_png16(path: Path, width: int, height: int, colour_type: int, channels: int) -> None:
    """A 16-bit PNG (Pillow writes none in colour): rows of shifted noise, deflated."""
    rng = random.Random(width * 31 + height)
    row_bytes = width * channels * 2
    block = bytes(rng.randrange(256) for _ in range(6000))
    pattern = (block * (row_bytes // len(block) + 2))[: row_bytes + 97]
    deflate = zlib.compressobj(6)
    with path.open("wb") as f:
        ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
        f.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr))
        pending = b""
        for y in range(height):
            pending += deflate.compress(b"\0" + pattern[y % 97 : y % 97 + row_bytes])
            if len(pending) >= MB:
                f.write(_png_chunk(b"IDAT", pending))
                pending = b""
        f.write(_png_chunk(b"IDAT", pending + deflate.flush()) + _png_chunk(b"IEND", b""))


def _write_bmp_rle8(path: Path, width: int, height: int) -> None:
    """An 8-bit BMP compressed with RLE8 (Pillow reads it but writes none): runs of 255."""
    rows = []
    for y in range(height):
        run, left = bytearray(), width
        while left:
            n = min(255, left)
            run += bytes((n, (y // 16 + left) % 256))
            left -= n
        rows.append(bytes(run) + b"\0\0")  # end of line
    pixels = b"".join(rows)[:-2] + b"\0\1"  # end of bitmap
    palette = b"".join(bytes((i, 255 - i, (i * 3) % 256, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    path.write_bytes(header + info + palette + pixels)


_SUFFIX = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "webp": ".webp", "bmp": ".bmp"}


def make_memory_image(kind: str, width: int, height: int) -> Path:
    """The test file of a memory case, cached."""
    from PIL import Image

    path = CACHE / f"mem-{kind}-{width}x{height}-v1{_SUFFIX[kind.split('-')[0]]}"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    # Pillow and the hand-made writers take a name: a unique part file's (kling_ui.files).
    with atomic_path(path, mode=SHARED) as tmp:
        if kind == "png-rgba16":
            _write_png16(tmp, width, height, 6, 4)
        elif kind == "bmp-rle8":
            _write_bmp_rle8(tmp, width, height)
        elif kind == "png-grey16":
            grey = Image.linear_gradient("L").resize((width, height)).convert("I")
            grey.point(lambda v: v * 257).convert("I;16").save(tmp, "PNG")
        else:
            im = _base_picture(width, height)
            fmt = kind.split("-")[0].upper()
            if kind in ("png-rgba", "webp-lossless-rgba"):
                alpha = Image.new("L", im.size, 200)
                alpha.paste(0, (0, 0, width // 2, height // 3))
                im.putalpha(alpha)
            elif kind in ("png-palette", "gif"):
                im = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
            params: dict[str, Any] = {
                "jpeg": {"quality": 90},
                "jpeg-progressive-444": {"quality": 90, "progressive": True, "subsampling": 0},
                "jpeg-progressive-cmyk": {"quality": 90, "progressive": True},
                "png-rgb": {"compress_level": 1},
                "png-rgba": {"compress_level": 1},
                "png-palette": {"transparency": 0},
                "webp": {"quality": 80, "method": 0},
                "webp-lossless-rgba": {"lossless": True, "method": 0},
            }.get(kind, {})
            if kind == "jpeg-progressive-cmyk":
                im = im.convert("CMYK")
            im.save(tmp, fmt, **params)
    return path


# Runs in a fresh interpreter: import what the app imports, reset the peak, prepare the file
# (ours) or decode it plainly with Pillow (plain) in worker threads, report the peak.
_MEMORY_CHILD = r"""
import json, sys, threading, time
if sys.argv[4:] != ["quick"]:  # a quick run skips Gradio's ~5 CPU-s import: not the real idle
    import gradio  # noqa: F401  (the app's own imports, so the idle size is the app's)
import kling_ui.service  # noqa: F401
from PIL import Image
from kling_ui.errors import InputError
from kling_ui.images import prepare_image

how, path, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

def plain(path):
    with Image.open(path) as im:
        im = im.convert("RGB")
    scale = 2048 / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    im.save(__import__("io").BytesIO(), "JPEG", quality=90)
    return "decoded"

def ours(path):
    try:
        prepared = prepare_image(path)
    except InputError as exc:
        return "refused: " + str(exc)
    return f"accepted: {prepared.width}x{prepared.height}"

outcomes = []
work = lambda: outcomes.append((ours if how == "ours" else plain)(path))
idle = status_kb("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
started = time.perf_counter()
threads = [threading.Thread(target=work) for _ in range(copies)]
for t in threads:
    t.start()
for t in threads:
    t.join()
seconds = time.perf_counter() - started
print(json.dumps({"idle_kb": idle, "peak_kb": status_kb("VmHWM"), "seconds": seconds,
                  "outcomes": outcomes}))
"""


def _peak_in_child(how: str, path: Path, copies: int, quick: bool = False) -> dict[str, Any]:
    # glibc's settings as app.py makes them (its _limit_malloc_arenas).
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "4194304",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, how, str(path), str(copies)]
        + (["quick"] if quick else []),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=ROOT,
        env=env,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "idle_bytes": result["idle_kb"] * 1024,
        "peak_bytes": result["peak_kb"] * 1024,
        "seconds": result["seconds"],
        "outcomes": result["outcomes"],
    }


def run_memory(
    cases: list[tuple[str, str, int, int, int, bool]], quick: bool = False
) -> dict[str, Any]:
    rows, results = [], {}
    for label, kind, width, height, copies, accepted in cases:
        path = make_memory_image(kind, width, height)
        ours = _peak_in_child("ours", path, copies, quick)
        plain = _peak_in_child("plain", path, copies, quick)
        outcome = ours["outcomes"][0]
        ours_accepted = all(o.startswith("accepted") for o in ours["outcomes"])
        ours_refused = all(o.startswith("refused") for o in ours["outcomes"])
        results[label] = {
            "kind": kind,
            "width": width,
            "height": height,
            "copies": copies,
            "file_bytes": path.stat().st_size,
            "ours": ours,
            "plain": plain,
        }
        what = "accepted" if ours_accepted else "refused" if ours_refused else "mixed"
        size = f"{width}x{height}, {width * height / 1e6:.1f} MP, {fmt_mb(path.stat().st_size)}"
        rows.append(
            row(
                f"1. Image memory, {label} ({size})",
                f"peak {fmt_mb(ours['peak_bytes'])} (idle {fmt_mb(ours['idle_bytes'])}), "
                f"{what}, {fmt_s(ours['seconds'])}",
                f"plain Pillow: peak {fmt_mb(plain['peak_bytes'])}, {fmt_s(plain['seconds'])}",
                ours["peak_bytes"] / plain["peak_bytes"],
                "< 400 MB, " + ("accepted" if accepted else "refused before decoding"),
                ours["peak_bytes"] < MEMORY_TARGET
                and (ours_accepted if accepted else ours_refused),
            )
        )
        results[label]["outcome"] = outcome
    worst = max(r["ours"]["peak_bytes"] for r in results.values())
    idle = median([r["ours"]["idle_bytes"] for r in results.values()])
    note = (
        "Image memory: each file prepared by images.prepare_image in a fresh subprocess "
        "(python -c) that has first imported Gradio and kling_ui.service, as the app has "
        + ("(quick: kling_ui.service only) " if quick else "")
        + f"(idle {fmt_mb(idle)}), with MALLOC_ARENA_MAX=2 and MALLOC_MMAP_THRESHOLD_=4194304 "
        "as app.py sets, the work in worker "
        "threads (one per copy; several copies share the app's decode limits); peak = VmHWM "
        "after the work, reset through /proc/self/clear_refs just before it. Plain Pillow = "
        "Image.open, convert('RGB'), resize to 2048 long side (LANCZOS), JPEG q90, in the same "
        "kind of process. The files are the largest of each kind that prepare_image accepts "
        "(DECODE_BUDGET in kling_ui/images/limits.py), square, of gradients and ellipses; 16-bit "
        "colour PNGs and RLE8 BMPs are written by hand (Pillow writes neither)."
    )
    return {"rows": rows, "cases": results, "worst_peak": worst, "idle": idle, "note": note}
