"""What a quantizer-conditioned model was told over the frames compare scored.

``vmaf_pre`` marks each output frame of a two-input model with the quantizer it fed (``VmafPreQP``,
``VmafPreQPSource``, ``VmafPreNetwork``); the scoring pipeline reads them back from every scored frame
(``Scores.told``). This module turns them into the result's per-frame ``quantizer`` record and into
the notes (where the plane came from, the QP it said over the whole stream, which network ran) and the
warning for frames told nothing, which the model leaves alone by design.
"""

from __future__ import annotations

from collections import Counter

from ..models import ModelSpec
from ..qp_estimator import load_estimator

__all__ = ["silent_reason", "told_notes"]

#: How a note names each source of the plane (``vsfilter.quantizer.QP_SOURCES``, "unknown" aside).
_SOURCES = {"bitstream": "the quantizer by the bitstream (QP props)",
            "estimate": "a learned estimate of the quantizer (the stream carries none)",
            "given": "the QP it was given"}


def silent_reason(spec: ModelSpec) -> str | None:
    """Why a frame of ``spec``'s input can be told nothing: what the stream lacks (None for a one-input
    model)."""
    if spec.planes < 2:
        return None
    estimator = spec.qp_estimator
    known = load_estimator(estimator, spec.qp_estimator_sha256).codecs if estimator is not None else ()
    rate = f"the coded rate of {', '.join(known)}" if known else "an estimate (the model has no estimator)"
    return f"the distorted stream has neither QP side data (H.264, MPEG-2, VP9) nor {rate}"


def told_notes(model: str, told: list[dict], silent: str | None) -> tuple[list[str], list[str]]:
    """(notes, warnings) on what ``model`` was told over the scored frames ``told`` (one dict per frame,
    ``vsfilter.filter.told_on``): one note per source of the plane with its frame count and the
    H.264-equivalent QP it said (mean, range), one per specialist network that ran, and a warning
    for the frames told nothing (``silent``: why, :func:`silent_reason`).

    Args:
        model: the model's registry id.
        told: what each scored frame says; empty for a one-input model (no notes).
        silent: why a frame can be told nothing.
    """
    notes: list[str] = []
    warnings: list[str] = []
    told = [t for t in told if t]
    total = len(told)
    if not total:
        return notes, warnings
    for source, phrase in _SOURCES.items():
        qps = [float(t["qp"]) for t in told if t.get("source") == source and t.get("qp") is not None]
        count = sum(t.get("source") == source for t in told)
        if not count:
            continue
        said = (f": H.264-equivalent QP {sum(qps) / len(qps):.1f} on average ({min(qps):.1f} to {max(qps):.1f})"
                if qps else "")
        notes.append(f"{model} was told {phrase} on {count} of {total} scored frames{said}")
    for network, count in sorted(Counter(t["network"] for t in told if t.get("network", model) != model).items()):
        notes.append(f"{model}'s specialist network {network} ran on {count} of {total} scored frames")
    unknown = sum(t.get("source") == "unknown" for t in told)
    if unknown:
        warnings.append(f"{model} was told nothing of the quantizer on {unknown} of {total} scored frames, so it "
                        f"left them alone: {silent or 'the stream says nothing of it'}")
    return notes, warnings
