"""How metrics are named and printed, in one place (the terminal table, the CSV, the HTML report)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LABELS", "digits", "number", "metrics_of", "label"]

#: Metric -> its label, in the order every table shows them.
LABELS = {"vmaf": "VMAF", "vmaf_neg": "VMAF NEG", "psnr_y": "PSNR-Y (dB)", "ssim": "SSIM",
          "cambi": "CAMBI (banding)"}


def digits(metric: str) -> int:
    """Decimal digits a metric is printed with (SSIM needs one more than dB and VMAF points)."""
    return 4 if metric == "ssim" else 3


def number(metric: str, value: float, sign: bool = False) -> str:
    """``value`` of ``metric`` as every table prints it (``sign``: with + for a delta)."""
    return f"{value:+.{digits(metric)}f}" if sign else f"{value:.{digits(metric)}f}"


def label(metric: str) -> str:
    """A metric's label: :data:`LABELS`, or ``VMAF (<model>)`` for the metric of a further VMAF model."""
    return LABELS.get(metric) or f"VMAF ({metric})"


def metrics_of(scored: Iterable[str]) -> list[str]:
    """The metrics of a result (its ``delta`` keys) in :data:`LABELS` order, further VMAF models after
    ``vmaf`` in the order they were given."""
    scored = list(scored)
    extra = [m for m in scored if m not in LABELS]
    out = []
    for m in LABELS:
        if m in scored:
            out.append(m)
        if m == "vmaf":
            out.extend(extra)
    return out
