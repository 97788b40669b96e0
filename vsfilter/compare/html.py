"""``compare --report OUT.html``: one self-contained page that shows what the filter did, frame by frame.

The page answers at a glance whether the pre-filter restores, games or harms: a verdict line (the
rule of ``verdict.judge``), the summary table (with compare's warnings), per-frame charts of VMAF,
VMAF NEG, PSNR-Y and CAMBI (raw vs prefiltered, the selected frames marked), and for a few selected
frames -- the worst raw VMAF, the largest PSNR-Y gains and the largest PSNR-Y losses -- reference |
distorted | prefiltered side by side, error maps (|distorted - reference|, |prefiltered - reference|,
and where the error shrank or grew) and a 1:1 crop of the region that changed most, each with its
frame number and scores.

Everything is inline (PNG data URIs, SVG charts, CSS); no script, no network. Frames come from the
very clips compare scored. Every number shown carries ``data-key``: its path in compare's JSON.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from .core import CompareResult, Pair
from .formatting import digits, label, metrics_of

__all__ = ["write_report", "select_frames", "render_report", "PAGE_CSS"]

#: Panel width of the overview images (pixels); the crops are shown 1:1 (and at 2x, pixelated).
PANEL_WIDTH = 380
CROP = 128
CHART = {"vmaf": "VMAF", "vmaf_neg": "VMAF NEG", "psnr_y": "PSNR-Y (dB)", "cambi": "CAMBI (banding)"}


def select_frames(result: CompareResult, gains: int = 2, losses: int = 2) -> list[tuple[int, str]]:
    """(index into per_frame, why) for the worst raw VMAF, the largest PSNR-Y gains and losses."""
    rows = result.per_frame
    delta = np.array([r["prefiltered"]["psnr_y"] - r["distorted"]["psnr_y"] for r in rows])
    picks: list[tuple[int, str]] = []

    def add(i: int, why: str) -> None:
        if all(i != j for j, _ in picks):
            picks.append((int(i), why))

    add(int(np.argmin([r["distorted"]["vmaf"] for r in rows])), "worst raw VMAF")
    for i in np.argsort(-delta)[:gains]:
        if delta[i] > 0:
            add(int(i), "largest PSNR-Y gain")
    for i in np.argsort(delta)[:losses]:
        if delta[i] < 0:
            add(int(i), "largest PSNR-Y loss")
    return picks


def write_report(result: CompareResult, pair: Pair, path: Path) -> None:
    """Render the page for ``result`` (frames from ``pair``'s clips) and write it atomically."""
    atomic_write_text(path, render_report(result, pair))


def render_report(result: CompareResult, pair: Pair) -> str:
    picks = select_frames(result)
    frames = [_frame_section(result, pair, i, why) for i, why in picks]
    title = f"{Path(result.distorted).name} vs {Path(result.reference).name}"
    body = "\n".join([
        f'<h1 data-info="title">{_e(title)}</h1>',
        _verdict(result),
        _summary(result),
        "<h2>Per frame</h2>",
        *(_chart(result, metric, [i for i, _ in picks]) for metric in CHART if metric in result.delta),
        "<h2>Selected frames</h2>",
        '<p class="hint">Error maps: brighter = larger error. In <b>change</b>, green is where the pre-filter '
        "brought the picture closer to the reference, red where it moved it away.</p>",
        *frames,
    ])
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{PAGE_CSS}</style></head><body>\n{body}\n</body></html>\n")


# ----------------------------------------------------------------------------------------- pieces


def _e(text: object) -> str:
    return html.escape(str(text))


def _num(key: str, value: float, digits: int, sign: bool = False) -> str:
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return f'<span data-key="{key}" data-digits="{digits}">{text}</span>'


def _verdict(result: CompareResult) -> str:
    verdict = result.judge()
    kind, text = verdict.kind, verdict.text
    parts = " &middot; ".join(f"{_e(label(m))} {_num(f'delta.{m}', result.delta[m], digits(m), True)}"
                              for m in ("psnr_y", "vmaf_neg", "vmaf", "ssim", "cambi") if m in result.delta)
    model = result.model
    return (f'<p class="verdict {kind}"><b>{_e(kind.upper())}</b>: {_e(text)}<br>{parts}</p>'
            f'<p class="meta">{_num("frames", result.frames, 0)} frames; pre-filter '
            f'<span data-info="model">{_e(model["id"])} ({_e(model.get("backend", ""))}, '
            f'{_e(model.get("precision", ""))})</span>; VMAF model <span data-info="vmaf_model">'
            f"{_e(result.vmaf_model)}</span></p>")


def _summary(result: CompareResult) -> str:
    rows = ["<tr><th>metric (mean)</th><th>distorted</th><th>prefiltered</th><th>delta</th></tr>"]
    for metric in metrics_of(result.delta):
        name, n = label(metric), digits(metric)
        a, b = result.pooled["distorted"][metric], result.pooled["prefiltered"][metric]
        cls = "up" if result.delta[metric] > 0 else "down" if result.delta[metric] < 0 else ""
        rows.append(f"<tr><td>{_e(name)}</td><td>{_num(f'pooled.distorted.{metric}', a, n)}</td>"
                    f"<td>{_num(f'pooled.prefiltered.{metric}', b, n)}</td>"
                    f"<td class=\"{cls}\">{_num(f'delta.{metric}', result.delta[metric], n, True)}</td></tr>")
    for name, key in (("VMAF min", "pooled_min"), ("VMAF 5th percentile", "pooled_p5")):
        pooled = getattr(result, key)
        rows.append(f"<tr><td data-info=\"label\">{name}</td>"
                    f"<td>{_num(f'{key}.distorted.vmaf', pooled['distorted']['vmaf'], 3)}</td>"
                    f"<td>{_num(f'{key}.prefiltered.vmaf', pooled['prefiltered']['vmaf'], 3)}</td><td></td></tr>")
    notes = "".join(f'<li class="warning" data-info="warning">warning: {_e(w)}</li>' for w in result.warnings)
    notes += "".join(f'<li data-info="note">note: {_e(n)}</li>' for n in result.notes)
    return f'<table class="summary">{"".join(rows)}</table>' + (f"<ul>{notes}</ul>" if notes else "")


def _chart(result: CompareResult, metric: str, marked: list[int]) -> str:
    """An inline SVG line chart: distorted (grey) and prefiltered (blue), selected frames marked."""
    rows = result.per_frame
    width, height, left, bottom, top = 900, 190, 48, 22, 26
    frames = [r["frame"] for r in rows]
    series = {s: [r[s][metric] for r in rows] for s in ("distorted", "prefiltered")}
    lo = min(min(v) for v in series.values())
    hi = max(max(v) for v in series.values())
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    span = max(1, frames[-1] - frames[0])

    def x(frame: int) -> float:
        return left + (frame - frames[0]) / span * (width - left - 8)

    def y(value: float) -> float:
        return top + (hi - value) / (hi - lo) * (height - bottom - top)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(CHART[metric])}">',
             f'<text x="4" y="14" class="title">{_e(CHART[metric])}</text>']
    for value in (lo, hi):
        parts.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" class="axis" text-anchor="end" '
                     f'data-axis="1">{value:.1f}</text>')
    for i in marked:
        fx = x(frames[i])
        parts.append(f'<line x1="{fx:.1f}" x2="{fx:.1f}" y1="{top}" y2="{height - bottom}" class="mark"/>'
                     f'<text x="{fx + 2:.1f}" y="{height - 6}" class="axis" data-axis="1">{frames[i]}</text>')
    for stream, cls in (("distorted", "dist"), ("prefiltered", "pre")):
        points = " ".join(f"{x(f):.1f},{y(v):.1f}" for f, v in zip(frames, series[stream]))
        parts.append(f'<polyline class="{cls}" points="{points}"/>')
    parts.append(f'<text x="{width - 200}" y="14" class="legend dist">&#9632; distorted</text>'
                 f'<text x="{width - 100}" y="14" class="legend pre">&#9632; prefiltered</text></svg>')
    return "".join(parts)


def _frame_section(result: CompareResult, pair: Pair, index: int, why: str) -> str:
    row = result.per_frame[index]
    n = row["frame"]
    ref, dist, pre = (_luma(clip, n) for clip in (pair.ref, pair.dist, pair.pre))
    err_d = np.abs(dist.astype(np.int32) - ref)
    err_p = np.abs(pre.astype(np.int32) - ref)
    y0, x0 = _busiest(np.abs(pre.astype(np.int32) - dist), CROP)
    scores = " &middot; ".join(
        f"{label(m)} {_num(f'per_frame.{index}.distorted.{m}', row['distorted'][m], digits(m))} &rarr; "
        f"{_num(f'per_frame.{index}.prefiltered.{m}', row['prefiltered'][m], digits(m))}"
        for m in metrics_of(result.delta)) + _told(row, index)
    panels = [("reference", ref), ("distorted", dist), ("prefiltered", pre)]
    maps = [("|distorted &minus; reference|", _error_image(err_d)), ("|prefiltered &minus; reference|",
                                                                      _error_image(err_p)),
            ("change (green: closer, red: further)", _change_image(err_d, err_p))]
    crops = [(name, img[y0:y0 + CROP, x0:x0 + CROP]) for name, img in panels]
    return "".join([
        f'<section class="frame"><h3>frame {_num(f"per_frame.{index}.frame", n, 0)} &mdash; {_e(why)}</h3>',
        f'<p class="scores">{scores}</p>',
        '<div class="row">', *(_figure(name, img, PANEL_WIDTH) for name, img in panels), "</div>",
        '<div class="row">', *(_figure(name, img, PANEL_WIDTH) for name, img in maps), "</div>",
        f'<p class="hint" data-info="crop">1:1 crop at ({x0}, {y0}), {CROP}x{CROP}, where the pre-filter changed '
        "the picture most (shown at 2x, pixelated)</p>",
        '<div class="row">', *(_figure(name, img, None) for name, img in crops), "</div></section>"])


def _told(row: dict, index: int) -> str:
    """What a two-input model was told on the frame (the QP its plane said, and where it came from)."""
    said = row.get("quantizer")
    if not said:
        return ""
    qp = ("unknown" if said.get("qp") is None
          else f"QP {_num(f'per_frame.{index}.quantizer.qp', said['qp'], 1)}")
    network = f", network {_e(said['network'])}" if said.get("network") else ""
    return f" &middot; told {qp} ({_e(str(said.get('source')))}{network})"


def _luma(clip, n: int) -> np.ndarray:
    """Plane 0 of frame ``n`` as coded, brought to 8 bits for display."""
    frame = clip.get_frame(n)
    plane = np.asarray(frame[0])
    bits = clip.format.bits_per_sample
    return (plane >> (bits - 8)).astype(np.uint8) if bits > 8 else plane.copy()


def _busiest(diff: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window with the largest summed ``diff``."""
    h, w = diff.shape
    s = min(size, h, w)
    integral = np.pad(diff.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[s:, s:] - integral[:-s, s:] - integral[s:, :-s] + integral[:-s, :-s]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y), int(x)


def _error_image(err: np.ndarray) -> np.ndarray:
    return np.clip(err * 8, 0, 255).astype(np.uint8)


def _change_image(err_d: np.ndarray, err_p: np.ndarray) -> np.ndarray:
    """RGB: green where the prefiltered error is smaller, red where it is larger, black where equal."""
    gain = err_d - err_p
    rgb = np.zeros((*gain.shape, 3), np.uint8)
    rgb[..., 1] = np.clip(gain * 16, 0, 255)
    rgb[..., 0] = np.clip(-gain * 16, 0, 255)
    return rgb


def _figure(caption: str, image: np.ndarray, width: int | None) -> str:
    h, w = image.shape[:2]
    if width is None or 2 * w <= width:  # crops, and small frames: shown at 2x, pixels kept sharp
        style = f'style="width:{2 * w}px" class="px"'
    else:
        style = f'style="width:{min(width, w)}px"'
    return (f'<figure><img {style} alt="{_e(caption)}" src="data:image/png;base64,{_png(image)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _png(image: np.ndarray) -> str:
    """PNG (FFmpeg's encoder, through PyAV) as base64."""
    import av

    h, w = image.shape[:2]
    fmt = "rgb24" if image.ndim == 3 else "gray"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = w, h, fmt
    data = b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))
    return base64.b64encode(data).decode("ascii")


#: The page style every vsfilter HTML report shares (compare's page, rd's page).
PAGE_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:20px;margin:0 0 8px} h2{font-size:17px;margin:24px 0 8px} h3{font-size:15px;margin:8px 0}
.verdict{font-size:17px;padding:10px 14px;border-radius:6px;margin:8px 0}
.verdict.restores{background:#e3f5e1;border-left:6px solid #2e7d32}
.verdict.games{background:#fff3e0;border-left:6px solid #ef6c00}
.verdict.harms{background:#fde7e7;border-left:6px solid #c62828}
.verdict.neutral{background:#f1f1f1;border-left:6px solid #888}
.meta,.hint{color:#555;font-size:13px}
table.summary{border-collapse:collapse;margin:8px 0} .summary td,.summary th{padding:3px 12px;text-align:right;
border-bottom:1px solid #ddd} .summary td:first-child,.summary th:first-child{text-align:left}
td.up{color:#2e7d32;font-weight:600} td.down{color:#c62828;font-weight:600} li.warning{color:#c62828}
svg.chart{width:100%;max-width:900px;height:auto;display:block;margin:4px 0 10px;background:#fafafa}
svg .dist{stroke:#999;fill:none;stroke-width:1.5} svg .pre{stroke:#1565c0;fill:none;stroke-width:1.5}
svg text{font-size:12px;fill:#444} svg .legend.dist{fill:#999} svg .legend.pre{fill:#1565c0}
svg .mark{stroke:#e65100;stroke-dasharray:4 3} svg .title{font-weight:600}
.frame{border-top:1px solid #ddd;padding-top:6px} .row{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0} figcaption{font-size:12px;color:#555} img{height:auto;display:block}
img.px{image-rendering:pixelated}
"""
