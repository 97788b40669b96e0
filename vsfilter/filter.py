"""``vmaf_pre``: run a learned single-plane ONNX filter on the luma of every frame of a clip."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import vapoursynth as vs

from .backends import Backend, Runner
from .backends.base import sample_converters
from .errors import FrameError, ModelError, OptionError, VsfilterError, vs_error
from .models import ModelSpec
from .plan import FilterPlan, plan_filter
from .qp_estimator import QuantizerEstimator, load_estimator
from .quantizer import QuantizerPlane, frame_plane, prop_text
from .tiling import even_tile, filter_tiled, normalize_pair

__all__ = ["vmaf_pre", "told_on", "AUTO_TILE_PIXELS", "AUTO_TILE_SIZE", "TOLD_PROPS"]

#: Frame props written on every output frame.
PROP_MODEL = "VmafPreModel"
PROP_SHA = "VmafPreSha256"
PROP_BACKEND = "VmafPreBackend"
PROP_PRECISION = "VmafPrePrecision"
#: On a gated model's frames: 1 when the network ran, 0 when the frame passed unchanged; and the gate's
#: probability that the frame is a poor encode the network restores.
PROP_APPLIED = "VmafPreApplied"
PROP_GATE = "VmafPreGate"
#: On a two-input model's frames: the mean H.264-equivalent QP its quantizer plane said (-1 = unknown)
#: and where that came from (``vsfilter.quantizer.QP_SOURCES``: bitstream, estimate, given, unknown).
PROP_QP = "VmafPreQP"
PROP_QP_SOURCE = "VmafPreQPSource"
#: On the frames of a model with per-codec specialists: the registry id of the network that ran.
PROP_NETWORK = "VmafPreNetwork"
#: What a two-input model was told on a frame, as compare reports it per scored frame: report key -> prop.
TOLD_PROPS = {"qp": PROP_QP, "source": PROP_QP_SOURCE, "network": PROP_NETWORK}

#: On CPU backends, planes larger than this are tiled by default. The model keeps ~16 float32
#: channels of a few live tensors per pixel (~250 B/px measured: 3840x2160 untiled peaked at 2.3-2.9 GB
#: RSS, 7680x4320 at 9 GB), so 1080p planes (~0.5 GB) run whole and anything larger in tiles of at most
#: AUTO_TILE_SIZE a side, split evenly (`even_tile`) so little context is computed twice. With the
#: default overlap the output is the same bit for bit. Measured (AMD EPYC, ORT, 4 frames, bench/memory.py
#: has the compare figures): 7680x4320 0.140 fps and 0.49 GB RSS in tiles vs 0.112 fps and 9.0 GB whole;
#: 3840x2160 0.55 fps and 0.24 GB vs 0.57 fps and 2.3 GB. Tiles of at most 768 or 1024 were no faster
#: (0.144/0.145 fps at 8K) and cost more memory (0.56/0.65 GB).
AUTO_TILE_PIXELS = 1920 * 1088
AUTO_TILE_SIZE = 512


def vmaf_pre(
    clip: vs.VideoNode,
    model: str | os.PathLike | ModelSpec = "learned_filter_v1",
    device: str = "auto",
    threads: int = 0,
    chroma: bool = False,
    tilesize: int | Sequence[int] | None = None,
    overlap: int | Sequence[int] | None = None,
    precision: str = "fp32",
    num_streams: int | None = None,
    tile_batch: int = 1,
    backend: Backend | None = None,
    quantizer: float | str | None = None,
) -> vs.VideoNode:
    """Filter the luma (and optionally chroma) of ``clip`` with a learned ONNX filter.

    The VapourSynth counterpart of the ``vmaf_pre`` ffmpeg filter: integer samples are normalised by
    ``(1 << bits) - 1`` (no range stretch), run through the model, rounded and clamped back; float
    samples pass as they are. Format, size, length, frame rate and frame props are kept, chroma is
    copied bit-exact unless ``chroma=True``, and each frame gets the props ``VmafPreModel``,
    ``VmafPreSha256``, ``VmafPreBackend`` and ``VmafPrePrecision``. A gated model (a registry row with
    a ``gate``, see ``vsfilter.gate``) runs its network only on the frames its gate judges to be poor
    encodes and passes the others unchanged (props ``VmafPreApplied`` 0/1 and ``VmafPreGate``). A
    two-input model (``[N,2,H,W]``: learned_filter_codec_v3) is fed each frame's quantizer plane besides
    the luma, built from the QP props :func:`vsfilter.source` sets where the decoder exports them
    (H.264, MPEG-2, VP9; ``vsfilter.quantizer``), else from its registry row's learned estimate of the
    frame's QP (``vsfilter.qp_estimator``: HEVC, AV1, raw video, clips of other source filters), else
    the model's "unknown" value; chroma planes get the luma's plane subsampled. Its frames get
    ``VmafPreQP`` (the mean H.264-equivalent QP fed, -1 unknown) and ``VmafPreQPSource``
    (``bitstream``, ``estimate``, ``given`` or ``unknown``). A model with per-codec specialists
    (``ModelSpec.specialists``) runs a specialist's weights on the frames whose plane was read from, or
    estimated for, a stream of that codec, and its own on every other frame (a QP given, "unknown");
    ``VmafPreNetwork`` names the network that ran. A temporal model (``[N,6,H,W]``,
    ``vsfilter.models.INPUT_LAYOUTS``) is fed the previous and next frame's samples and quantizer
    planes too (the first and last frame stand in for their missing neighbour).

    Args:
        clip: GRAY or YUV clip, 8-16 bit integer or 16/32 bit float, constant format and size.
        model: a registry id (``"learned_filter_v1"``, ``"learned_filter_codec_v1"``,
            ``"learned_filter_codec_v2"``), a path to an
            ``.onnx`` file with one input ``[N,1,H,W]`` and one output of the same shape, or a
            resolved ``ModelSpec``.
        device: ``"auto"`` (CUDA, then OpenVINO, then CPU, whichever is installed), ``"cpu"`` (ONNX
            Runtime), ``"cuda"`` (PyTorch, else onnxruntime-gpu) or ``"openvino"``; ignored when
            ``backend`` is given.
        threads: intra-op threads per inference session; 0 = automatic.
        chroma: also filter each chroma plane (the model is a luma model: off by default).
        tilesize: tile size, an int or ``[width, height]``, context included (as vs-mlrt); None =
            automatic (CPU backends tile planes larger than 1920x1088 in even tiles of at most 512 px,
            bit-identical);
            0 = never tile.
        overlap: context pixels on each inner tile side, an int or ``[width, height]``; None = the
            model's receptive radius, which makes tiled output bit-identical to untiled output.
        precision: ``"fp32"``, ``"tf32"``/``"fp16"`` (CUDA), ``"bf16"`` (OpenVINO on AMX/AVX-512 BF16
            CPUs, or CUDA), ``"int8"`` (the model's static INT8 sidecar) or ``"auto"`` (the backend's
            fastest accurate one).
        num_streams: sessions / infer requests / CUDA streams running frames concurrently.
        tile_batch: tiles sent to the model per call when tiling.
        backend: a backend dataclass (``ORT_CPU(...)``, ``ORT_CUDA(...)``, ``TORCH_CUDA(...)``,
            ``OpenVINO(...)``) instead of ``device``/``threads``/``num_streams``.
        quantizer: two-input models only: None = each frame's QP props, else the model's estimate;
            an H.264-equivalent QP (0-63) for every frame (for users who know better: how hard to
            restore); ``"estimate"`` = the estimate even where the props tell the quantizer;
            ``"unknown"`` = as if no quantizer were known (blind).

    Returns:
        The filtered clip.
    """
    _check_clip(clip)
    _check_options(threads, num_streams, tile_batch)
    _check_quantizer(quantizer)
    try:
        plan = plan_filter(model, device=device, backend=backend, precision=precision, threads=threads,
                           num_streams=num_streams)
        tiles = _tiling(tilesize, overlap, plan, clip)
        runner = plan.create_runner()
        _check_output_shape(plan.spec, runner)
        specialist_runners = plan.create_specialist_runners()
        for kind, other in plan.specialists:
            _check_output_shape(other.spec, specialist_runners[kind])
        # quantizer kind -> (the network's id, its runner): where a frame's plane says a kind listed here
        networks = {kind: (other.spec.id, specialist_runners[kind]) for kind, other in plan.specialists}
        if quantizer is not None and plan.spec.planes < 2:
            raise OptionError(f"quantizer= is for two-input models (luma and quantizer plane); {plan.spec.id} "
                              "takes the luma only: leave quantizer unset")
        if quantizer == "estimate" and plan.spec.qp_estimator is None:
            raise OptionError(f"quantizer='estimate' needs a model with a quantizer estimator; {plan.spec.id} has "
                              "none: give a QP, 'unknown' or None")
        estimator = _estimator(plan.spec) if quantizer in (None, "estimate") else None
    except VsfilterError as exc:
        raise vs_error("vmaf_pre", exc) from None

    fmt = clip.format
    planes = list(range(fmt.num_planes)) if chroma else [0]
    peak = _peak(fmt)
    info = plan.describe()
    props = {PROP_MODEL: info["id"], PROP_SHA: info["sha256"], PROP_BACKEND: info["backend"],
             PROP_PRECISION: info["precision"]}

    gate = plan.spec.gate
    told_planes = plan.spec.planes >= 2
    bits = fmt.bits_per_sample
    sources = _frame_sources(clip, plan.spec)

    def filter_frame(n: int, f: vs.VideoFrame | list[vs.VideoFrame]) -> vs.VideoFrame:
        frames = f if isinstance(f, list) else [f]
        out = frames[0].copy()
        try:
            extra: dict[str, int | float | str] = {}
            run = True
            if gate is not None:
                run, probability = gate.selects(np.asarray(frames[0][0]), peak or 1.0)
                extra = {PROP_APPLIED: int(run), PROP_GATE: probability}
            qplanes = []
            network = runner
            if told_planes:
                told = [_frame_quantizer(g, bits, peak, quantizer, estimator) for g in frames]
                qplanes = [t.plane for t in told]
                extra |= {PROP_QP: -1.0 if told[0].qp is None else told[0].qp, PROP_QP_SOURCE: told[0].source}
                if networks:  # a specialist runs where the stream of its codec told (or let us estimate) the QP
                    extra[PROP_NETWORK], network = networks.get(told[0].kind or "", (plan.spec.id, runner))
            for p in planes if run else ():
                plane = np.asarray(frames[0][p])
                side = _side_planes(plane, [np.asarray(g[p]) for g in frames[1:]], qplanes, peak)
                np.copyto(np.asarray(out[p]), _run_plane(network, plane, peak, tiles, tile_batch, side))
        except Exception as exc:  # runtime failures become a frame error naming the frame
            raise vs_error("vmaf_pre", FrameError(f"frame {n}: {type(exc).__name__}: {exc}")) from None
        out.props.update(props | extra)
        return out

    # A bare ModifyFrame runs one frame at a time; a fresh ModifyFrame per frame under FrameEval lets
    # VapourSynth's worker threads run frames concurrently (the runner's pool serves them).
    return clip.std.FrameEval(lambda n: clip.std.ModifyFrame(sources if len(sources) > 1 else clip, filter_frame))


def _frame_sources(clip: vs.VideoNode, spec: ModelSpec) -> list[vs.VideoNode]:
    """The clips whose frame ``n`` each output frame ``n`` reads: ``clip``, and for a temporal model
    ``clip`` shifted by one frame either way (previous, next; the first and last frame stand in for their
    missing neighbour)."""
    if not spec.temporal:
        return [clip]
    if clip.num_frames < 2:
        return [clip, clip, clip]
    return [clip, clip[0] + clip[:-1], clip[1:] + clip[-1]]


def _side_planes(plane: np.ndarray, neighbours: list[np.ndarray], qplanes: list[np.ndarray],
                 peak: int | None) -> np.ndarray | None:
    """The input channels after ``plane`` (``vsfilter.models.INPUT_LAYOUTS``): its quantizer plane, then
    each neighbour's samples (as the model reads them) and quantizer plane; None for a one-input model."""
    if not qplanes:
        return None
    to_float = sample_converters(plane.dtype, peak)[0]
    side = [_subsampled(qplanes[0], plane.shape)]
    for samples, qplane in zip(neighbours, qplanes[1:], strict=True):
        side += [to_float(samples), _subsampled(qplane, plane.shape)]
    return np.stack(side)


def told_on(frame: vs.VideoFrame) -> dict[str, float | str | None]:
    """What a two-input model was told on one of its output frames, read back from the props
    :func:`vmaf_pre` set (:data:`TOLD_PROPS`): ``qp`` (the mean H.264-equivalent QP fed; None when
    unknown), ``source`` (``vsfilter.quantizer.QP_SOURCES``) and, for a model with specialists,
    ``network``; empty for the frames of a one-input model or of no model.

    Args:
        frame: a frame of :func:`vmaf_pre`'s output.
    """
    props = frame.props
    told: dict[str, float | str | None] = {}
    for key, name in TOLD_PROPS.items():
        if name in props:
            value = props[name]
            told[key] = (None if float(value) < 0 else float(value)) if key == "qp" else prop_text(value)
    return told


def _frame_quantizer(f: vs.VideoFrame, bits: int, peak: int | None, quantizer: float | str | None,
                     estimator: QuantizerEstimator | None) -> QuantizerPlane:
    """A frame's quantizer plane (``vsfilter.quantizer.frame_plane``), the estimate run only when needed."""
    return frame_plane(f.props, f.width, f.height, bits, quantizer,
                       None if estimator is None else lambda: estimator(np.asarray(f[0]), peak, f.props))


def _estimator(spec: ModelSpec) -> QuantizerEstimator | None:
    """A model's quantizer estimator (shared: ``load_estimator``), or None when it has none."""
    return None if spec.qp_estimator is None else load_estimator(spec.qp_estimator, spec.qp_estimator_sha256)


def _peak(fmt: vs.VideoFormat) -> int | None:
    """The largest code of an integer format; None for float samples."""
    return (1 << fmt.bits_per_sample) - 1 if fmt.sample_type == vs.INTEGER else None


# ----------------------------------------------------------------------------------------- checks


def _check_clip(clip: object) -> None:
    if not isinstance(clip, vs.VideoNode):
        raise vs_error("vmaf_pre", OptionError(f"clip must be a vapoursynth.VideoNode, not {type(clip).__name__}"))
    fmt = clip.format
    if fmt is None or fmt.id == vs.PresetVideoFormat.NONE:
        raise vs_error("vmaf_pre", OptionError("clip has a variable format; make it constant (e.g. "
                                               "resize.Bicubic(format=...))"))
    if clip.width == 0 or clip.height == 0:
        raise vs_error("vmaf_pre", OptionError("clip has a variable size; make it constant (e.g. "
                                               "resize.Bicubic(width, height))"))
    if fmt.color_family not in (vs.GRAY, vs.YUV):
        raise vs_error("vmaf_pre", OptionError(
            f"{fmt.name} is {fmt.color_family.name}; vmaf_pre filters luma, so convert to YUV or GRAY "
            "first (e.g. clip.resize.Bicubic(format=vs.YUV444P16, matrix_s='709'))"
        ))
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        raise vs_error("vmaf_pre", OptionError(f"{fmt.name} has {fmt.bits_per_sample}-bit samples; 8-16 bit "
                                               "integer or float is needed"))


def _check_options(threads: object, num_streams: object, tile_batch: object) -> None:
    if not isinstance(threads, int) or threads < 0:
        raise vs_error("vmaf_pre", OptionError(f"threads must be >= 0 (0 = automatic), got {threads!r}"))
    if num_streams is not None and (not isinstance(num_streams, int) or num_streams < 1):
        raise vs_error("vmaf_pre", OptionError(f"num_streams must be >= 1, got {num_streams!r}"))
    if not isinstance(tile_batch, int) or tile_batch < 1:
        raise vs_error("vmaf_pre", OptionError(f"tile_batch must be >= 1, got {tile_batch!r}"))


Tiles = tuple[tuple[int, int], tuple[int, int]]


def _tiling(tilesize, overlap, plan: FilterPlan, clip: vs.VideoNode) -> Tiles | None:
    """(tile, overlap) in pixels, or None for whole planes; see ``tilesize`` in :func:`vmaf_pre`."""
    try:
        tile = normalize_pair(tilesize, "tilesize")
        over = normalize_pair(overlap, "overlap")
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    spec = plan.spec
    if over is None:
        over = (spec.receptive_radius, spec.receptive_radius)
    if min(over) < 0:
        raise ModelError(f"overlap must be >= 0, got {overlap!r}")
    if tile == (0, 0):
        return None
    if tile is None:
        auto = plan.backend.tiles_large_frames and spec.nonlocal_op is None
        if not auto or clip.width * clip.height <= AUTO_TILE_PIXELS:
            return None
        tile = (even_tile(clip.width, AUTO_TILE_SIZE, over[0]), even_tile(clip.height, AUTO_TILE_SIZE, over[1]))
    if spec.nonlocal_op is not None:
        raise ModelError(f"{spec.id} cannot be tiled: its {spec.nonlocal_op} makes each output pixel depend on "
                         "more than a bounded window; leave tilesize unset (or 0)")
    if tile[0] <= 2 * over[0] or tile[1] <= 2 * over[1]:
        raise ModelError(f"tilesize {list(tile)} must be larger than 2*overlap {[2 * o for o in over]} on each "
                         "axis; raise tilesize or lower overlap")
    return tile, over


def _check_quantizer(quantizer: object) -> None:
    if quantizer is None or quantizer in ("unknown", "estimate"):
        return
    if isinstance(quantizer, bool) or not isinstance(quantizer, int | float) or not 0 <= quantizer <= 63:
        raise vs_error("vmaf_pre", OptionError(f"quantizer must be an H.264-equivalent QP from 0 to 63, 'unknown', "
                                               f"'estimate' or None (the frames' QP props), got {quantizer!r}"))


def _check_output_shape(spec: ModelSpec, runner: Runner) -> None:
    """One tiny probe inference when the graph does not state that output size = input size."""
    if spec.same_shape:
        return
    side = max(16, 2 * spec.receptive_radius + 5)
    try:
        out = runner(np.zeros((1, spec.planes, side, side + 3), np.float32))
    except Exception as exc:  # the runtime's own message, on one line
        raise ModelError(f"{spec.id} fails on a {side + 3}x{side} probe frame: "
                         f"{str(exc).strip().splitlines()[0][:200]}") from None
    if tuple(out.shape) != (1, 1, side, side + 3):
        raise ModelError(f"{spec.id} turns a {side + 3}x{side} frame into {list(out.shape)}; vmaf_pre needs a "
                         "model whose output has its input's shape [N,1,H,W]")


# ----------------------------------------------------------------------------------------- frames


def _run_plane(runner: Runner, plane: np.ndarray, peak: int | None, tiles: Tiles | None, tile_batch: int,
               extra: np.ndarray | None = None) -> np.ndarray:
    """One plane through the model, in its own sample format; tiled planes convert tile by tile. A
    model with more inputs gets ``extra`` (``C x H x W`` float32: its quantizer plane, a temporal model's
    neighbours; cut with the plane's tiles) after the plane."""
    if extra is None and tiles is None:
        return runner.filter_plane(plane, peak)
    to_float, from_float = sample_converters(plane.dtype, peak)
    if tiles is None:
        assert extra is not None
        return from_float(runner(np.concatenate([to_float(plane)[None], extra])[None])[0, 0])
    return filter_tiled(plane, runner, tiles[0], tiles[1], tile_batch, to_float, from_float, plane.dtype,
                        extra=extra)


def _subsampled(qplane: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The quantizer plane of a plane of ``shape`` (a subsampled chroma plane takes every n-th value)."""
    if qplane.shape == shape:
        return qplane
    sy, sx = -(-qplane.shape[0] // shape[0]), -(-qplane.shape[1] // shape[1])
    return np.ascontiguousarray(qplane[::sy, ::sx][: shape[0], : shape[1]])
