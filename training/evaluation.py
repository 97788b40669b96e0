"""Figures of a trained network on held-out pairs: PSNR-Y gain per encoder and CRF band, per bit depth,
and of the worst clip (labels from ``training.pair_sets.load_pairs``, one per pair)."""

from __future__ import annotations

import numpy as np

from .loop import evaluate_full

__all__ = ["crf_band", "codec_breakdown"]


def crf_band(crf: int) -> str:
    lo = (crf // 10) * 10
    return f"crf {lo}-{lo + 9}"


def codec_breakdown(model, val_pairs: list, labels: list[dict], device, blind: bool = False) -> dict:
    """PSNR gain per encoder and CRF band, per bit depth, and of the worst clip, on the validation frames
    (``blind``: quantizer planes all unknown).

    ``labels[i]`` describes ``val_pairs[i]`` (as :func:`training.codec_pairs.load_pairs` returns them).
    """
    if len(labels) != len(val_pairs):
        raise ValueError(f"{len(labels)} labels for {len(val_pairs)} pairs")
    result = evaluate_full(model, val_pairs, device, blind)
    groups: dict[str, dict[str, list[float]]] = {"per_codec": {}, "per_bit_depth": {}, "per_clip": {}}
    for label, (before, after) in zip(labels, result["per_image"]):
        gain = after - before
        groups["per_codec"].setdefault(f"{label['encoder']} {crf_band(label['crf'])}", []).append(gain)
        groups["per_bit_depth"].setdefault(f"{label['bits']}-bit", []).append(gain)
        groups["per_clip"].setdefault(str(label["clip"]), []).append(gain)
    out = {name: {k: {"frames": len(v), "psnr_gain_db": round(float(np.mean(v)), 4)} for k, v in sorted(g.items())}
           for name, g in groups.items() if name != "per_clip"}
    clip_means = {k: float(np.mean(v)) for k, v in groups["per_clip"].items()}
    worst = min(clip_means, key=clip_means.__getitem__)
    out["worst_clip"] = {"clip": int(worst), "psnr_gain_db": round(clip_means[worst], 4)}
    return out
