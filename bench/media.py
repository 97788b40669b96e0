"""Benchmark clips: a 1080p pan over a large luma image, encoded once into the user cache dir."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.encoding import luma_frame  # noqa: E402  (a library function of the pair step)


def encode_luma(path: Path, frames: Iterable[np.ndarray], codec: str, options: dict, width: int,
                height: int) -> Path:
    """Encode luma frames (H x W each: uint8, or uint16 10-bit codes, encoded at 10 bits) at 25 fps with
    neutral chroma into ``path``, written whole or not at all (a partial file is renamed only when the
    encoder is done)."""
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    frames = iter(frames)
    first = next(frames)
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p10le" if first.dtype == np.uint16 else "yuv420p"
        for n, luma in enumerate(itertools.chain([first], frames)):
            for packet in stream.encode(luma_frame(luma, n, Fraction(1, 25))):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.rename(path)
    return path


def encode_pan(path: Path, base: np.ndarray, frames: int, codec: str, options: dict,
               offset: Callable[[int], tuple[int, int]], width: int = 1920, height: int = 1080) -> Path:
    """Encode ``frames`` crops of ``base`` (uint8), crop n at ``offset(n) = (x, y)``, neutral chroma."""
    def crops() -> Iterator[np.ndarray]:
        for n in range(frames):
            x, y = offset(n)
            yield base[y:y + height, x:x + width]

    return encode_luma(path, crops(), codec, options, width, height)
