"""What the benchmarks share: memory from /proc, statistics, the machine's description and
the test media (a photo-like JPEG, an MP4 clip), cached in the temp folder's ``kling-ui-bench``
and written whole under a unique part name by ``kling_ui.files``.

Starting the app (``Server``, ``app_argv``, ``clean_env``, ``free_port``) is the tests'
harness, ``tests/apprunner.py``, imported as ``apprunner`` (``bench/__init__`` says why);
Chromium's path and flags come from ``tests/browsing.py``.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kling_ui.files import atomic_path, write_with

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CACHE = Path(tempfile.gettempdir()) / "kling-ui-bench"
# The cache's files are written whole under a unique part name (kling_ui.files), readable as
# a plain write would leave them: two benchmarks making the same file never share a part.
SHARED = 0o644


# --- statistics ---------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 1024**2:.1f} MB"


def row(
    benchmark: str,
    ours: str,
    baseline: str,
    ratio: float | None,
    target: str,
    met: bool | None,
) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "ours": ours,
        "baseline": baseline,
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": met,
    }


# --- processes ----------------------------------------------------------------------------


class PeakSampler:
    """Reads one field of /proc/<pid>/status (VmRSS, Threads, ...) every ``every`` seconds in
    a thread, keeping the highest; ``stop()`` returns it."""

    def __init__(self, pid: int, field: str, every: float = 0.1) -> None:
        self.pid, self.field, self.peak = pid, field, 0
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status_kb(self.pid, self.field) or 0)
            time.sleep(self._every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def proc_status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM, ...), or None if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# --- the machine --------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = "unknown CPU"
    ram_kb = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "cpu": cpu,
        "cores": usable,
        "ram_gb": round(ram_kb / 1024**2, 1),
        "python": platform.python_version(),
        "gradio": version("gradio"),
        "gradio_client": version("gradio_client"),
        "pillow": version("pillow"),
        "kernel": platform.release(),
    }


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']:g} GB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, Gradio {m['gradio']} (gradio_client {m['gradio_client']}), "
        f"Pillow {m['pillow']}"
    )


# --- test media ---------------------------------------------------------------------------


def make_photo(width: int, height: int, *, quality: int = 92) -> Path:
    """A photo-like JPEG (gradients, shapes, sensor-like noise, a camera's EXIF), cached."""
    path = CACHE / f"photo-{width}x{height}-q{quality}-v1.jpg"
    if path.exists():
        return path
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    rng = __import__("random").Random(width * 7919 + height)
    size = (width, height)
    red = Image.linear_gradient("L").rotate(90).resize(size, Image.Resampling.BILINEAR)
    green = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    blue = Image.radial_gradient("L").resize(size, Image.Resampling.BILINEAR)
    im = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(im)
    scale = max(width, height)
    for _ in range(80):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(scale // 60, scale // 8)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice(("ellipse", "rectangle", "polygon", "line"))
        if shape == "ellipse":
            draw.ellipse((x - r, y - r, x + r, y + r // 2), fill=colour)
        elif shape == "rectangle":
            draw.rectangle((x, y, x + r, y + r * 2 // 3), fill=colour)
        elif shape == "polygon":
            pts = [(x + rng.randrange(-r, r), y + rng.randrange(-r, r)) for _ in range(5)]
            draw.polygon(pts, fill=colour)
        else:
            draw.line((x, y, x + r * 3, y - r), fill=colour, width=max(2, scale // 400))
    # Soften the edges a little (lenses are not perfect), then add per-channel noise.
    im = im.filter(ImageFilter.GaussianBlur(radius=max(1, scale // 3000)))
    noise = Image.merge("RGB", [Image.effect_noise(size, 10) for _ in range(3)])
    im = ImageChops.add(im, noise, scale=1.0, offset=-128)
    exif = Image.Exif()
    exif[0x0112] = 1  # orientation: upright
    exif[0x010F] = "BenchCam"  # make
    exif[0x0110] = "Photo-like 1"  # model
    CACHE.mkdir(parents=True, exist_ok=True)
    write_with(
        path, lambda out: im.save(out, "JPEG", quality=quality, exif=exif.tobytes()), mode=SHARED
    )
    return path


def make_clip(target_mb: float = 5.0, seconds: int = 10) -> Path:
    """An H.264/AAC MP4 of about ``target_mb`` MB with faststart (PyAV), cached.

    720p at 30 fps in yuv420p (x264's ultrafast preset: Constrained Baseline, which every
    browser plays) plus a 440 Hz tone in 128 kb/s AAC-LC, interleaved. The picture is a
    moving checkerboard under fresh noise, so the encoder really spends the bitrate it is
    given; with a half-second VBV buffer the file comes out within a few % of ``target_mb``.
    """
    path = CACHE / f"clip-{target_mb:g}MB-{seconds}s-v2.mp4"
    if path.exists():
        return path
    import av
    import numpy as np

    CACHE.mkdir(parents=True, exist_ok=True)
    width, height, fps, rate, audio_bps = 1280, 720, 30, 48000, 128_000
    # The MP4's own boxes and the AAC's framing cost about 2 %; leave them room.
    video_bps = max(int(target_mb * 8 * 1024**2 * 0.98 / seconds) - audio_bps, 50_000)
    rng = np.random.default_rng(int(target_mb * 1000) * 7919 + seconds)
    ys, xs = np.mgrid[0:height, 0:width]
    base = ((xs // 80 + ys // 80) % 2 * 120 + 60).astype(np.uint8)  # a checkerboard
    chroma = np.full((height // 2, width), 128, np.uint8)  # U and V planes: grey
    samples = np.arange(rate * seconds)
    tone = (0.3 * np.sin(2 * np.pi * 440 * samples / rate)).astype(np.float32)
    # The muxer goes back over its own output (faststart), so it is given a part file's name.
    with (
        atomic_path(path, mode=SHARED) as part,
        av.open(str(part), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        video = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": "ultrafast",
                "maxrate": str(video_bps),
                "bufsize": str(video_bps // 2),
            },
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = video_bps
        audio = out.add_stream("aac", rate=rate, layout="mono")
        audio.bit_rate = audio_bps
        sent = 0  # audio samples encoded so far, kept level with the video
        for i in range(fps * seconds):
            luma = np.roll(base, (i * 4, i * 8), axis=(0, 1))
            luma = luma + rng.integers(0, 48, (height, width), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(np.vstack([luma, chroma]), format="yuv420p")
            frame.pts = i
            out.mux(video.encode(frame))
            while sent < min((i + 1) * rate // fps, len(tone)):
                chunk = tone[sent : sent + 1024]
                sound = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                sound.sample_rate, sound.pts = rate, sent
                out.mux(audio.encode(sound))
                sent += len(chunk)
        out.mux(video.encode())
        out.mux(audio.encode())
    return path
