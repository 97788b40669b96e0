"""``compare``: what does the learned pre-filter do to the scores of a distorted stream?

Decodes the reference and the distorted file with `vsfilter.source`, runs `vmaf_pre` on the distorted
stream, and scores the raw and the prefiltered stream against the reference with libvmaf, both at
once: decoding, filtering and the two libvmaf runs overlap.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Callable

import numpy as np
import vapoursynth as vs

from ..errors import CompareError, ModelError, VmafError
from ..filter import vmaf_pre
from ..models import resolve_model
from ..pyav_source import source
from .scoring import METRICS, Scores, VmafScorer, check_vmaf_model, pix_fmt_for, vs_to_av

__all__ = ["CompareError", "CompareResult", "compare"]

STREAMS = ("distorted", "prefiltered")


@dataclass
class CompareResult:
    """Scores of the raw and the prefiltered distorted stream against the reference.

    Attributes:
        reference, distorted: the input paths.
        model: ``{"id", "sha256", "backend", "precision"}`` of the pre-filter.
        vmaf_model: the VMAF model used for ``vmaf`` (``vmaf_neg`` is always vmaf_v0.6.1neg).
        frames: frames scored.
        pooled: ``{stream: {metric: mean}}`` for ``distorted`` and ``prefiltered``.
        pooled_harmonic_mean, pooled_min, pooled_p5: the other poolings, same shape.
        delta: ``{metric: prefiltered mean - distorted mean}``.
        per_frame: one dict per scored frame: ``frame``, then ``distorted`` and ``prefiltered`` metrics.
        notes: what was done to align the inputs (scaling, trimming).
        warnings: what the user should know (frame count mismatch, enhancement gaming).
    """

    reference: str
    distorted: str
    model: dict
    vmaf_model: str
    frames: int
    pooled: dict
    pooled_harmonic_mean: dict
    pooled_min: dict
    pooled_p5: dict
    delta: dict
    per_frame: list[dict]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def compare(reference: str | os.PathLike, distorted: str | os.PathLike, *, model: str = "learned_filter_v1",
            device: str = "auto", precision: str = "fp32", vmaf_model: str = "vmaf_v0.6.1", subsample: int = 1,
            threads: int = 0, frames: int | None = None, scale: bool = True, force: bool = False,
            progress: Callable[[int, int], None] | None = None) -> CompareResult:
    """Score ``distorted`` and ``vmaf_pre(distorted)`` against ``reference`` with libvmaf.

    Args:
        reference: the reference video file.
        distorted: the distorted video file.
        model: the pre-filter (registry id or .onnx path).
        device: `vmaf_pre` device.
        precision: `vmaf_pre` precision.
        vmaf_model: ``vmaf_v0.6.1``, ``vmaf_4k_v0.6.1``, ... or a path to a libvmaf model file.
        subsample: score every n-th frame.
        threads: libvmaf threads per run and `vmaf_pre` threads; 0 = automatic.
        frames: score at most this many frames.
        scale: scale a distorted stream of another size to the reference size (bicubic); False = error.
        force: compare frame by frame even when the frame rates differ.
        progress: called as ``progress(done, total)`` after each frame.

    Raises:
        CompareError: inputs that cannot be compared (with the reason).
    """
    if subsample < 1 or threads < 0 or (frames is not None and frames < 1):
        raise CompareError("--subsample and --frames must be >= 1, --threads >= 0")
    try:
        check_vmaf_model(vmaf_model)
        spec = resolve_model(model)
    except (VmafError, ModelError) as exc:
        raise CompareError(str(exc)) from None
    ref, dist = _open(reference, "reference"), _open(distorted, "distorted")
    notes: list[str] = []
    warnings: list[str] = []
    _check_rates(ref, dist, force, warnings)
    count = min(ref.num_frames, dist.num_frames)
    if ref.num_frames != dist.num_frames:
        warnings.append(f"frame counts differ (reference {ref.num_frames}, distorted {dist.num_frames}): "
                        f"scoring the first {count}")
    if frames is not None:
        count = min(count, frames)
    if count == 0:
        raise CompareError("no frames in common to score")
    try:
        pre = vmaf_pre(dist, model=model, device=device, precision=precision, threads=threads)
    except vs.Error as exc:
        raise CompareError(str(exc)) from None
    ref, dist, pre = _align(ref, dist, pre, scale, notes)
    ref, dist, pre = ref[:count], dist[:count], pre[:count]
    model_info = {"id": spec.id, "sha256": spec.sha256}
    props = pre.get_frame(0).props
    model_info |= {"backend": props["VmafPreBackend"], "precision": props["VmafPrePrecision"]}

    scores = _score(ref, dist, pre, vmaf_model, subsample, threads, progress)
    result = _result(reference, distorted, model_info, vmaf_model, scores, notes, warnings)
    _warn_gaming(result)
    return result


def _open(path, role: str) -> vs.VideoNode:
    try:
        return source(path)
    except vs.Error as exc:
        raise CompareError(f"{role}: {str(exc).removeprefix('source: ')}") from None


def _check_rates(ref: vs.VideoNode, dist: vs.VideoNode, force: bool, warnings: list[str]) -> None:
    if ref.fps == dist.fps:
        return
    msg = f"frame rates differ (reference {ref.fps}, distorted {dist.fps})"
    if not force:
        raise CompareError(f"{msg}; pass --force to compare frame by frame anyway")
    warnings.append(f"{msg}: compared frame by frame (--force)")


def _align(ref, dist, pre, scale: bool, notes: list[str]):
    """Bring both distorted streams to the reference's size and format (libvmaf needs them equal)."""
    if ref.format.color_family == vs.GRAY:
        ref = _gray_to_yuv(ref)
    target = ref.format
    if ref.format.color_family != vs.YUV:
        raise CompareError(f"the reference is {ref.format.name}; compare scores YUV or GRAY video")
    if (dist.width, dist.height) != (ref.width, ref.height):
        if not scale:
            raise CompareError(f"sizes differ (reference {ref.width}x{ref.height}, distorted "
                               f"{dist.width}x{dist.height}); drop --no-scale to scale the distorted stream")
        notes.append(f"distorted {dist.width}x{dist.height} scaled to {ref.width}x{ref.height} (bicubic), "
                     "after the pre-filter")
    out = []
    for clip in (dist, pre):
        if clip.format.color_family == vs.GRAY:
            clip = _gray_to_yuv(clip)
        if (clip.width, clip.height, clip.format.id) != (ref.width, ref.height, target.id):
            clip = clip.resize.Bicubic(ref.width, ref.height, format=target.id)
        out.append(clip)
    if dist.format.id != target.id and dist.format.color_family != vs.GRAY:
        notes.append(f"distorted {dist.format.name} converted to {target.name}")
    return ref, out[0], out[1]


def _gray_to_yuv(clip: vs.VideoNode) -> vs.VideoNode:
    fmt = clip.format
    w, h = clip.width, clip.height
    if w % 2 or h % 2:
        raise CompareError(f"a GRAY clip of odd size {w}x{h} cannot be scored as 4:2:0")
    mid = 1 << (fmt.bits_per_sample - 1)
    chroma = vs.core.std.BlankClip(clip, width=w // 2, height=h // 2, color=mid)
    return vs.core.std.ShufflePlanes([clip, chroma, chroma], [0, 0, 0], vs.YUV)


def _score(ref, dist, pre, vmaf_model, subsample, threads, progress) -> dict[str, Scores]:
    """Feed both libvmaf graphs from one pass over the clips; each graph runs in its own thread."""
    pix_fmt = pix_fmt_for(ref.format)
    time_base = Fraction(1, 1000)
    vmaf_threads = threads or max(1, (os.cpu_count() or 2) // 2)
    try:
        scorers = {s: VmafScorer(ref.width, ref.height, pix_fmt, time_base, vmaf_model, subsample, vmaf_threads)
                   for s in STREAMS}
    except VmafError as exc:
        raise CompareError(str(exc)) from None
    queues = {s: queue.Queue(maxsize=8) for s in STREAMS}
    results: dict[str, Scores] = {}
    errors: list[BaseException] = []

    def worker(stream: str) -> None:
        scorer, q = scorers[stream], queues[stream]
        try:
            while (item := q.get()) is not None:
                scorer.push(*item)
            results[stream] = scorer.close()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
            while q.get() is not None:  # keep the producer from blocking
                pass

    threads_ = [threading.Thread(target=worker, args=(s,), daemon=True) for s in STREAMS]
    for t in threads_:
        t.start()
    total = ref.num_frames
    try:
        for n, (r, d, p) in enumerate(zip(ref.frames(close=True), dist.frames(close=True), pre.frames(close=True))):
            ts = n * 40
            ref_av = vs_to_av(r, pix_fmt, ts, time_base)
            queues["distorted"].put((vs_to_av(d, pix_fmt, ts, time_base), ref_av))
            queues["prefiltered"].put((vs_to_av(p, pix_fmt, ts, time_base), ref_av))
            if errors:
                break
            if progress:
                progress(n + 1, total)
    except vs.Error as exc:
        errors.append(CompareError(str(exc).strip().splitlines()[-1]))
    finally:
        for q in queues.values():
            q.put(None)
        for t in threads_:
            t.join()
    if errors:
        exc = errors[0]
        raise exc if isinstance(exc, CompareError) else CompareError(f"scoring failed: {exc}") from None
    return results


def _pool(scores: Scores, metric: str) -> dict[str, float]:
    """libvmaf's own mean and harmonic mean (what the ffmpeg CLI reports), plus the minimum and 5th
    percentile of the per-frame values."""
    values = np.asarray(scores.per_frame[metric], dtype=np.float64)
    return {"mean": float(scores.pooled[metric]["mean"]),
            "harmonic_mean": float(scores.pooled[metric]["harmonic_mean"]),
            "min": float(values.min()), "p5": float(np.percentile(values, 5))}


def _result(reference, distorted, model_info, vmaf_model, scores: dict[str, Scores], notes, warnings):
    pooled = {k: {} for k in ("mean", "harmonic_mean", "min", "p5")}
    for stream in STREAMS:
        for k in pooled:
            pooled[k][stream] = {}
        for metric in METRICS:
            stats = _pool(scores[stream], metric)
            for k in pooled:
                pooled[k][stream][metric] = stats[k]
    delta = {m: pooled["mean"]["prefiltered"][m] - pooled["mean"]["distorted"][m] for m in METRICS}
    numbers = scores["distorted"].frame_numbers
    per_frame = [{"frame": n, **{s: {m: scores[s].per_frame[m][i] for m in METRICS} for s in STREAMS}}
                 for i, n in enumerate(numbers)]
    return CompareResult(str(reference), str(distorted), model_info, vmaf_model, len(numbers), pooled["mean"],
                         pooled["harmonic_mean"], pooled["min"], pooled["p5"], delta, per_frame, notes, warnings)


def _warn_gaming(result: CompareResult) -> None:
    d = result.delta
    if d["vmaf"] > 0 and (d["psnr_y"] < 0 or d["vmaf_neg"] < 0):
        fell = " and ".join(n for n, k in (("PSNR-Y", "psnr_y"), ("VMAF NEG", "vmaf_neg")) if d[k] < 0)
        result.warnings.append(f"VMAF rises ({d['vmaf']:+.2f}) while {fell} falls: the gain may be enhancement "
                               "gaming rather than real fidelity")
