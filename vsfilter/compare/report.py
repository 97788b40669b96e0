"""Presenting a CompareResult: a terminal table, JSON, CSV and a per-frame plot. Files are atomic."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..atomic import atomic_open, atomic_write_text
from ..errors import CompareError
from ..filter import TOLD_PROPS
from .core import CompareResult
from .formatting import LABELS, label, metrics_of, number
from .pipeline import STREAMS

__all__ = ["LABELS", "table", "write", "write_json", "write_csv", "write_plot", "to_json", "JSON_SCHEMA_VERSION"]

JSON_SCHEMA_VERSION = 2


def table(result: CompareResult) -> str:
    """A small table: raw, prefiltered, delta for each metric's mean, plus min and 5th percentile VMAF."""
    rows = [("metric (mean)", "distorted", "prefiltered", "delta")]
    for metric in metrics_of(result.delta):
        a, b = result.pooled["distorted"][metric], result.pooled["prefiltered"][metric]
        rows.append((label(metric), number(metric, a), number(metric, b), number(metric, b - a, sign=True)))
    for name, pooled in (("VMAF min", result.pooled_min), ("VMAF 5th pct", result.pooled_p5)):
        a, b = pooled["distorted"]["vmaf"], pooled["prefiltered"]["vmaf"]
        rows.append((name, number("vmaf", a), number("vmaf", b), number("vmaf", b - a, sign=True)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    head = (f"{result.frames} frames; pre-filter {result.model['id']} ({result.model['backend']}, "
            f"{result.model['precision']}); VMAF model {result.vmaf_model}")
    tail = [f"note: {n}" for n in result.notes] + [f"warning: {w}" for w in result.warnings]
    return "\n".join([head, *lines, *tail])


def to_json(result: CompareResult) -> dict:
    """The documented JSON document (see docs/compare.md)."""
    return {"schema_version": JSON_SCHEMA_VERSION, **result.to_dict()}


def write(flag: str, result: CompareResult, path: Path) -> None:
    """Write ``result`` in the format of the CLI flag ``--json``, ``--csv`` or ``--plot``."""
    {"--json": write_json, "--csv": write_csv, "--plot": write_plot}[flag](result, path)


def write_json(result: CompareResult, path: Path) -> None:
    atomic_write_text(path, json.dumps(to_json(result), indent=2) + "\n")


def write_csv(result: CompareResult, path: Path) -> None:
    """One row per scored frame: frame, then each metric of each stream, then (a two-input model) what it
    was told: ``quantizer_qp`` (empty when unknown), ``quantizer_source`` and, with specialists,
    ``quantizer_network``."""
    metrics = metrics_of(result.delta)
    told = [k for k in TOLD_PROPS if any(k in row.get("quantizer", {}) for row in result.per_frame)]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["frame"] + [f"{s}_{m}" for s in STREAMS for m in metrics] + [f"quantizer_{k}" for k in told])
    for row in result.per_frame:
        said = row.get("quantizer", {})
        writer.writerow([row["frame"]] + [f"{row[s][m]:.6f}" for s in STREAMS for m in metrics]
                        + ["" if said.get(k) is None else said[k] for k in told])
    atomic_write_text(path, buf.getvalue())


def write_plot(result: CompareResult, path: Path) -> None:
    """PNG of per-frame VMAF and VMAF NEG, raw vs prefiltered (needs matplotlib: the ``plot`` extra)."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    except ImportError:
        raise CompareError("a plot needs matplotlib: pip install 'vsfilter[plot]'") from None
    frames = [r["frame"] for r in result.per_frame]
    fig = Figure(figsize=(10, 4.5), dpi=100)
    ax = fig.subplots()
    styles = {"distorted": ("tab:gray", "distorted"), "prefiltered": ("tab:blue", "prefiltered")}
    for stream, (color, stream_name) in styles.items():
        ax.plot(frames, [r[stream]["vmaf"] for r in result.per_frame], color=color, lw=1.6, label=f"VMAF {stream_name}")
        ax.plot(frames, [r[stream]["vmaf_neg"] for r in result.per_frame], color=color, lw=1.2, ls="--",
                label=f"VMAF NEG {stream_name}")
    ax.set_xlabel("frame")
    ax.set_ylabel("score")
    ax.set_title(f"{Path(result.distorted).name} vs {Path(result.reference).name} "
                 f"(pre-filter {result.model['id']})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
