"""Reading a codec pair set written by ``python -m training.codec_pairs``: is the cache complete, and its
(clean, degraded) frames with one label per frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .cli import UsageError


def cached(manifest_path: Path, key: str) -> bool:
    """The pair set at ``manifest_path`` was built with the settings hashed in ``key`` and is complete."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("key") == key and all((manifest_path.parent / c["file"]).is_file() for c in manifest["clips"])


def load_pairs(directory: Path, packages: set[str] | None = None, exclude: set[str] | None = None,
               identity: bool = False, quantizer: bool = False, neighbours: bool = False) -> tuple[list, list[dict]]:
    """(pairs, labels) of a pair set, filtered by package.

    Pairs are (clean, degraded) frames: uint8, or uint16 10-bit codes. ``labels[i]`` describes
    ``pairs[i]`` (``clip``, ``package``, ``source``, ``encoder``, ``crf``, ``bits``), so a figure per
    encoder or per clip can never drift from the pairs it describes. Pairs whose round trip changed
    nothing (identity pairs, lossless encodes) are kept only with ``identity=True``: they teach leaving
    pixels alone but have no PSNR to report. With ``quantizer=True`` each pair is a triple
    ``(clean, degraded, qp)``: ``qp`` the degraded frame's quantizer map (H.264-equivalent QP per 16x16
    block, NaN = unknown; ``training.encoding.RoundTrip``), and labels add ``qp_source``. Labels carry
    each degraded frame's coded rate (``bits_per_pixel``: ``RoundTrip.bits_per_pixel``) where the set
    recorded it (None for identity pairs and sets built before it was). With ``neighbours=True`` (a set
    built with ``--neighbours``; implies ``quantizer``) each pair is ``(clean, degraded, qp, previous,
    qp_previous, next, qp_next)``: the planes of a temporal network's input in its channel order.
    """
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{directory} is not a codec pair set (no readable manifest.json); build it with "
                         "python -m training.codec_pairs") from None
    pairs, labels = [], []
    for clip in manifest["clips"]:
        if (packages is not None and clip["package"] not in packages) or (exclude and clip["package"] in exclude):
            continue
        with np.load(directory / clip["file"]) as data:
            clean, degraded = data["clean"], data["degraded"]
            if (quantizer or neighbours) and "qp" not in data:
                raise UsageError(f"{directory} has no quantizer maps (built before they were recorded); rebuild "
                                 "it with python -m training.codec_pairs --force")
            qps = data["qp"].astype(np.float32) if quantizer or neighbours else None
            if neighbours and "neighbours" not in data:
                raise UsageError(f"{directory} has no neighbouring frames; build a pair set with python -m "
                                 "training.codec_pairs --neighbours")
            beside = (data["neighbours"], data["qp_neighbours"].astype(np.float32)) if neighbours else None
        for i, row in enumerate(clip["samples"]):
            if not identity and np.array_equal(clean[row["clean"]], degraded[i]):
                continue
            enc = clip["encodes"][row["encode"]]
            pair = (clean[row["clean"]], degraded[i]) + ((qps[i],) if qps is not None else ())
            if beside is not None:
                pair += (beside[0][i, 0], beside[1][i, 0], beside[0][i, 1], beside[1][i, 1])
            pairs.append(pair)
            labels.append({"clip": clip["clip"], "package": clip["package"], "source": clip["source"],
                           "encoder": enc["encoder"], "crf": enc["crf"], "bits": int(clip.get("bits", 8)),
                           "qp_source": enc.get("qp_source", "none"),
                           "bits_per_pixel": row.get("bits_per_pixel")})
    return pairs, labels


def told_estimates(pairs: list, labels: list[dict], estimator: Path) -> list:
    """Quantizer triples as ``vmaf_pre`` tells them: a pair whose decoder exports no quantizer (label
    ``qp_source`` ``encoder``: HEVC, AV1, whose maps hold the encoder's own QP) gets the estimator's
    estimate of its frame (``vsfilter.qp_estimator``, from its coded rate, codec and luma), NaN
    (unknown) where it gives none; the others are kept. A network trained on these learns how far to
    trust the estimate, codec by codec.

    Args:
        pairs: ``(clean, degraded, qp)`` triples of :func:`load_pairs` (``quantizer=True``).
        labels: their labels (``encoder``, ``bits``, ``qp_source``, ``bits_per_pixel``).
        estimator: the estimator's ONNX file (a registry row's ``qp_estimator``).
    """
    from vsfilter.qp_estimator import PROP_CODEC, PROP_RATE, QuantizerEstimator

    from .encoding import QP_KINDS

    estimate = QuantizerEstimator(estimator)
    out = []
    for (clean, degraded, qp), label in zip(pairs, labels, strict=True):
        if label["qp_source"] == "encoder":
            props = {PROP_CODEC: QP_KINDS.get(label["encoder"], ""), PROP_RATE: label.get("bits_per_pixel")}
            told = estimate(degraded, (1 << label["bits"]) - 1, props)
            qp = np.full(qp.shape, np.nan if told is None else told, np.float32)
        out.append((clean, degraded, qp))
    return out
