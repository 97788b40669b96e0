"""``vmaf_pre``: run a learned single-plane ONNX filter on the luma of every frame of a clip."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import vapoursynth as vs

from .backends import BackendError, Precision, Runner, select_backend
from .models import ModelError, ModelSpec, resolve_model
from .tiling import filter_tiled, normalize_pair

__all__ = ["vmaf_pre"]

#: Frame props written on every output frame.
PROP_MODEL = "VmafPreModel"
PROP_SHA = "VmafPreSha256"
PROP_BACKEND = "VmafPreBackend"
PROP_PRECISION = "VmafPrePrecision"


def vmaf_pre(
    clip: vs.VideoNode,
    model: str | os.PathLike = "learned_filter_v1",
    device: str = "auto",
    threads: int = 0,
    chroma: bool = False,
    tilesize: int | Sequence[int] | None = None,
    overlap: int | Sequence[int] | None = None,
    precision: str = "fp32",
    num_streams: int | None = None,
    tile_batch: int = 1,
) -> vs.VideoNode:
    """Filter the luma (and optionally chroma) of ``clip`` with a learned ONNX filter.

    The VapourSynth counterpart of the ``vmaf_pre`` ffmpeg filter: integer samples are normalised by
    ``(1 << bits) - 1`` (no range stretch), run through the model, rounded and clamped back; float
    samples pass as they are. Format, size, length, frame rate and frame props are kept, chroma is
    copied bit-exact unless ``chroma=True``, and each frame gets the props ``VmafPreModel``,
    ``VmafPreSha256``, ``VmafPreBackend`` and ``VmafPrePrecision``.

    Args:
        clip: GRAY or YUV clip, 8-16 bit integer or 16/32 bit float, constant format and size.
        model: a registry id (``"learned_filter_v1"``) or a path to an ``.onnx`` file with one input
            ``[N,1,H,W]`` and one output of the same shape.
        device: ``"auto"`` (CUDA, then OpenVINO, then CPU, whichever is installed), ``"cpu"`` (ONNX
            Runtime), ``"cuda"`` (onnxruntime-gpu) or ``"openvino"``.
        threads: intra-op threads per inference session; 0 = automatic.
        chroma: also filter each chroma plane (the model is a luma model: off by default).
        tilesize: filter in tiles of this size, an int or ``[width, height]``, context included (as
            vs-mlrt); None = whole planes. Tiling bounds memory on large frames.
        overlap: context pixels on each inner tile side, an int or ``[width, height]``; None = the
            model's receptive radius, which makes tiled output bit-identical to untiled output.
        precision: ``"fp32"``, ``"fp16"`` (CUDA), ``"bf16"`` (OpenVINO on AMX/AVX-512 BF16 CPUs),
            ``"int8"`` (the model's static INT8 sidecar) or ``"auto"`` (the backend's fastest accurate).
        num_streams: inference sessions running frames concurrently; None = 1 (one session on all cores).
        tile_batch: tiles sent to the model per call when tiling.

    Returns:
        The filtered clip.
    """
    _check_clip(clip)
    if not isinstance(threads, int) or threads < 0:
        raise vs.Error(f"vmaf_pre: threads must be >= 0 (0 = automatic), got {threads!r}")
    if num_streams is not None and (not isinstance(num_streams, int) or num_streams < 1):
        raise vs.Error(f"vmaf_pre: num_streams must be >= 1, got {num_streams!r}")
    if tile_batch < 1:
        raise vs.Error(f"vmaf_pre: tile_batch must be >= 1, got {tile_batch!r}")
    try:
        spec = resolve_model(model)
        prec = Precision(precision)
    except ModelError as exc:
        raise vs.Error(f"vmaf_pre: {exc}") from None
    except ValueError:
        choices = ", ".join(p.value for p in Precision)
        raise vs.Error(f"vmaf_pre: precision={precision!r} is not one of {choices}") from None
    tiles = _check_tiling(tilesize, overlap, spec)
    try:
        runner = select_backend(device, threads, num_streams).create(spec, prec)
    except BackendError as exc:
        raise vs.Error(f"vmaf_pre: {exc}") from None

    fmt = clip.format
    planes = list(range(fmt.num_planes)) if chroma else [0]
    convert = _SampleConverter(fmt)
    props = {PROP_MODEL: spec.id, PROP_SHA: spec.sha256, PROP_BACKEND: runner.backend,
             PROP_PRECISION: runner.precision.value}

    def filter_frame(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        try:
            for p in planes:
                np.copyto(np.asarray(out[p]), _run_plane(runner, np.asarray(f[p]), convert, tiles, tile_batch))
        except Exception as exc:  # runtime failures become a frame error naming the frame
            raise vs.Error(f"vmaf_pre: frame {n}: {type(exc).__name__}: {exc}") from None
        out.props.update(props)
        return out

    # A bare ModifyFrame runs one frame at a time; a fresh ModifyFrame per frame under FrameEval lets
    # VapourSynth's worker threads run frames concurrently (the runner's pool serves them).
    return clip.std.FrameEval(lambda n: clip.std.ModifyFrame(clip, filter_frame))


def _check_clip(clip: object) -> None:
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"vmaf_pre: clip must be a vapoursynth.VideoNode, not {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or fmt.id == vs.PresetVideoFormat.NONE:
        raise vs.Error("vmaf_pre: clip has a variable format; make it constant (e.g. resize.Bicubic(format=...))")
    if clip.width == 0 or clip.height == 0:
        raise vs.Error("vmaf_pre: clip has a variable size; make it constant (e.g. resize.Bicubic(width, height))")
    if fmt.color_family not in (vs.GRAY, vs.YUV):
        raise vs.Error(
            f"vmaf_pre: {fmt.name} is {fmt.color_family.name}; vmaf_pre filters luma, so convert to YUV or GRAY "
            "first (e.g. clip.resize.Bicubic(format=vs.YUV444P16, matrix_s='709'))"
        )
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        raise vs.Error(f"vmaf_pre: {fmt.name} has {fmt.bits_per_sample}-bit samples; 8-16 bit integer or float is needed")


def _check_tiling(tilesize, overlap, spec: ModelSpec) -> tuple[tuple[int, int], tuple[int, int]] | None:
    try:
        tile = normalize_pair(tilesize, "tilesize")
        over = normalize_pair(overlap, "overlap")
    except ValueError as exc:
        raise vs.Error(f"vmaf_pre: {exc}") from None
    if over is None:
        over = (spec.receptive_radius, spec.receptive_radius)
    if min(over) < 0:
        raise vs.Error(f"vmaf_pre: overlap must be >= 0, got {overlap!r}")
    if tile is None:
        return None
    if tile[0] <= 2 * over[0] or tile[1] <= 2 * over[1]:
        raise vs.Error(
            f"vmaf_pre: tilesize {list(tile)} must be larger than 2*overlap {[2 * o for o in over]} on each "
            "axis; raise tilesize or lower overlap"
        )
    return tile, over


def _run_plane(runner: Runner, plane: np.ndarray, convert: "_SampleConverter", tiles, tile_batch: int) -> np.ndarray:
    """One plane through the model, in its own sample format; tiled planes convert tile by tile."""
    if tiles is None:
        return convert.from_float(runner(convert.to_float(plane)[None, None])[0, 0])
    return filter_tiled(plane, runner, tiles[0], tiles[1], tile_batch, convert.to_float, convert.from_float,
                        convert.dtype)


class _SampleConverter:
    """Samples <-> the model's float32 [0, 1] scale, as the reference filter: divide by the peak code."""

    def __init__(self, fmt: vs.VideoFormat) -> None:
        self.integer = fmt.sample_type == vs.INTEGER
        self.peak = np.float32((1 << fmt.bits_per_sample) - 1) if self.integer else None
        self.dtype = np.dtype(f"uint{fmt.bytes_per_sample * 8}") if self.integer else np.dtype(
            f"float{fmt.bytes_per_sample * 8}")

    def to_float(self, plane: np.ndarray) -> np.ndarray:
        if self.integer:
            return np.divide(plane, self.peak, dtype=np.float32)
        return plane.astype(np.float32, copy=False)

    def from_float(self, plane: np.ndarray) -> np.ndarray:
        if not self.integer:
            return plane.astype(self.dtype, copy=False)
        scaled = np.multiply(plane, self.peak, dtype=np.float32)
        np.rint(scaled, out=scaled)
        np.clip(scaled, 0, self.peak, out=scaled)
        return scaled.astype(self.dtype)
