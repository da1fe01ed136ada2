"""1. Image to request: an uploaded photo to the create request's body, ready to send.

Ours is what happens to an upload in our page once Gradio has stored it: Gradio's own
preprocessing of the event's input (``async_move_files_to_cache`` with the upload-folder
check, ``ImageData.model_validate``, then ``UploadedImage.preprocess``, which hands on the
path), ``images.prepare_image(path)`` and ``GenerationRequest(...).body()``.

The baseline is the straightforward Pillow path: open, ``convert("RGB")``, resize to a long
side of 2048 with LANCZOS, save as JPEG quality 90 into a BytesIO, base64, and the same
``body()``. Both run in this process on the same file, interleaved (the order alternates),
after one warm-up each; medians of N. Target: ours at most 0.4x the baseline on a 24 MP
(6000x4000) JPEG, with a body under 2 MB; 12 MP and 48 MP are reported alongside.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

from bench._common import fmt_mb, fmt_s, make_photo, median, row

PROMPT = "The cat slowly turns its head toward the camera and blinks."
BODY_LIMIT = 2_000_000  # bytes of JSON; "under 2 MB" read strictly (decimal)
TARGET_RATIO = 0.4
FULL_SIZES = [("24 MP", 6000, 4000, 9), ("12 MP", 4240, 2832, 7), ("48 MP", 8000, 6000, 7)]
QUICK_SIZES = [("4 MP (quick)", 2400, 1600, 2)]


def baseline_body(path: Path) -> dict[str, Any]:
    from PIL import Image

    from kling_ui.client import GenerationRequest

    with Image.open(path) as opened:
        im = opened.convert("RGB")
    w, h = im.size
    scale = 2048 / max(w, h)
    im = im.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=90)
    uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return GenerationRequest(image_url=uri, prompt=PROMPT).body()


class OursPath:
    """Gradio's preprocessing of an uploaded file, then ours, as in the page's handler."""

    def __init__(self, photo: Path) -> None:
        from gradio.processing_utils import async_move_files_to_cache

        from kling_ui.ui import UploadedImage

        self._move = async_move_files_to_cache
        self.block = UploadedImage(type="filepath", image_mode=None, sources=["upload"])
        # Where Gradio's upload route would have written the file: its cache folder.
        self.upload_dir = Path(self.block.GRADIO_CACHE) / f"kling-ui-bench-{photo.stem}"
        self.upload_dir.mkdir(parents=True, exist_ok=True)
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
        from kling_ui.client import GenerationRequest
        from kling_ui.images import prepare_image

        path = self.gradio_side()
        prepared = prepare_image(path)
        return GenerationRequest(image_url=prepared.data_uri, prompt=PROMPT).body()

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
        },
        "notes": [
            "Image to request: ours = Gradio's preprocessing of the uploaded file "
            "(async_move_files_to_cache with the upload-folder check, ImageData validation, "
            "UploadedImage.preprocess) + images.prepare_image + GenerationRequest.body(); "
            "baseline = Image.open, convert('RGB'), resize to 2048 long side with LANCZOS, "
            "JPEG q90 to BytesIO, base64, same body(). Same file, same process, interleaved "
            f"(alternating order), one warm-up each, median of {sizes[0][3]} "
            f"(Gradio's own part alone: {fmt_s(main['gradio_preprocess_median_s'])}). "
            "Body size is the JSON the create POST sends. The photos are synthetic "
            "(gradients, shapes, per-channel noise, EXIF), JPEG quality 92.",
        ],
    }
