"""Presenting an :class:`~vsfilter.rd.core.RdResult`: the terminal table, JSON, CSV, the RD plot (PNG or
SVG: quality against bitrate on a log axis, the raw and prefiltered curve of each ladder, one panel per
metric) and the HTML page (compare's page design: the BD tables, the curves, every encode). Files are
written atomically."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from ..atomic import atomic_open, atomic_write_text
from ..compare.formatting import digits, label
from ..errors import RdError
from .core import RdResult

__all__ = ["table", "write", "write_json", "write_csv", "write_plot", "render_html"]

_STREAMS = ("distorted", "prefiltered")


def _bd_rows(result: RdResult) -> list[tuple[str, dict, dict]]:
    """(what is compared, BD-rate per metric, BD-quality per metric) rows."""
    names = {lad.role: lad.name for lad in result.ladders}
    rows = [(f"prefiltered vs distorted ({names['encode']})", result.bd_rate["prefiltered_vs_distorted"],
             result.bd_quality["prefiltered_vs_distorted"])]
    if "vs_against" in result.bd_rate:
        for stream in _STREAMS:
            rows.append((f"{names['encode']} vs {names['against']} ({stream})", result.bd_rate["vs_against"][stream],
                         result.bd_quality["vs_against"][stream]))
    return rows


def table(result: RdResult) -> str:
    """Every encode's rate and mean scores, then the BD-rate (and BD-quality) of each comparison."""
    lines = [f"{len(result.encodes)} encodes of {Path(result.reference).name}; pre-filter {result.model['id']} "
             f"({result.model['backend']}, {result.model['precision']}); VMAF model {result.vmaf_model}"]
    head = ["ladder", "encode", "kbps"] + [f"{label(m)} raw/pre" for m in result.metrics]
    body = [[e["ladder"], Path(e["path"]).name, f"{e['bitrate_kbps']:.1f}"]
            + [f"{e['pooled']['distorted'][m]:.{digits(m)}f}/{e['pooled']['prefiltered'][m]:.{digits(m)}f}"
               for m in result.metrics] for e in result.encodes]
    lines += _grid([head, *body])
    lines.append("")
    head = ["BD-rate % (BD-quality)"] + [label(m) for m in result.metrics]
    body = [[what] + [f"{rate[m]:+.2f}% ({quality[m]:+.{digits(m)}f})" for m in result.metrics]
            for what, rate, quality in _bd_rows(result)]
    lines += _grid([head, *body])
    lines.append("BD-rate < 0: fewer bits for the same quality.")
    return "\n".join(lines + [f"warning: {w}" for w in result.warnings])


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows]
    out.insert(1, "-" * len(out[0]))
    return out


def write(flag: str, result: RdResult, path: Path) -> None:
    """Write ``result`` in the format of ``--json``, ``--csv``, ``--plot`` or ``--report``."""
    {"--json": write_json, "--csv": write_csv, "--plot": write_plot, "--report": write_html}[flag](result, path)


def write_json(result: RdResult, path: Path) -> None:
    atomic_write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")


def write_csv(result: RdResult, path: Path) -> None:
    """One row per encode: ladder, path, bitrate, frames, then each metric raw and prefiltered."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["ladder", "path", "bitrate_kbps", "frames"]
                    + [f"{s}_{m}" for m in result.metrics for s in _STREAMS])
    for e in result.encodes:
        writer.writerow([e["ladder"], e["path"], f"{e['bitrate_kbps']:.6f}", e["frames"]]
                        + [f"{e['pooled'][s][m]:.6f}" for m in result.metrics for s in _STREAMS])
    atomic_write_text(path, buf.getvalue())


def _figure(result: RdResult):
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        raise RdError("an RD plot needs matplotlib: pip install 'vsfilter[plot]'") from None
    count = len(result.metrics)
    cols = min(count, 3)
    rows = -(-count // cols)
    fig = Figure(figsize=(4.6 * cols, 3.6 * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colors = {"encode": "tab:blue", "against": "tab:orange"}
    names = {lad.role: lad.name for lad in result.ladders}
    for ax, metric in zip(axes, result.metrics):
        for role in names:
            for stream, style in zip(_STREAMS, ("-", "--")):
                points = result.curve(role, stream, metric)
                ax.plot([r for r, _ in points], [q for _, q in points], style, marker="o", ms=3,
                        color=colors[role], label=f"{names[role]} {stream}")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("bitrate (kbps)")
        ax.set_title(label(metric), fontsize=10)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[count:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{Path(result.reference).name}: pre-filter {result.model['id']}", fontsize=11)
    fig.tight_layout()
    return fig


def write_plot(result: RdResult, path: Path) -> None:
    """The RD curves as PNG, or SVG when ``path`` ends in ``.svg``."""
    fig = _figure(result)
    kind = "svg" if path.suffix.lower() == ".svg" else "png"
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=kind)


def write_html(result: RdResult, path: Path) -> None:
    atomic_write_text(path, render_html(result))


def render_html(result: RdResult) -> str:
    """A self-contained page: the BD tables, the RD curves (inline SVG) and every encode."""
    from ..compare.html import PAGE_CSS

    e = html.escape
    title = f"Rate-distortion: {Path(result.reference).name}"
    bd = ["<tr><th>BD-rate (BD-quality)</th>" + "".join(f"<th>{e(label(m))}</th>" for m in result.metrics)
          + "</tr>"]
    for what, rate, quality in _bd_rows(result):
        cells = "".join(f'<td class="{"up" if rate[m] < 0 else "down" if rate[m] > 0 else ""}">'
                        f"{rate[m]:+.2f}% ({quality[m]:+.{digits(m)}f})</td>" for m in result.metrics)
        bd.append(f"<tr><td>{e(what)}</td>{cells}</tr>")
    enc = ["<tr><th>ladder</th><th>encode</th><th>kbps</th>"
           + "".join(f"<th>{e(label(m))} raw &rarr; pre</th>" for m in result.metrics) + "<th>verdict</th></tr>"]
    for row in result.encodes:
        cells = "".join(f"<td>{row['pooled']['distorted'][m]:.{digits(m)}f} &rarr; "
                        f"{row['pooled']['prefiltered'][m]:.{digits(m)}f}</td>" for m in result.metrics)
        enc.append(f"<tr><td>{e(row['ladder'])}</td><td>{e(Path(row['path']).name)}</td>"
                   f"<td>{row['bitrate_kbps']:.1f}</td>{cells}<td>{e(row['verdict'].get('kind', ''))}</td></tr>")
    svg = io.StringIO()
    _figure(result).savefig(svg, format="svg")
    plot = svg.getvalue()
    plot = plot[plot.index("<svg"):]
    model = result.model
    body = "\n".join([
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">pre-filter {e(model["id"])} ({e(model.get("backend", ""))}, '
        f'{e(model.get("precision", ""))}); VMAF model {e(result.vmaf_model)}; BD-rate &lt; 0: fewer bits for '
        "the same quality (piecewise cubic, as Netflix's JCTVC-E137-validated calculator)</p>",
        "<h2>BD-rate</h2>", f'<table class="summary">{"".join(bd)}</table>',
        "<h2>Rate-distortion curves</h2>", f'<div class="rd" style="max-width:100%;overflow-x:auto">{plot}</div>',
        "<h2>Encodes</h2>", f'<table class="summary">{"".join(enc)}</table>',
        *(f'<p class="hint">warning: {e(w)}</p>' for w in result.warnings),
    ])
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{PAGE_CSS}</style></head><body>\n{body}\n</body></html>\n")
