"""Fitting a model's per-frame gate (``vsfilter.gate``): which frames should the network touch?

Each training frame gets its gate statistics (``vsfilter.gate.frame_features`` of the degraded frame)
and the network's PSNR-Y gain on it (rounded to the frame's bit depth, as ``vmaf_pre`` outputs). A
logistic regression learns "the network helps" with every frame weighted by how much is at stake
(the size of its gain or loss, losses counted ``harm_weight`` times), so it maximises the expected gain
and refuses frames the network would harm; the threshold is then chosen on the held-out frames for the
best gain with harm counted ``harm_weight`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vsfilter.gate import FEATURES, Gate, frame_features

from .loop import evaluate_full
from .pairs import peak_of

__all__ = ["FrameStats", "frame_stats", "fit_gate", "choose_threshold", "gate_report"]


@dataclass(frozen=True)
class FrameStats:
    """Per frame: gate features (N x len(FEATURES)) and the network's PSNR-Y gain in dB (N)."""

    features: np.ndarray
    gains: np.ndarray


def frame_stats(model, pairs: list) -> FrameStats:
    """Features and gains of ``pairs`` ((clean, degraded) frames) under ``model`` (a torch module); an
    identity pair (no PSNR either side) counts as no gain."""
    gains = [after - before for before, after in evaluate_full(model, pairs)["per_image"]]
    feats = [frame_features(degraded, peak_of(clean)) for clean, degraded in pairs]
    return FrameStats(np.array(feats), np.nan_to_num(np.array(gains), posinf=0.0, neginf=0.0))


def _weights(gains: np.ndarray, harm_weight: float, cap_db: float) -> np.ndarray:
    return np.where(gains < 0, harm_weight, 1.0) * (np.minimum(np.abs(gains), cap_db) + 1e-3)


def fit_gate(stats: FrameStats, harm_weight: float = 2.0, l2: float = 1e-2, iterations: int = 50,
             cap_db: float = 1.0) -> Gate:
    """A weighted logistic regression (Newton steps) of "the network helps" on standardised features;
    a frame's weight is its gain or loss (losses ``harm_weight`` times), capped at ``cap_db`` so a few
    extreme frames do not decide for all."""
    mean = stats.features.mean(axis=0)
    scale = stats.features.std(axis=0) + 1e-6
    z = np.hstack([(stats.features - mean) / scale, np.ones((len(stats.gains), 1))])
    y = (stats.gains > 0).astype(np.float64)
    w = _weights(stats.gains, harm_weight, cap_db)
    w = w / w.mean()
    beta = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0  # no penalty on the intercept
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -60, 60)))
        grad = z.T @ (w * (p - y)) / len(y) + reg * beta
        hess = (z * (w * p * (1 - p))[:, None]).T @ z / len(y) + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return Gate(tuple(map(float, beta[:-1])), tuple(map(float, mean)), tuple(map(float, scale)), float(beta[-1]))


def _probabilities(gate: Gate, features: np.ndarray) -> np.ndarray:
    return np.array([gate.probability(f) for f in features])


def choose_threshold(gate: Gate, stats: FrameStats, harm_weight: float = 2.0) -> Gate:
    """The gate with the threshold that maximises the gain of the frames it selects, losses counted
    ``harm_weight`` times, on ``stats`` (held-out frames)."""
    p = _probabilities(gate, stats.features)
    best, best_score = 0.5, -np.inf
    for threshold in np.linspace(0.05, 0.95, 91):
        chosen = stats.gains[p >= threshold]
        score = float(np.sum(np.where(chosen < 0, harm_weight * chosen, chosen)))
        if score > best_score:
            best, best_score = float(threshold), score
    return Gate(gate.weights, gate.mean, gate.scale, gate.bias, round(best, 3))


def gate_report(gate: Gate, stats: FrameStats, labels: list[dict], band) -> dict:
    """Per band (``band(label)``): frames, share the gate runs the network on, mean gain always-on and gated,
    worst frame gated."""
    p = _probabilities(gate, stats.features)
    chosen = p >= gate.threshold
    gated = np.where(chosen, stats.gains, 0.0)
    out = {}
    names = np.array([band(lb) for lb in labels])
    for name in sorted(set(names)):
        m = names == name
        out[name] = {"frames": int(m.sum()), "applied": round(float(chosen[m].mean()), 3),
                     "gain_always_db": round(float(stats.gains[m].mean()), 4),
                     "gain_gated_db": round(float(gated[m].mean()), 4),
                     "worst_gated_db": round(float(gated[m].min()), 4)}
    out["all"] = {"frames": len(p), "applied": round(float(chosen.mean()), 3),
                  "gain_always_db": round(float(stats.gains.mean()), 4), "gain_gated_db": round(float(gated.mean()), 4),
                  "worst_gated_db": round(float(gated.min()), 4), "features": list(FEATURES)}
    return out
