"""``compare``: what does the learned pre-filter do to the scores of a distorted stream?

Decodes the reference and the distorted file with `vsfilter.source`, runs `vmaf_pre` on the distorted
stream, and scores the raw and the prefiltered stream against the reference with libvmaf, both at
once: decoding, filtering and the two libvmaf runs overlap (see ``pipeline``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import vapoursynth as vs

from ..errors import CompareError, RateMismatchError, SizeMismatchError, VsfilterError, cause_of, message_of
from ..filter import vmaf_pre
from ..plan import FilterPlan, plan_filter
from ..reader import source
from ..reader.raw import RawFormat, is_raw_path
from .offset import OffsetCheck, check_offsets
from .options import OFFSET_SEARCH_DEFAULT, CompareOptions
from .pipeline import STREAMS, ScoreRange, score_range
from .scoring import (
    CAMBI_MIN_SIDE,
    Scores,
    cambi_runs,
    check_frame_size,
    check_scoring_size,
    check_vmaf_model,
    pix_fmt_for,
    pool,
)
from .told import silent_reason, told_notes
from .verdict import Verdict, judge
from .vmaf_models import ScoringSpec, resolve_vmaf_models

__all__ = ["CompareError", "CompareOptions", "CompareResult", "RateMismatchError", "SizeMismatchError", "compare",
           "Pair", "open_pair", "score_pair", "pair_record", "result_from_scores", "make_options"]


@dataclass
class CompareResult:
    """Scores of the raw and the prefiltered distorted stream against the reference.

    Attributes:
        reference, distorted: the input paths.
        model: ``{"id", "sha256", "backend", "precision"}`` of the pre-filter.
        vmaf_model: the VMAF model(s) used (``auto`` and ``v1`` resolved; comma-separated when several:
            the first scores ``vmaf``, each other one a metric named after it; ``vmaf_neg`` is always
            vmaf_v0.6.1neg).
        frames: frames scored.
        pooled: ``{stream: {metric: mean}}`` for ``distorted`` and ``prefiltered``.
        pooled_harmonic_mean, pooled_min, pooled_p5: the other poolings, same shape.
        delta: ``{metric: prefiltered mean - distorted mean}``.
        per_frame: one dict per scored frame: ``frame`` (counted from the first frame pair), then
            ``distorted`` and ``prefiltered`` metrics.
        notes: what was done to align the inputs (scaling, trimming, offset).
        warnings: what the user should know (frame count mismatch, shift, enhancement gaming, harm, banding).
        verdict: ``{"kind", "text", "thresholds"}``: restores, games, harms or neutral (see ``verdict``).
        options: the comparison's options (``CompareOptions.describe()``, ``vmaf_model`` and
            ``dist_offset`` as used): what makes a result reusable.
        offset: the offset check (``best`` and PSNR-Y per offset tried), or None when none ran.
        scoring: how libvmaf measured: ``models`` (name, metric, generation, builtin), ``bits`` (the
            precision, None = the inputs' own) and ``cambi_encode`` (VMAF v1's CAMBI encode parameters).
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
    verdict: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    offset: dict | None = None
    scoring: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def judge(self) -> Verdict:
        """The verdict on this result's deltas (the one rule the CLI, the JSON and the report share)."""
        return judge(self.delta, str(self.model.get("id", "")))


@dataclass
class Pair:
    """A reference and the distorted/prefiltered streams, aligned to the reference's size and format
    and to each other in time, ``count`` frames long, with the filter plan, the options as resolved
    (``vmaf_model``, ``dist_offset``: what scoring uses) and as requested (what results record), and
    what was done to align them."""

    reference: str
    distorted: str
    ref: vs.VideoNode
    dist: vs.VideoNode
    pre: vs.VideoNode
    plan: FilterPlan
    count: int
    options: CompareOptions
    requested: CompareOptions
    vmaf: ScoringSpec
    notes: list[str]
    warnings: list[str]
    offset: OffsetCheck | None = None

    def score_range(self, first: int = 0, stop: int | None = None, context: bool = False) -> ScoreRange:
        """What libvmaf scores for frames ``[first, stop)`` of this pair."""
        o = self.options
        return ScoreRange(first, self.count if stop is None else stop, self.vmaf, o.subsample, o.threads, context,
                          o.cambi)


def _python_hint(option: str, value: object) -> str:
    return f"{option}={value!r}"


def compare(reference: str | os.PathLike, distorted: str | os.PathLike, options: CompareOptions | None = None, *,
            progress: Callable[[int, int], None] | None = None, **changes) -> CompareResult:
    """Score ``distorted`` and ``vmaf_pre(distorted)`` against ``reference`` with libvmaf.

    Args:
        reference: the reference video file (a raw ``.yuv`` needs ``reference_raw``).
        distorted: the distorted video file (a raw ``.yuv`` needs ``distorted_raw``).
        options: a :class:`~vsfilter.compare.options.CompareOptions` (default: its defaults).
        progress: called as ``progress(done, total)`` after each frame.
        **changes: any :class:`CompareOptions` field, applied over ``options``: ``model``, ``device``,
            ``precision``, ``vmaf_model``, ``subsample``, ``threads``, ``frames``, ``scale``, ``force``,
            ``tilesize``, ``dist_offset``, ``find_offset``, ``cambi``, ``reference_raw``, ``distorted_raw``.

    Raises:
        CompareError: inputs that cannot be compared (with the reason); ``RateMismatchError`` and
            ``SizeMismatchError`` for the two that ``force`` and ``scale`` allow.
    """
    return score_pair(open_pair(reference, distorted, make_options(options, changes)), progress)


def make_options(options: CompareOptions | None, changes: dict) -> CompareOptions:
    """``options`` (or the defaults) with ``changes``; unknown names are a :class:`CompareError`."""
    options = options or CompareOptions()
    if not changes:
        return options
    unknown = sorted(set(changes) - set(CompareOptions.__dataclass_fields__))
    if unknown:
        raise CompareError(f"unknown compare option(s) {', '.join(unknown)}; the options are "
                           f"{', '.join(CompareOptions.__dataclass_fields__)}")
    return options.with_(**changes)


def score_pair(pair: Pair, progress: Callable[[int, int], None] | None = None) -> CompareResult:
    """Score an opened :class:`Pair` (all its frames) into a :class:`CompareResult`."""
    scores = score_range(pair.ref, pair.dist, pair.pre, pair.score_range(), progress)
    return result_from_scores(pair.reference, pair.distorted, pair_record(pair), scores)


def pair_record(pair: Pair) -> dict:
    """What a result records of its pair besides the scores (``result_from_scores``'s ``record``)."""
    return {"model": pair.plan.describe(), "notes": list(pair.notes), "warnings": list(pair.warnings),
            "vmaf_model": pair.vmaf.name, "scoring": pair.vmaf.describe(), "options": pair.requested.describe(),
            "offset": None if pair.offset is None else pair.offset.to_dict(),
            "silent_quantizer": silent_reason(pair.plan.spec)}


def open_pair(reference, distorted, options: CompareOptions,
              hint: Callable[[str, object], str] = _python_hint) -> Pair:
    """Check the options, plan the filter, open both files and align them (no frame is scored).

    Args:
        reference, distorted: the input paths.
        options: the comparison's options.
        hint: how a message names an option to pass: ``hint("dist_offset", -3)`` gives
            ``dist_offset=-3`` here; the CLI gives its flag.
    """
    try:
        check_vmaf_model(options.vmaf_model)  # names, auto and :phone included; a model file is test-loaded
        plan = plan_filter(options.model, device=options.device, precision=options.precision,
                           threads=options.threads)
    except VsfilterError as exc:
        raise CompareError(str(exc)) from None
    ref, dist = _open_both(reference, distorted, options, quantizer=plan.spec.planes >= 2)
    try:
        check_frame_size(ref.width, ref.height)
    except VsfilterError as exc:
        raise CompareError(f"reference: {exc}") from None
    try:
        vmaf = resolve_vmaf_models(options.vmaf_model, ref.width, ref.height, float(ref.fps),
                                   ref.format.bits_per_sample, options.vmaf_10bit,
                                   encode=(dist.width, dist.height, dist.format.bits_per_sample))
        if ref.format.color_family == vs.YUV:
            check_scoring_size(vmaf, ref.width, ref.height, pix_fmt_for(ref.format, vmaf.bits))
    except VsfilterError as exc:
        raise CompareError(str(exc)) from None
    notes: list[str] = []
    warnings: list[str] = []
    requested = options
    if options.cambi and not cambi_runs(ref.width, ref.height):
        notes.append(f"CAMBI not scored: libvmaf's CAMBI needs a width or a height of at least {CAMBI_MIN_SIDE} "
                     f"pixels (the reference is {ref.width}x{ref.height})")
        options = options.with_(cambi=False)
    _check_rates(ref, dist, options.force, warnings)
    scaled = _needs_scaling(ref, dist, options.scale)
    ref, dist, options, offset = _align_time(ref, dist, options, hint, notes, warnings)
    count = min(ref.num_frames, dist.num_frames)
    if ref.num_frames != dist.num_frames:
        warnings.append(f"frame counts differ (reference {ref.num_frames}, distorted {dist.num_frames}): "
                        f"scoring the first {count}")
    if options.frames is not None:
        count = min(count, options.frames)
    if count == 0:
        raise CompareError("no frames in common to score")
    ref, dist, pre = _filter(ref, dist, plan, options, scaled, notes)
    return Pair(str(reference), str(distorted), ref[:count], dist[:count], pre[:count], plan, count,
                options.with_(vmaf_model=vmaf.name), requested, vmaf, notes, warnings, offset)


def result_from_scores(reference, distorted, record: dict, scores: dict[str, Scores]) -> CompareResult:
    """The :class:`CompareResult` of scored streams (pooled from libvmaf, or from the per-frame values).

    Args:
        reference, distorted: the input paths, as given.
        record: :func:`pair_record` of the pair (model, notes, warnings, vmaf_model, options, offset).
        scores: per stream, libvmaf's scores.
    """
    metrics = list(scores["distorted"].per_frame)
    pooled: dict[str, dict] = {k: {} for k in ("mean", "harmonic_mean", "min", "p5")}
    for stream in STREAMS:
        for k in pooled:
            pooled[k][stream] = {}
        for metric in metrics:
            stats = pool(scores[stream].per_frame[metric])
            libvmaf = scores[stream].pooled
            if libvmaf is not None:  # libvmaf's own means: what the ffmpeg CLI reports
                stats |= {k: float(libvmaf[metric][k]) for k in ("mean", "harmonic_mean")}
            for k in pooled:
                pooled[k][stream][metric] = stats[k]
    delta = {m: pooled["mean"]["prefiltered"][m] - pooled["mean"]["distorted"][m] for m in metrics}
    numbers = scores["distorted"].frame_numbers
    told = scores["prefiltered"].told
    per_frame = [{"frame": n, **{s: {m: scores[s].per_frame[m][i] for m in metrics} for s in STREAMS},
                  **({"quantizer": told[i]} if told else {})} for i, n in enumerate(numbers)]
    said, unknown = told_notes(str(record["model"]["id"]), told, record.get("silent_quantizer"))
    result = CompareResult(str(reference), str(distorted), dict(record["model"]), record["vmaf_model"],
                           len(numbers), pooled["mean"], pooled["harmonic_mean"], pooled["min"], pooled["p5"], delta,
                           per_frame, list(record["notes"]) + said, list(record["warnings"]) + unknown,
                           options=dict(record["options"]), offset=record.get("offset"),
                           scoring=dict(record.get("scoring") or {}))
    add_verdict(result)
    return result


def _open_both(reference, distorted, options: CompareOptions,
               quantizer: bool) -> tuple[vs.VideoNode, vs.VideoNode]:
    """Open both inputs; a raw input without a rate of its own takes the other input's rate. Only the
    distorted stream of a quantizer-conditioned model (``quantizer``) exports the decoder's QPs (which
    costs H.264 its frame threads, ``vsfilter.source``)."""
    roles = (("reference", reference, options.reference_raw), ("distorted", distorted, options.distorted_raw))
    clips: dict[str, vs.VideoNode] = {}
    for role, path, raw in sorted(roles, key=lambda r: r[2] is not None):  # containers first: they know their rate
        if raw is not None:
            other = next(iter(clips.values()), None)
            raw = raw.with_fps(Fraction(other.fps) if other is not None and other.fps > 0 else None)
        elif is_raw_path(path):
            raise CompareError(f"{role}: {path} is raw YUV (it has no header): give its geometry ({role}_raw)")
        clips[role] = _open(path, role, options.threads, raw, quantizer and role == "distorted")
    return clips["reference"], clips["distorted"]


def _align_time(ref, dist, options: CompareOptions, hint, notes: list[str], warnings: list[str]):
    """Apply ``dist_offset`` (or the offset ``find_offset`` finds); warn when another offset fits clearly
    better. Returns (ref, dist, options with the offset used, the check or None)."""
    search = options.find_offset if options.find_offset is not None else OFFSET_SEARCH_DEFAULT
    check = check_offsets(ref, dist, max(search, abs(options.dist_offset))) if search else None
    offset = options.dist_offset
    if options.find_offset is not None and check is not None:
        offset = check.best
        notes.append(f"offset search (+-{search} frames): offset {offset:+d} fits best "
                     f"(PSNR-Y of the first frames {check.psnr_y[offset]:.2f} dB)")
    elif check is not None and check.clearly_better_than(offset):
        here = check.psnr_y.get(offset)
        warnings.append(f"the distorted stream looks shifted: offset {check.best:+d} matches the reference far "
                        f"better than {offset:+d} (PSNR-Y of the first frames {check.psnr_y[check.best]:.2f} vs "
                        f"{'n/a' if here is None else f'{here:.2f}'} dB); pass {hint('dist_offset', check.best)}"
                        f" or {hint('find_offset', search)}")
    if offset > 0:
        dist = dist[offset:]
    elif offset < 0:
        ref = ref[-offset:]
    if offset:
        notes.append(f"distorted frame k{offset:+d} paired with reference frame k (offset {offset:+d})")
    return ref, dist, options.with_(dist_offset=offset), check


def _filter(ref, dist, plan: FilterPlan, options: CompareOptions, scaled: bool, notes: list[str]):
    """(ref, dist, pre) with the pre-filter applied and both distorted streams in the reference's format."""
    try:
        pre = vmaf_pre(dist, model=plan.spec, backend=plan.backend, precision=plan.precision,
                       tilesize=options.tilesize)
    except vs.Error as exc:
        raise CompareError(message_of(exc) or str(exc)) from None
    if options.subsample > 1:  # libvmaf skips the other frames' non-temporal features: do not filter them
        pre = _every_nth(dist, pre, options.subsample)
    return _align(ref, dist, pre, scaled, notes)


def _open(path, role: str, threads: int, raw: RawFormat | None = None, quantizer: bool = True) -> vs.VideoNode:
    try:
        return source(path, threads=threads, raw=raw, quantizer=quantizer)
    except vs.Error as exc:
        cause = cause_of(exc)
        raise CompareError(f"{role}: {cause if cause is not None else exc}") from None


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


def _needs_scaling(ref, dist, scale: bool) -> bool:
    """Whether the distorted stream must be scaled to the reference; refused unless ``scale``."""
    if (dist.width, dist.height) == (ref.width, ref.height):
        return False
    if not scale:
        raise SizeMismatchError(f"sizes differ (reference {ref.width}x{ref.height}, distorted "
                                f"{dist.width}x{dist.height})")
    return True


def _align(ref, dist, pre, scaled: bool, notes: list[str]):
    """Bring both distorted streams to the reference's size and format (libvmaf needs them equal)."""
    if ref.format.color_family == vs.GRAY:
        ref = _gray_to_yuv(ref)
    target = ref.format
    if ref.format.color_family != vs.YUV:
        raise CompareError(f"the reference is {ref.format.name}; compare scores YUV or GRAY video")
    if scaled:
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


def add_verdict(result: CompareResult) -> None:
    """Set ``result.verdict`` and append its warnings (gaming, harm)."""
    verdict = result.judge()
    result.verdict = verdict.to_dict()
    result.warnings.extend(verdict.warnings)
