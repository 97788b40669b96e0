"""libvmaf scoring through PyAV's bundled FFmpeg: one filter graph per (distorted, reference) pair.

VMAF, VMAF NEG, PSNR and SSIM all come from libvmaf in a single pass; nothing is re-implemented.
The graph uses ``shortest=1`` (libvmaf otherwise repeats the last frame of a shorter input), and its
JSON log is read after the graph is freed (libvmaf writes it only then).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import numpy as np
import vapoursynth as vs

from ..errors import VmafError
from .vmaf_models import ScoringSpec, check_model_files, escape_path

__all__ = ["METRICS", "CAMBI", "MIN_SIZE", "VmafError", "VmafScorer", "Scores", "pix_fmt_for", "metrics_for",
           "cambi_runs", "CAMBI_MIN_SIDE",
           "vs_to_av", "check_vmaf_model", "check_frame_size", "pool", "check_scoring_size"]

#: Our metric name -> libvmaf's per-frame key: what every comparison scores (each VMAF model after the
#: first adds a metric of its own: ``ScoringSpec.labels``).
METRICS = {"vmaf": "vmaf", "vmaf_neg": "vmaf_neg", "psnr_y": "psnr_y", "ssim": "float_ssim"}
#: Banding (libvmaf's CAMBI: 0 = none, higher = more visible banding, up to 24), scored when asked.
CAMBI = {"cambi": "cambi"}
#: CAMBI's init() refuses frames whose width and height are both below this (CAMBI_MIN_WIDTH_HEIGHT).
CAMBI_MIN_SIDE = 216


def cambi_runs(width: int, height: int) -> bool:
    """Whether libvmaf's CAMBI scores frames of this size (a width or a height of at least 216)."""
    return max(width, height) >= CAMBI_MIN_SIDE


def metrics_for(cambi: bool, spec: ScoringSpec | None = None) -> dict[str, str]:
    """The metrics a comparison scores: :data:`METRICS` (with a metric per extra VMAF model of ``spec``),
    plus :data:`CAMBI` when ``cambi``."""
    metrics = dict(METRICS) if spec is None else spec.labels() | {k: v for k, v in METRICS.items() if k != "vmaf"}
    return metrics | {"cambi": CAMBI["cambi"] if spec is None else spec.cambi_key()} if cambi else metrics


#: Smallest width and height libvmaf's extractors handle: at 16 pixels on either side (2x2 and 7x5
#: too) PyAV's libvmaf and the ffmpeg CLI's crash with SIGSEGV, whatever the other side and features;
#: 17x17 scores (measured: every W x H with W or H <= 16 crashed, W, H >= 17 scored, up to 1000x17).
MIN_SIZE = 17


def check_frame_size(width: int, height: int) -> None:
    """Refuse frames libvmaf would crash on, before any libvmaf graph is built."""
    if width < MIN_SIZE or height < MIN_SIZE:
        raise VmafError(f"frames of {width}x{height} are too small for libvmaf: it needs at least "
                        f"{MIN_SIZE}x{MIN_SIZE} pixels (it crashes below); scale the inputs up first")


def pool(values: list[float]) -> dict[str, float]:
    """libvmaf's poolings of per-frame values: mean and harmonic mean (``n / sum(1/(x+1)) - 1``), plus
    the minimum and the 5th percentile."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "harmonic_mean": float(len(arr) / np.sum(1.0 / (arr + 1.0)) - 1.0),
            "min": float(arr.min()), "p5": float(np.percentile(arr, 5))}


def pix_fmt_for(fmt: vs.VideoFormat, bits: int | None = None) -> str:
    """The FFmpeg pixel format of a planar YUV VapourSynth format libvmaf accepts (at ``bits`` bits
    per sample when given: :func:`vs_to_av` shifts the samples up)."""
    if fmt.color_family != vs.YUV or fmt.sample_type != vs.INTEGER:
        raise VmafError(f"libvmaf needs integer YUV, got {fmt.name}")
    sub = {(1, 1): "420", (1, 0): "422", (0, 0): "444"}.get((fmt.subsampling_w, fmt.subsampling_h))
    depth = max(bits or 0, fmt.bits_per_sample)
    if sub is None or depth not in (8, 10, 12, 16):
        raise VmafError(f"libvmaf cannot score {fmt.name}")
    return f"yuv{sub}p" + ("" if depth == 8 else f"{depth}le")


def vs_to_av(frame: vs.VideoFrame, pix_fmt: str, pts: int, time_base: Fraction) -> av.VideoFrame:
    """Copy a planar VapourSynth frame into a new PyAV frame of ``pix_fmt``; a deeper ``pix_fmt`` gets the
    samples shifted up, as FFmpeg's ``format=yuv420p10le`` converts 8-bit video (``x << 2``)."""
    out = av.VideoFrame(frame.width, frame.height, pix_fmt)
    bits = frame.format.bits_per_sample
    shift = (int(pix_fmt[-4:-2]) if pix_fmt.endswith("le") else 8) - bits
    for p, plane in enumerate(out.planes):
        src = np.asarray(frame[p])
        if shift:
            src = src.astype(np.uint16) << shift
        dst = np.frombuffer(plane, dtype=src.dtype).reshape(-1, plane.line_size // src.itemsize)
        dst[: src.shape[0], : src.shape[1]] = src
    out.pts, out.time_base = pts, time_base
    return out


def check_vmaf_model(vmaf_model: str) -> None:
    """Fail early (before decoding anything) when a name of ``vmaf_model`` is unknown or libvmaf cannot
    load one of its model files (``auto``, ``v1``, ``:phone`` and lists included; see ``vmaf_models``)."""
    check_model_files(vmaf_model)  # parses every name first


#: Frames of at least this many pixels never meet VMAF v1's size limits (its SpEED features work on
#: frames downscaled 4-16x and refuse what becomes empty: vmaf_v1.0.16_3d0h_2160 needs 640x360,
#: _5d0h 480x270, the others 320x180); smaller ones are test-scored once before decoding anything.
V1_PROBE_BELOW = 1280 * 720


def check_scoring_size(spec: ScoringSpec, width: int, height: int, pix_fmt: str) -> None:
    """Fail early when libvmaf cannot score ``spec``'s models at ``width`` x ``height``: one frame pair
    of that size is scored (VMAF v1 on frames below :data:`V1_PROBE_BELOW` pixels), in a child process
    (libvmaf crashes when a context whose feature failed to start is freed), and what libvmaf said
    becomes a :class:`VmafError`."""
    if spec.generation < 1 or width * height >= V1_PROBE_BELOW:
        return
    why = _probe_in_child(spec, width, height, pix_fmt)
    if why is not None:
        raise VmafError(f"libvmaf cannot score VMAF model {spec.name} on {width}x{height} frames ({why}); use a "
                        "larger reference or another model (vmaf_v0.6.1 scores any size from 17x17)")


@functools.lru_cache(maxsize=64)
def _probe_in_child(spec: ScoringSpec, width: int, height: int, pix_fmt: str) -> str | None:
    """What libvmaf said when it could not score two frame pairs in a child process, or None (asked once
    per process: a batch worker opens the same pair for every chunk)."""
    import base64
    import pickle
    import subprocess
    import sys

    arg = base64.b64encode(pickle.dumps((spec, width, height, pix_fmt))).decode()
    code = "import sys; from vsfilter.compare.scoring import _probe; sys.exit(_probe(sys.argv[1]))"
    proc = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return None
    said = [line for line in proc.stderr.splitlines() if line.startswith("libvmaf ERROR")]
    return " ".join((said[0] if said else f"exit {proc.returncode}").split()).removeprefix("libvmaf ERROR ")


def _probe(arg: str) -> int:
    """The child of :func:`check_scoring_size`: 0 when two frame pairs score."""
    import base64
    import pickle

    spec, width, height, pix_fmt = pickle.loads(base64.b64decode(arg))
    scorer = VmafScorer(width, height, pix_fmt, Fraction(1, 1000), spec)
    for n in range(2):
        frame = av.VideoFrame(width, height, pix_fmt)
        for plane in frame.planes:
            data = np.frombuffer(plane, np.uint16 if pix_fmt.endswith("le") else np.uint8)
            data[:] = 64 + (np.arange(data.size) * (n + 7)) % 97
        frame.pts, frame.time_base = n * 40, Fraction(1, 1000)
        scorer.push(frame, frame)
    scorer.close()
    return 0


@dataclass
class Scores:
    """libvmaf's result: per-frame values (lists, one per scored frame) and its pooled means (None when
    the frames are a subset of what libvmaf scored: pool them with :func:`pool`); ``told``: what a
    two-input model was told on each scored frame (``vsfilter.filter.told_on``, one dict per frame,
    as ``frame_numbers``), empty when the stream's frames say nothing of it."""

    frame_numbers: list[int]
    per_frame: dict[str, list[float]]
    pooled: dict[str, dict[str, float]] | None
    told: list[dict] = field(default_factory=list)


class VmafScorer:
    """A libvmaf graph fed frame by frame: ``push(dist, ref)`` ... ``close() -> Scores``.

    Args:
        width, height, pix_fmt, time_base: the format of both inputs.
        spec: the resolved VMAF models (``pix_fmt`` is already at the precision it asks for).
        subsample: score every n-th frame (libvmaf's ``n_subsample``).
        threads: libvmaf worker threads; 0 = none: libvmaf scores in the thread that pushes frames.
        cambi: also score banding (libvmaf's ``cambi`` feature).
    """

    def __init__(self, width: int, height: int, pix_fmt: str, time_base: Fraction, spec: ScoringSpec,
                 subsample: int = 1, threads: int = 0, cambi: bool = False) -> None:
        check_frame_size(width, height)
        self._metrics = metrics_for(cambi, spec)
        fd, self._log = tempfile.mkstemp(prefix="vsfilter-vmaf-", suffix=".json")
        os.close(fd)
        # Banding is judged as v1's own CAMBI judges it: told the encode's native size and bit depth.
        cambi_options = "".join(f"\\:{k}={v}" for k, v in spec.cambi_encode)
        features = "name=psnr|name=float_ssim" + (f"|name=cambi{cambi_options}" if cambi else "")
        args = (f"model={spec.option()}:feature={features}:log_fmt=json:"
                f"log_path={escape_path(self._log)}:n_threads={threads}:n_subsample={subsample}:shortest=1")
        self._graph = graph = av.filter.Graph()
        self._dist = graph.add_buffer(width=width, height=height, format=pix_fmt, time_base=time_base)
        self._ref = graph.add_buffer(width=width, height=height, format=pix_fmt, time_base=time_base)
        try:
            vmaf = graph.add("libvmaf", args)
            self._sink = graph.add("buffersink")
            self._dist.link_to(vmaf, 0, 0)  # libvmaf: first input distorted, second reference
            self._ref.link_to(vmaf, 0, 1)
            vmaf.link_to(self._sink)
            graph.configure()
        except av.error.FFmpegError as exc:
            self._cleanup()
            raise VmafError(f"libvmaf could not start with model {spec.name!r} ({exc.strerror})") from None

    def push(self, dist: av.VideoFrame, ref: av.VideoFrame) -> None:
        """Score one frame pair (libvmaf works on it in its own threads)."""
        self._dist.push(dist)
        self._ref.push(ref)
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return

    def close(self) -> Scores:
        """Flush, free the graph (libvmaf writes its log then) and read the scores."""
        try:
            self._dist.push(None)
            self._ref.push(None)
            self._drain()
        finally:
            self._release()
        try:
            data = self._read_log()
        finally:
            self._cleanup()
        frames = data.get("frames", [])
        if not frames:
            raise VmafError("libvmaf scored no frames")
        per_frame = {ours: [float(f["metrics"][theirs]) for f in frames] for ours, theirs in self._metrics.items()}
        pooled = {ours: data["pooled_metrics"][theirs] for ours, theirs in self._metrics.items()}
        return Scores([int(f["frameNum"]) for f in frames], per_frame, pooled)

    def _read_log(self) -> dict:
        """libvmaf's JSON log, written when its filter is freed. Something else may hold the graph for
        a moment after we drop it (a sampling profiler's frame, as Dask workers run one): wait for it."""
        log = Path(self._log)
        for attempt in range(100):
            try:
                text = log.read_text()
                if text:
                    return json.loads(text)
            except (OSError, json.JSONDecodeError):
                pass
            gc.collect()
            time.sleep(0.02 * min(attempt + 1, 5))
        raise VmafError("libvmaf wrote no scores (no frames were scored)")

    def abort(self) -> None:
        """Drop the graph without scoring (an error or an interruption): no temporary file is left."""
        try:
            self._release()
        finally:
            self._cleanup()

    def discard(self) -> None:
        """Remove the temporary log and leave the graph as it is: the process is ending (an interruption),
        and freeing libvmaf would first finish the frames its threads hold."""
        self._cleanup()

    def _release(self) -> None:
        self._graph = self._dist = self._ref = self._sink = None  # type: ignore[assignment]
        gc.collect()

    def _cleanup(self) -> None:
        try:
            os.unlink(self._log)
        except FileNotFoundError:
            pass
