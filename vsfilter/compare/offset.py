"""Shifted encodes: find the frame offset at which a distorted stream matches its reference.

An encode that starts a few frames late or early scores frame against wrong frame ("VMAF is 0 on some
frames"). The check is cheap: PSNR-Y of the first few luma planes (every other pixel) at each offset
in ``[-max, +max]``. An offset ``N`` pairs distorted frame ``k + N`` with reference frame ``k``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import vapoursynth as vs

__all__ = ["OffsetCheck", "check_offsets", "CLEARLY_BETTER_DB", "PROBE_FRAMES"]

#: Frames compared at each offset.
PROBE_FRAMES = 8
#: An offset is "clearly better" when its PSNR-Y beats the one in use by this much: a real shift of a
#: moving scene costs far more (10-20 dB on camera pans), re-encoding noise between neighbours far less.
CLEARLY_BETTER_DB = 1.0


@dataclass(frozen=True)
class OffsetCheck:
    """PSNR-Y (dB) of the first frames at each offset tried, and the best one.

    Attributes:
        psnr_y: offset -> mean PSNR-Y of the probed frame pairs.
        best: the offset with the highest PSNR-Y.
    """

    psnr_y: dict[int, float]
    best: int

    def clearly_better_than(self, offset: int) -> bool:
        """Whether :attr:`best` beats ``offset`` by :data:`CLEARLY_BETTER_DB` (``offset`` untried: True)."""
        if self.best == offset:
            return False
        here = self.psnr_y.get(offset)
        return here is None or self.psnr_y[self.best] >= here + CLEARLY_BETTER_DB

    def to_dict(self) -> dict:
        return {"best": self.best, "psnr_y_by_offset": {str(k): round(v, 3) if math.isfinite(v) else None
                                                        for k, v in self.psnr_y.items()}}


def _luma(clip: vs.VideoNode, n: int, cache: dict) -> np.ndarray:
    key = (id(clip), n)
    if key not in cache:
        with clip.get_frame(n) as frame:
            cache[key] = np.asarray(frame[0])[::2, ::2].astype(np.float64)
    return cache[key]


def _probe_luma(clip: vs.VideoNode, width: int, height: int) -> vs.VideoNode:
    """Luma as float in [0, 1] at ``width`` x ``height`` (inputs of any size and bit depth compare)."""
    if clip.format.color_family != vs.GRAY:
        clip = vs.core.std.ShufflePlanes(clip, 0, vs.GRAY)
    return clip.resize.Bilinear(width, height, format=vs.GRAYS)


def check_offsets(ref: vs.VideoNode, dist: vs.VideoNode, max_offset: int) -> OffsetCheck:
    """PSNR-Y of up to :data:`PROBE_FRAMES` frame pairs at every offset in ``[-max_offset, max_offset]``
    (offsets that leave no frame to pair are skipped)."""
    peak = 1.0
    ref, dist = _probe_luma(ref, ref.width, ref.height), _probe_luma(dist, ref.width, ref.height)
    cache: dict = {}
    results: dict[int, float] = {}
    for offset in range(-max_offset, max_offset + 1):
        first = max(0, -offset)
        count = min(PROBE_FRAMES, ref.num_frames - first, dist.num_frames - first - offset)
        if count < 1:
            continue
        mse = np.mean([np.mean((_luma(ref, k, cache) - _luma(dist, k + offset, cache)) ** 2)
                       for k in range(first, first + count)])
        results[offset] = 10 * math.log10(peak * peak / mse) if mse > 0 else math.inf
    if not results:
        results[0] = 0.0
    best = max(results, key=lambda k: (results[k], -abs(k)))
    return OffsetCheck(results, best)
