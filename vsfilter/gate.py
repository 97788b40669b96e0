"""A model's per-frame gate: a blind estimate of whether a frame is a poor encode the model restores.

A restoration network that is right on low-bitrate frames smooths what good encodes keep (sensor noise,
film grain, fine texture) and so moves them away from their reference. A gated model runs its network
on the frames its gate selects and leaves every other frame exactly as it is: a family of two members
per frame, the network for poor encodes and the identity for good ones, chosen with no extra argument.

The gate is a logistic regression on cheap statistics of the luma plane (:func:`frame_features`, on
samples / peak, the same for 8- and 10-bit): how much brighter the luma steps are across the 4- and
8-pixel block grids than inside blocks (blockiness), the share of 4x4 and 8x8 blocks flattened to a
single value (coarse quantisation), the high-frequency energy that good encodes keep, the noise level
(Immerkaer's estimate) and what is left in the quietest blocks (sensor noise and grain survive a good
encode there). Its weights
are fitted by ``training.fit_gate`` and stored in the model's registry row, so they are verified
(hashed) with the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ModelError

__all__ = ["Gate", "FEATURES", "frame_features"]

#: The statistics :func:`frame_features` returns, in order.
FEATURES = ("blockiness8", "blockiness4", "flat4", "flat8", "log_hf", "mean", "log_noise", "log_quiet")
#: Frames larger than this many pixels are measured on their centre (the statistics are averages).
_MAX_PIXELS = 1 << 21


def _grid_ratio(steps: np.ndarray, period: int) -> float:
    """log of the mean |step| across block boundaries over the mean |step| inside blocks (axis 1)."""
    on = steps[:, period - 1::period]
    mask = np.ones(steps.shape[1], bool)
    mask[period - 1::period] = False
    off = steps[:, mask]
    if on.size == 0 or off.size == 0:
        return 0.0
    return math.log((float(on.mean()) + 1e-4) / (float(off.mean()) + 1e-4))


def _flat_share(x: np.ndarray, block: int, tolerance: float) -> float:
    """Share of aligned ``block`` x ``block`` blocks whose samples span at most ``tolerance``."""
    h, w = (x.shape[0] // block) * block, (x.shape[1] // block) * block
    if h == 0 or w == 0:
        return 0.0
    tiles = x[:h, :w].reshape(h // block, block, w // block, block)
    span = tiles.max(axis=(1, 3)) - tiles.min(axis=(1, 3))
    return float((span <= tolerance).mean())


def _quiet_blocks(x: np.ndarray, share: float = 0.2) -> float:
    """The mean standard deviation of the quietest ``share`` of aligned 8x8 blocks: what is left in flat
    areas (sensor noise and grain survive a good encode there; a poor encode flattens them)."""
    h, w = (x.shape[0] // 8) * 8, (x.shape[1] // 8) * 8
    if h == 0 or w == 0:
        return 0.0
    std = x[:h, :w].reshape(h // 8, 8, w // 8, 8).std(axis=(1, 3)).ravel()
    count = max(1, int(len(std) * share))
    return float(np.partition(std, count - 1)[:count].mean())


def frame_features(plane: np.ndarray, peak: float) -> np.ndarray:
    """The gate's statistics (:data:`FEATURES`) of one luma plane (integer samples, or float in [0, 1]
    with ``peak`` 1)."""
    h, w = plane.shape
    if h * w > _MAX_PIXELS:
        side_h, side_w = min(h, 1024), min(w, 2048)
        y0, x0 = (h - side_h) // 2 // 8 * 8, (w - side_w) // 2 // 8 * 8
        plane = plane[y0:y0 + side_h, x0:x0 + side_w]
    x = plane.astype(np.float32) / np.float32(peak)
    dx = np.abs(np.diff(x, axis=1))
    dy = np.abs(np.diff(x, axis=0)).T
    block8 = 0.5 * (_grid_ratio(dx, 8) + _grid_ratio(dy, 8))
    block4 = 0.5 * (_grid_ratio(dx, 4) + _grid_ratio(dy, 4))
    code = 1.0 / 255.0
    small = min(x.shape) <= 2
    lap = np.zeros(1, np.float32) if small else \
        np.abs(4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:])
    # Immerkaer's noise estimate: the image convolved with a mask that cancels smooth structure.
    noise = np.zeros(1, np.float32) if small else np.abs(
        x[:-2, :-2] - 2 * x[:-2, 1:-1] + x[:-2, 2:] - 2 * x[1:-1, :-2] + 4 * x[1:-1, 1:-1] - 2 * x[1:-1, 2:]
        + x[2:, :-2] - 2 * x[2:, 1:-1] + x[2:, 2:])
    sigma = math.sqrt(math.pi / 2) / 6 * float(noise.mean())
    return np.array([block8, block4, _flat_share(x, 4, 0.5 * code), _flat_share(x, 8, 1.0 * code),
                     math.log10(float(lap.mean()) + 1e-5), float(x.mean()), math.log10(sigma + 1e-5),
                     math.log10(_quiet_blocks(x) + 1e-5)], np.float64)


@dataclass(frozen=True)
class Gate:
    """A fitted gate: ``p = sigmoid(weights . standardised features + bias)``; the network runs when
    ``p >= threshold``.

    Attributes:
        weights, mean, scale: per feature (:data:`FEATURES` order); features are ``(f - mean) / scale``.
        bias: the intercept.
        threshold: the probability from which the network runs.
    """

    weights: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    bias: float
    threshold: float = 0.5

    @classmethod
    def from_record(cls, record: dict, model_id: str) -> Gate:
        """The gate of a registry row's ``gate`` block."""
        try:
            if record.get("features") != list(FEATURES):
                raise ValueError(f"features {record.get('features')} are not {list(FEATURES)}")
            gate = cls(tuple(map(float, record["weights"])), tuple(map(float, record["mean"])),
                       tuple(map(float, record["scale"])), float(record["bias"]), float(record.get("threshold", 0.5)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{model_id}: its registry gate is unreadable ({exc}); reinstall vsfilter") from None
        if not len(gate.weights) == len(gate.mean) == len(gate.scale) == len(FEATURES) or min(gate.scale) <= 0:
            raise ModelError(f"{model_id}: its registry gate has the wrong size; reinstall vsfilter")
        return gate

    def to_record(self) -> dict:
        return {"kind": "logistic", "features": list(FEATURES), "weights": list(self.weights),
                "mean": list(self.mean), "scale": list(self.scale), "bias": self.bias, "threshold": self.threshold}

    def probability(self, features: np.ndarray) -> float:
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(np.dot(z, self.weights) + self.bias)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))

    def selects(self, plane: np.ndarray, peak: float) -> tuple[bool, float]:
        """(run the network?, probability) for one luma plane."""
        p = self.probability(frame_features(plane, peak))
        return p >= self.threshold, p
