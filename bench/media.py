"""Benchmark clips: a 1080p pan over a large luma image, encoded once into the user cache dir."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def encode_pan(path: Path, base: np.ndarray, frames: int, codec: str, options: dict,
               offset: Callable[[int], tuple[int, int]], width: int = 1920, height: int = 1080) -> Path:
    """Encode ``frames`` crops of ``base`` (uint8), crop n at ``offset(n) = (x, y)``, neutral chroma."""
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for n in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            x, y = offset(n)
            luma = np.frombuffer(frame.planes[0], np.uint8).reshape(-1, frame.planes[0].line_size)
            luma[:height, :width] = base[y:y + height, x:x + width]
            for plane in frame.planes[1:]:
                np.frombuffer(plane, np.uint8)[:] = 128
            frame.pts, frame.time_base = n, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.rename(path)
    return path
