"""The embedded default pair for ``compare --demo``: generated from code at first run, then cached.

The reference is a slow pan over a procedural landscape (multi-scale noise, edges, fine stripes),
stored losslessly (FFV1); the distorted stream is the same pan blurred and encoded with x264 at a
low bitrate, the kind of damage learned_filter_v1 was trained to undo.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np

from ..atomic import atomic_open
from ..cache import cache_dir

__all__ = ["demo_pair"]

WIDTH, HEIGHT, FRAMES, RATE = 480, 272, 48, Fraction(24)
VERSION = 1


def _landscape(seed: int = 2026) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = HEIGHT + 64, WIDTH + FRAMES * 4 + 64
    img = np.zeros((h, w))
    for octave in range(1, 7):
        step = 2 ** (7 - octave)
        coarse = rng.random((h // step + 2, w // step + 2))
        up = np.kron(coarse, np.ones((step, step)))[:h, :w]
        up = _smooth(up, np.ones(step) / step)
        img += up / octave
    img = (img - img.min()) / np.ptp(img)
    y, x = np.mgrid[0:h, 0:w]
    img[(x // 40 + y // 40) % 7 == 0] *= 0.55  # hard-edged blocks
    img[(y > h * 0.7) & ((x // 3) % 2 == 0)] += 0.12  # fine stripes
    return np.clip(img * 200 + 24, 16, 235)


def _smooth(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable box smoothing ('same' size): the blocks become gentle slopes."""
    rows = np.apply_along_axis(np.convolve, 1, img, kernel, "same")
    return np.apply_along_axis(np.convolve, 0, rows, kernel, "same")


def _blur(frame: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    r = int(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(frame, r, mode="edge")
    rows = np.apply_along_axis(lambda v: np.convolve(v, k, "valid"), 1, pad)
    return np.apply_along_axis(lambda v: np.convolve(v, k, "valid"), 0, rows)


def _write(path: Path, codec: str, frames, options: dict, pix_fmt: str = "yuv420p") -> None:
    with atomic_open(path, "wb") as fh, av.open(fh, "w", format="matroska") as out:
        stream = cast(av.VideoStream, out.add_stream(codec, rate=RATE, options=options))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, pix_fmt
        for n, luma in enumerate(frames):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            for i, plane in enumerate(frame.planes):
                arr = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
                arr[: plane.height, : plane.width] = luma if i == 0 else 128
            frame.pts, frame.time_base = n, 1 / RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def demo_pair() -> tuple[Path, Path]:
    """(reference, distorted) paths of the demo clips, generated on first use (a few seconds)."""
    root = cache_dir(f"demo-v{VERSION}")
    ref, dist = root / "demo_reference.mkv", root / "demo_distorted.mkv"
    if ref.is_file() and dist.is_file():
        return ref, dist
    land = _landscape()
    clean = [np.rint(land[32:32 + HEIGHT, 32 + 4 * n:32 + 4 * n + WIDTH]).astype(np.uint8) for n in range(FRAMES)]
    _write(ref, "ffv1", clean, {})
    degraded = [np.clip(np.rint(_blur(f.astype(np.float64))), 0, 255).astype(np.uint8) for f in clean]
    _write(dist, "libx264", degraded, {"crf": "34", "preset": "medium"})
    return ref, dist
