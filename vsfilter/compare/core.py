"""``compare``: what does the learned pre-filter do to the scores of a distorted stream?

Decodes the reference and the distorted file with `vsfilter.source`, runs `vmaf_pre` on the distorted
stream, and scores the raw and the prefiltered stream against the reference with libvmaf, both at
once: decoding, filtering and the two libvmaf runs overlap (see ``pipeline``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import vapoursynth as vs

from ..errors import CompareError, VsfilterError
from ..filter import vmaf_pre
from ..plan import FilterPlan, plan_filter
from ..pyav_source import source
from .pipeline import STREAMS, ScoreRange, score_range
from .scoring import METRICS, Scores, check_frame_size, check_vmaf_model, pool

__all__ = ["CompareError", "CompareResult", "RateMismatchError", "SizeMismatchError", "compare", "Pair",
           "open_pair", "result_from_scores"]


class _Refusal(CompareError):
    """A comparison refused until an option allows it; ``reason`` is the message without the option."""

    option = ""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}; {self.option}")


class RateMismatchError(_Refusal):
    """The frame rates differ and ``force`` was not set."""

    option = "force=True compares frame by frame anyway"


class SizeMismatchError(_Refusal):
    """The sizes differ and ``scale`` was off."""

    option = "scale=True scales the distorted stream to the reference"


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


@dataclass
class Pair:
    """A reference and the distorted/prefiltered streams, aligned to the reference's size and format,
    ``count`` frames long, with the filter plan and what was done to align them."""

    ref: vs.VideoNode
    dist: vs.VideoNode
    pre: vs.VideoNode
    plan: FilterPlan
    count: int
    notes: list[str]
    warnings: list[str]


def compare(reference: str | os.PathLike, distorted: str | os.PathLike, *, model: str = "learned_filter_v1",
            device: str = "auto", precision: str = "fp32", vmaf_model: str = "vmaf_v0.6.1", subsample: int = 1,
            threads: int = 0, frames: int | None = None, scale: bool = True, force: bool = False,
            tilesize: int | None = None, progress: Callable[[int, int], None] | None = None) -> CompareResult:
    """Score ``distorted`` and ``vmaf_pre(distorted)`` against ``reference`` with libvmaf.

    Args:
        reference: the reference video file.
        distorted: the distorted video file.
        model: the pre-filter (registry id or .onnx path).
        device: `vmaf_pre` device.
        precision: `vmaf_pre` precision.
        vmaf_model: ``vmaf_v0.6.1``, ``vmaf_4k_v0.6.1``, ... or a path to a libvmaf model file.
        subsample: score every n-th frame; only those frames go through the pre-filter.
        threads: libvmaf threads per run and `vmaf_pre` threads; 0 = automatic.
        frames: score at most this many frames.
        scale: scale a distorted stream of another size to the reference size (bicubic); False = error.
        force: compare frame by frame even when the frame rates differ.
        tilesize: `vmaf_pre` tilesize (None = automatic, 0 = whole frames).
        progress: called as ``progress(done, total)`` after each frame.

    Raises:
        CompareError: inputs that cannot be compared (with the reason); ``RateMismatchError`` and
            ``SizeMismatchError`` for the two that ``force`` and ``scale`` allow.
    """
    pair = open_pair(reference, distorted, model=model, device=device, precision=precision, vmaf_model=vmaf_model,
                     subsample=subsample, threads=threads, frames=frames, scale=scale, force=force, tilesize=tilesize)
    rng = ScoreRange(0, pair.count, vmaf_model, subsample, threads)
    scores = score_range(pair.ref, pair.dist, pair.pre, rng, progress)
    return result_from_scores(reference, distorted, pair.plan.describe(), pair.notes, pair.warnings, vmaf_model,
                              scores)


def open_pair(reference, distorted, *, model="learned_filter_v1", device="auto", precision="fp32",
              vmaf_model="vmaf_v0.6.1", subsample=1, threads=0, frames=None, scale=True, force=False,
              tilesize=None) -> Pair:
    """Check the options, plan the filter, open both files and align them (no frame is scored)."""
    if not isinstance(subsample, int) or subsample < 1:
        raise CompareError(f"subsample must be >= 1, got {subsample!r}")
    if not isinstance(threads, int) or threads < 0:
        raise CompareError(f"threads must be >= 0, got {threads!r}")
    if frames is not None and (not isinstance(frames, int) or frames < 1):
        raise CompareError(f"frames must be >= 1, got {frames!r}")
    try:
        check_vmaf_model(vmaf_model)
        plan = plan_filter(model, device=device, precision=precision, threads=threads)
    except VsfilterError as exc:
        raise CompareError(str(exc)) from None
    ref, dist = _open(reference, "reference", threads), _open(distorted, "distorted", threads)
    try:
        check_frame_size(ref.width, ref.height)
    except VsfilterError as exc:
        raise CompareError(f"reference: {exc}") from None
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
        pre = vmaf_pre(dist, model=plan.spec, backend=plan.backend, precision=plan.precision, tilesize=tilesize)
    except vs.Error as exc:
        raise CompareError(str(exc)) from None
    if subsample > 1:  # libvmaf skips the other frames' non-temporal features: do not filter them
        pre = _every_nth(dist, pre, subsample)
    ref, dist, pre = _align(ref, dist, pre, scale, notes)
    return Pair(ref[:count], dist[:count], pre[:count], plan, count, notes, warnings)


def result_from_scores(reference, distorted, model_info: dict, notes: list[str], warnings: list[str],
                       vmaf_model: str, scores: dict[str, Scores]) -> CompareResult:
    """The :class:`CompareResult` of scored streams (pooled from libvmaf, or from the per-frame values).

    Args:
        reference, distorted: the input paths, as given.
        model_info: the filter plan's ``describe()``.
        notes, warnings: what aligning the inputs found.
        vmaf_model: the VMAF model used.
        scores: per stream, libvmaf's scores.
    """
    pooled: dict[str, dict] = {k: {} for k in ("mean", "harmonic_mean", "min", "p5")}
    for stream in STREAMS:
        for k in pooled:
            pooled[k][stream] = {}
        for metric in METRICS:
            stats = pool(scores[stream].per_frame[metric])
            libvmaf = scores[stream].pooled
            if libvmaf is not None:  # libvmaf's own means: what the ffmpeg CLI reports
                stats |= {k: float(libvmaf[metric][k]) for k in ("mean", "harmonic_mean")}
            for k in pooled:
                pooled[k][stream][metric] = stats[k]
    delta = {m: pooled["mean"]["prefiltered"][m] - pooled["mean"]["distorted"][m] for m in METRICS}
    numbers = scores["distorted"].frame_numbers
    per_frame = [{"frame": n, **{s: {m: scores[s].per_frame[m][i] for m in METRICS} for s in STREAMS}}
                 for i, n in enumerate(numbers)]
    result = CompareResult(str(reference), str(distorted), dict(model_info), vmaf_model, len(numbers),
                           pooled["mean"], pooled["harmonic_mean"], pooled["min"], pooled["p5"], delta, per_frame,
                           list(notes), list(warnings))
    _warn_gaming(result)
    return result


def _open(path, role: str, threads: int) -> vs.VideoNode:
    try:
        return source(path, threads=threads)
    except vs.Error as exc:
        raise CompareError(f"{role}: {str(exc).removeprefix('source: ')}") from None


def _every_nth(dist: vs.VideoNode, pre: vs.VideoNode, step: int) -> vs.VideoNode:
    """``pre`` on frames that are multiples of ``step``, ``dist`` elsewhere (those are never scored)."""
    return dist.std.FrameEval(lambda n: pre if n % step == 0 else dist)


def _check_rates(ref: vs.VideoNode, dist: vs.VideoNode, force: bool, warnings: list[str]) -> None:
    if ref.fps == dist.fps:
        return
    msg = f"frame rates differ (reference {ref.fps}, distorted {dist.fps})"
    if not force:
        raise RateMismatchError(msg)
    warnings.append(f"{msg}: compared frame by frame (forced)")


def _align(ref, dist, pre, scale: bool, notes: list[str]):
    """Bring both distorted streams to the reference's size and format (libvmaf needs them equal)."""
    if ref.format.color_family == vs.GRAY:
        ref = _gray_to_yuv(ref)
    target = ref.format
    if ref.format.color_family != vs.YUV:
        raise CompareError(f"the reference is {ref.format.name}; compare scores YUV or GRAY video")
    if (dist.width, dist.height) != (ref.width, ref.height):
        if not scale:
            raise SizeMismatchError(f"sizes differ (reference {ref.width}x{ref.height}, distorted "
                                    f"{dist.width}x{dist.height})")
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
    """GRAY as 4:4:4 with neutral chroma (libvmaf scores luma; 4:4:4 takes any size, odd ones too)."""
    mid = 1 << (clip.format.bits_per_sample - 1)
    chroma = vs.core.std.BlankClip(clip, color=mid)
    return vs.core.std.ShufflePlanes([clip, chroma, chroma], [0, 0, 0], vs.YUV)


def _warn_gaming(result: CompareResult) -> None:
    d = result.delta
    if d["vmaf"] > 0 and (d["psnr_y"] < 0 or d["vmaf_neg"] < 0):
        fell = " and ".join(n for n, k in (("PSNR-Y", "psnr_y"), ("VMAF NEG", "vmaf_neg")) if d[k] < 0)
        result.warnings.append(f"VMAF rises ({d['vmaf']:+.2f}) while {fell} falls: the gain may be enhancement "
                               "gaming rather than real fidelity")
