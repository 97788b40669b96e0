"""Frame timing of `vsfilter.source`: the clip's frame rate and, for a constant-rate clip, which source
frame each output frame shows."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..errors import SourceError
from .decoding import StreamInfo
from .index import FrameIndex

__all__ = ["frame_mapping", "native_rate"]


def frame_mapping(index: FrameIndex, info: StreamInfo, fpsnum: int | None,
                  fpsden: int | None) -> tuple[np.ndarray, Fraction]:
    """Output frame -> source frame, and the clip's frame rate (0 = variable).

    Without ``fpsnum`` every source frame is an output frame. With it, output frame ``k`` shows the
    last source frame presented at or before ``k / fps`` (frames repeat or drop, as BestSource's and
    ffms2's constant-rate modes do).
    """
    n = len(index)
    if fpsnum is None:
        if fpsden is not None:
            raise SourceError("fpsden needs fpsnum")
        return np.arange(n), native_rate(index.pts, info.rate, info.time_base)
    fps = Fraction(fpsnum, fpsden or 1)
    if fps <= 0:
        raise SourceError(f"fpsnum/fpsden must be positive, got {fpsnum}/{fpsden}")
    pts = index.pts.astype(np.float64)
    tb = float(info.time_base)
    start, end = pts[0], pts[-1] + index.duration[-1]
    count = max(1, round((end - start) * tb * fps))
    times = start + np.arange(count) / float(fps) / tb
    # The last frame shown at or before each output time (half a tick of slack for rounding).
    return np.clip(np.searchsorted(pts, times + 0.5, side="right") - 1, 0, n - 1), fps


def native_rate(pts: np.ndarray, rate: Fraction | None, time_base: Fraction) -> Fraction:
    """The container's rate when the timestamps follow it (within a tenth of a frame), else the rate of
    evenly spaced timestamps, else 0 (variable rate)."""
    if len(pts) < 2:
        return rate or Fraction(25)
    if rate:
        ticks = 1 / (rate * time_base)
        ideal = pts[0] + np.arange(len(pts)) * float(ticks)
        if np.all(np.abs(pts - ideal) <= max(1.0, 0.1 * float(ticks))):
            return rate
    steps = np.diff(pts)
    if np.all(steps == steps[0]):
        return (1 / (int(steps[0]) * time_base)).limit_denominator(1 << 30)
    return Fraction(0)
