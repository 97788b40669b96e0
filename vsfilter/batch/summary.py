"""The batch's summary files: ``summary.csv`` (one row per pair), ``summary.png`` (per-pair deltas) and,
with reports, ``index.html`` linking every pair's page. All written atomically."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

from ..atomic import atomic_open, atomic_write_text
from ..compare.scoring import METRICS
from .runner import PairOutcome

__all__ = ["COLUMNS", "write_summary_csv", "write_summary_png", "write_index"]

COLUMNS = ["id", "reference", "distorted", "status", "error", "frames"] + [
    f"{metric}_{what}" for metric in METRICS for what in ("distorted", "prefiltered", "delta")]


def _row(outcome: PairOutcome) -> dict:
    row = {"id": outcome.pair.id, "reference": outcome.pair.reference, "distorted": outcome.pair.distorted,
           "status": "error" if outcome.status == "error" else "ok", "error": outcome.error, "frames": ""}
    doc = outcome.result
    if doc is not None:
        row["frames"] = doc["frames"]
        for metric in METRICS:
            row[f"{metric}_distorted"] = f"{doc['pooled']['distorted'][metric]:.6f}"
            row[f"{metric}_prefiltered"] = f"{doc['pooled']['prefiltered'][metric]:.6f}"
            row[f"{metric}_delta"] = f"{doc['delta'][metric]:.6f}"
    return row


def write_summary_csv(outcomes: list[PairOutcome], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, restval="")
    writer.writeheader()
    for outcome in outcomes:
        writer.writerow(_row(outcome))
    atomic_write_text(path, buf.getvalue())


def write_summary_png(outcomes: list[PairOutcome], path: Path) -> bool:
    """Bars of each pair's delta (PSNR-Y, VMAF NEG, VMAF); False when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    except ImportError:
        return False
    ok = [o for o in outcomes if o.result is not None]
    metrics = [("psnr_y", "PSNR-Y (dB)"), ("vmaf_neg", "VMAF NEG"), ("vmaf", "VMAF")]
    fig = Figure(figsize=(12, 0.35 * max(4, len(ok)) + 1.2), dpi=100)
    axes = fig.subplots(1, 3, sharey=True)
    names = [o.pair.id for o in ok]
    for ax, (metric, label) in zip(axes, metrics):
        values = [o.result["delta"][metric] for o in ok if o.result is not None]
        ax.barh(names, values, color=["tab:green" if v >= 0 else "tab:red" for v in values])
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{label}: prefiltered - distorted", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
    return True


def write_index(outcomes: list[PairOutcome], path: Path) -> None:
    """The batch's report index: one row per pair, linking its page (relative links, no network)."""
    rows = []
    for o in outcomes:
        name = html.escape(o.pair.id)
        if o.result is None:
            rows.append(f"<tr><td>{name}</td><td colspan=4 class=err>{html.escape(o.error)}</td></tr>")
            continue
        d = o.result["delta"]
        rows.append(f'<tr><td><a href="{html.escape(o.pair.id)}.html">{name}</a></td><td>{o.result["frames"]}</td>'
                    + "".join(f"<td>{d[m]:+.3f}</td>" for m in ("psnr_y", "vmaf_neg", "vmaf")) + "</tr>")
    page = ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>vsfilter batch</title><style>"
            "body{font:15px system-ui,sans-serif;margin:24px}td,th{padding:3px 10px;text-align:right}"
            "td:first-child{text-align:left}.err{color:#c62828;text-align:left}</style></head><body>"
            "<h1>vsfilter batch</h1><table><tr><th>pair</th><th>frames</th><th>PSNR-Y delta</th>"
            f"<th>VMAF NEG delta</th><th>VMAF delta</th></tr>{''.join(rows)}</table></body></html>\n")
    atomic_write_text(path, page)
