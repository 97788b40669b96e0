"""Real degraded frames for INT8 calibration and accuracy checks (never random noise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .cli import UsageError
from .corpus import IMAGE_EXTS, load_corpus
from .degrade import degrade

__all__ = ["degraded_pairs", "held_out_paths", "crops", "codec_split"]


def held_out_paths(manifest: Path) -> list[Path]:
    """The validation files of a training run (photos the model never trained on)."""
    try:
        data = json.loads(manifest.read_text())["data"]["val"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read the validation split from {manifest} ({type(exc).__name__})") from None
    return [Path(row["path"]) for row in data]


def degraded_pairs(images: Path | None = None, paths: list[Path] | None = None,
                   max_side: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, degraded) uint8 luma pairs from a folder of images or a list of files.

    Args:
        images: folder of images.
        paths: explicit files (e.g. :func:`held_out_paths`).
        max_side: center-crop each image to at most this many pixels per side (speed).
    """
    if paths is not None:
        from .corpus import load_image_luma

        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise UsageError(f"{len(missing)} held-out file(s) are missing, e.g. {missing[0]}")
        lumas = [load_image_luma(p) for p in paths if p.suffix.lower() in IMAGE_EXTS]
    elif images is not None:
        lumas = [s.luma for s in load_corpus(images, None, min_size=16).samples]
    else:
        raise UsageError("give calibration images (--images DIR or --manifest RUN_MANIFEST)")
    pairs = []
    for luma in lumas:
        if max_side:
            h, w = luma.shape
            y, x = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
            luma = luma[y:y + max_side, x:x + max_side]
        pairs.append((luma, degrade(luma)))
    return pairs


def crops(pairs, size: int, count: int, seed: int = 0, unknown_share: float = 0.0) -> list[np.ndarray]:
    """``count`` random degraded crops ``[1,C,s,s]`` in [0, 1] spread over the pairs, all of one size ``s``
    (``size``, or the smallest image side when an image is smaller: the calibrator stacks them); a
    quantizer triple gives its plane as the second channel (``training.pairs.model_input``).

    Args:
        pairs: (clean, degraded) pairs or (clean, degraded, quantizer map) triples.
        size: the crop side.
        count: how many crops: fewer than the pairs take every (len / count)-th pair, so a pair set whose
            first pairs are a few sources (clips are stored source by source) is sampled across all of them;
            more cycle through the pairs.
        seed: the crop positions' (and unknown planes') random seed.
        unknown_share: with triples, the share of crops fed the plane "unknown" (as training feeds it,
            ``training.pairs.UNKNOWN_SHARE``), so the quantizer plane's unknown value is calibrated too.
    """
    from .pairs import model_input

    rng = np.random.default_rng(seed)
    s = min(size, *(min(p[1].shape) for p in pairs))
    out = []
    for i in range(count):
        pair = pairs[i * len(pairs) // count if count < len(pairs) else i % len(pairs)]
        degraded = pair[1]
        y = rng.integers(degraded.shape[0] - s + 1)
        x = rng.integers(degraded.shape[1] - s + 1)
        blind = len(pair) > 2 and unknown_share > 0 and rng.random() < unknown_share
        out.append(np.ascontiguousarray(model_input(pair, blind=blind)[:, :, y:y + s, x:x + s]))
    return out


def codec_split(directory: Path, held_out: bool, planes: int = 1) -> list:
    """(clean, decoded) frames of a codec pair set: its held-out packages (the default validation
    packages of ``train_konvid``) or the others (for calibration); for a model of ``planes`` input planes
    (``vsfilter.models.INPUT_LAYOUTS``), each frame with what it feeds: its quantizer map, a temporal
    model's neighbours and theirs."""
    from .corpus import DEFAULT_VAL_PACKAGES
    from .pair_sets import load_pairs

    val = set(DEFAULT_VAL_PACKAGES)
    feeds = {"quantizer": planes >= 2, "neighbours": planes > 2}
    pairs, _ = (load_pairs(directory, packages=val, **feeds) if held_out
                else load_pairs(directory, exclude=val, **feeds))
    if not pairs:
        raise UsageError(f"{directory} has no {'held-out' if held_out else 'training'} pairs")
    return pairs
