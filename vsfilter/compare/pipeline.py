"""Feeding libvmaf: one pass over the reference, distorted and prefiltered clips, two scorers at once.

Decoding and filtering happen in VapourSynth's threads; each libvmaf graph runs in a thread of its own,
fed through a bounded queue. Any failure or interruption (Ctrl-C, SIGTERM) stops every thread within
a fraction of a second, frees the libvmaf graphs and removes their temporary logs.

A :class:`ScoreRange` scores frames ``[first, stop)`` of aligned clips. For exact per-frame scores on a
slice of a longer title (``vsfilter.batch``), libvmaf is also fed ``context`` frames around the slice
and their scores are dropped: libvmaf's motion feature of frame i compares reference frames i-1 and
i, and its motion2 is the smaller of frame i's and frame i+1's motion, so a slice needs one reference
frame before it and one after it to score as the whole file does. VMAF v1's motion3 looks further
back (its HFR models difference frames i-2 and i, and it smooths with the previous frame's value), so
v1 slices are fed :data:`V1_CONTEXT_BEFORE` frames before them. With ``subsample = N`` libvmaf scores
every N-th frame it is fed (counting from the first one fed), so the slice starts on a multiple of N
and is fed a multiple of N frames before it, which keeps the scored frames where a whole-file run puts
them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import vapoursynth as vs

from ..cpus import cpu_count
from ..errors import CompareError, VmafError, message_of
from ..filter import told_on
from .scoring import Scores, VmafScorer, pix_fmt_for, vs_to_av
from .vmaf_models import ScoringSpec

__all__ = ["STREAMS", "ScoreRange", "score_range", "graphs_at_once", "LIBVMAF_BYTES_PER_PIXEL", "GRAPHS_BYTES"]

STREAMS = ("distorted", "prefiltered")
#: Frames before a slice that VMAF v1 needs to score it as the whole file does (v0: 1).
V1_CONTEXT_BEFORE = 4
_TIME_BASE = Fraction(1, 1000)

#: libvmaf's memory per graph and pixel: the extractors of VMAF, of VMAF NEG (its own ADM and VIF)
#: and of SSIM hold ~59 bytes a pixel (measured: a 7680x4320 graph with n_threads=0 peaked 1.9 GiB
#: above its inputs; VMAF alone 0.9, NEG's extractors 0.7, SSIM 0.3); each libvmaf thread adds copies.
LIBVMAF_BYTES_PER_PIXEL = 60
#: What CAMBI adds per pixel (measured at 3840x2160: compare's peak 2.61 GB with both graphs at once,
#: 1.79 GB one after the other, i.e. ~100 B/px per graph with CAMBI), and VMAF v1 at 10 bits on top
#: (its CAMBI, SpEED and ADM3 extractors on 16-bit pictures: 2.93 GB with both graphs).
CAMBI_BYTES_PER_PIXEL = 40
V1_BYTES_PER_PIXEL = 25
#: Both streams are scored in one pass (two graphs at once) while their graphs fit this; larger frames
#: take two passes, one graph at a time: the reference and distorted files are decoded twice, the filter
#: runs once. With CAMBI (the default) that is from ~7.7 megapixels: 3840x2160 takes two passes (peak
#: 1.79 GB instead of 2.61 GB, ~1.2x the time); 2560x1440 stays in one.
GRAPHS_BYTES = 1536 << 20
#: Frames waiting for each libvmaf graph, and frames VapourSynth renders ahead per clip, are bounded
#: in bytes (and by 8 frames, and the core's threads): at 4K two frames, at 8K one.
QUEUE_BYTES = 64 << 20
PREFETCH_BYTES = 64 << 20


@dataclass(frozen=True)
class ScoreRange:
    """Frames to score and how.

    Attributes:
        first, stop: the frames whose scores are wanted, ``[first, stop)``.
        spec: the resolved VMAF models and the precision they are measured at.
        subsample: score every N-th frame (frame numbers that are multiples of N).
        threads: libvmaf threads per graph; 0 = half the cores each.
        context: feed libvmaf the frames around ``[first, stop)`` needed for whole-file scores.
        cambi: also score banding (CAMBI).
    """

    first: int
    stop: int
    spec: ScoringSpec
    subsample: int = 1
    threads: int = 0
    context: bool = False
    cambi: bool = False


def feed_range(rng: ScoreRange, length: int) -> tuple[int, int]:
    """The frames ``[start, end)`` fed to libvmaf for ``rng`` over clips of ``length`` frames."""
    if not rng.context:
        return rng.first, rng.stop
    if rng.first % rng.subsample:
        raise ValueError(f"a slice starting at frame {rng.first} is not aligned to subsample={rng.subsample}")
    need = V1_CONTEXT_BEFORE if rng.spec.generation >= 1 else 1
    before = -(-need // rng.subsample) * rng.subsample
    return max(0, rng.first - before), min(length, rng.stop + 1)


def score_range(ref: vs.VideoNode, dist: vs.VideoNode, pre: vs.VideoNode, rng: ScoreRange,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Scores]:
    """Per-frame and pooled scores of ``dist`` and ``pre`` against ``ref`` for ``rng``'s frames.

    Frame numbers in the result are those of the clips (``rng.first`` ...), never libvmaf's own.
    Frames too large for two libvmaf graphs at once (:func:`graphs_at_once`) are scored in two passes,
    one stream each; ``progress`` then counts the frames of both passes.
    """
    start, end = feed_range(rng, ref.num_frames)
    pix_fmt = pix_fmt_for(ref.format, rng.spec.bits)
    ref = ref[start:end]
    clips = {"distorted": dist[start:end], "prefiltered": pre[start:end]}
    at_once = graphs_at_once(ref.width, ref.height, rng.cambi, rng.spec.generation >= 1)
    passes = [STREAMS] if at_once >= len(STREAMS) else [(s,) for s in STREAMS]
    total = ref.num_frames * len(passes)
    results: dict[str, Scores] = {}
    for i, streams in enumerate(passes):
        offset = i * ref.num_frames
        step = None if progress is None else (lambda n, _, o=offset: progress(o + n, total))
        results |= _score_pass(ref, {s: clips[s] for s in streams}, pix_fmt, rng, step)
    return {s: _keep(results[s], start, rng.first, rng.stop) for s in STREAMS}


def graphs_at_once(width: int, height: int, cambi: bool = False, v1: bool = False) -> int:
    """How many libvmaf graphs of ``width`` x ``height`` frames fit :data:`GRAPHS_BYTES` (at least 1),
    with CAMBI and with VMAF v1 models in them."""
    per_pixel = LIBVMAF_BYTES_PER_PIXEL + CAMBI_BYTES_PER_PIXEL * cambi + V1_BYTES_PER_PIXEL * v1
    return max(1, GRAPHS_BYTES // (per_pixel * width * height))


def _score_pass(ref: vs.VideoNode, clips: dict[str, vs.VideoNode], pix_fmt: str, rng: ScoreRange,
                progress: Callable[[int, int], None] | None) -> dict[str, Scores]:
    """One pass over ``ref`` and ``clips``: each clip scored against ``ref`` by a libvmaf graph of its own."""
    if rng.threads == 1 or len(clips) == 1:
        # One thread in all, or frames so large that libvmaf's per-thread copies of its buffers count:
        # libvmaf scores synchronously in the thread that feeds it (n_threads=0).
        threads = 0
    else:
        threads = rng.threads or max(1, cpu_count() // 2)
    frame_bytes = _frame_bytes(ref)
    scorers: dict[str, VmafScorer] = {}
    try:
        for stream in clips:
            scorers[stream] = VmafScorer(ref.width, ref.height, pix_fmt, _TIME_BASE, rng.spec,
                                         rng.subsample, threads, rng.cambi)
        feeder = _Feeder(scorers, inline=rng.threads == 1,
                         depth=max(1, min(8, QUEUE_BYTES // (2 * frame_bytes))))
        feeder.run(ref, clips, pix_fmt, progress, prefetch=max(1, min(vs.core.num_threads,
                                                                       PREFETCH_BYTES // frame_bytes)))
        return {s: feeder.with_told(s, scorers[s].close()) for s in clips}
    except Exception:
        for scorer in scorers.values():
            scorer.abort()
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the process ends now; freeing libvmaf would wait for its frames
        for scorer in scorers.values():
            scorer.discard()
        raise


def _frame_bytes(clip: vs.VideoNode) -> int:
    fmt = clip.format
    return sum((clip.width >> (fmt.subsampling_w if p else 0)) * (clip.height >> (fmt.subsampling_h if p else 0))
               * fmt.bytes_per_sample for p in range(fmt.num_planes))


def _keep(scores: Scores, offset: int, first: int, stop: int) -> Scores:
    """Renumber libvmaf's frames (0 = first fed) to clip frames and drop the context frames."""
    keep = [i for i, n in enumerate(scores.frame_numbers) if first <= n + offset < stop]
    if not keep:
        raise VmafError("libvmaf scored no frames in the range asked for")
    per_frame = {m: [v[i] for i in keep] for m, v in scores.per_frame.items()}
    return Scores([scores.frame_numbers[i] + offset for i in keep], per_frame,
                  scores.pooled if len(keep) == len(scores.frame_numbers) else None,
                  [scores.told[i] for i in keep] if scores.told else [])


def _sequential(clips: list[vs.VideoNode]):
    """Frames one at a time, nothing rendered ahead: decoding, filtering and scoring take turns on
    one core (what a single-threaded worker should use; prefetching would spill onto others)."""
    for n in range(clips[0].num_frames):
        yield [c.get_frame(n) for c in clips]


def _prefetched(clips: list[vs.VideoNode], prefetch: int):
    """Frames in order, VapourSynth rendering up to ``prefetch`` ahead per clip in its threads."""
    return zip(*(c.frames(prefetch=prefetch, close=True) for c in clips))


class _Feeder:
    """Pushes frame pairs into one queue per scorer; each scorer drains its queue in its own thread.

    ``inline`` (a single-threaded budget, e.g. a one-thread Dask worker): no threads, the scorers are
    fed one after the other in the feeding thread, so the whole pair uses one core.
    """

    def __init__(self, scorers: dict[str, VmafScorer], inline: bool = False, depth: int = 8) -> None:
        self.scorers, self.inline = scorers, inline
        self.queues: dict[str, queue.Queue] = {s: queue.Queue(maxsize=depth) for s in scorers}
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        #: per stream, what its frames say a two-input model was told (``told_on``), by fed frame
        self.told: dict[str, list[dict]] = {s: [] for s in scorers}

    def with_told(self, stream: str, scores: Scores) -> Scores:
        """``scores`` with what ``stream``'s scored frames say the model was told (none: unchanged)."""
        told = self.told[stream]
        if not any(told):
            return scores
        return Scores(scores.frame_numbers, scores.per_frame, scores.pooled, [told[n] for n in scores.frame_numbers])

    def _work(self, stream: str) -> None:
        scorer, q = self.scorers[stream], self.queues[stream]
        try:
            while not self.stop.is_set():
                try:
                    item = q.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is None:
                    return
                scorer.push(*item)
        except BaseException as exc:  # surfaced in the feeding thread
            self.errors.append(exc)
            self.stop.set()

    def _put(self, stream: str, item) -> None:
        if self.inline:
            if item is not None:
                self.scorers[stream].push(*item)
            return
        while not self.stop.is_set():
            try:
                self.queues[stream].put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def run(self, ref: vs.VideoNode, clips: dict[str, vs.VideoNode], pix_fmt: str, progress,
            prefetch: int = 1) -> None:
        """Feed ``ref`` and each of ``clips`` (one per scorer) frame by frame, then the end marker."""
        workers = [] if self.inline else [
            threading.Thread(target=self._work, args=(s,), daemon=True, name=f"vmaf-{s}") for s in self.scorers]
        for t in workers:
            t.start()
        total = ref.num_frames
        streams = list(clips)
        nodes = [ref, *clips.values()]
        try:
            frames = _sequential(nodes) if self.inline else _prefetched(nodes, prefetch)
            for n, (r, *others) in enumerate(frames):
                if self.stop.is_set():
                    break
                ts = n * 40
                ref_av = vs_to_av(r, pix_fmt, ts, _TIME_BASE)
                del r
                for stream, frame in zip(streams, others):
                    self.told[stream].append(told_on(frame))
                    self._put(stream, (vs_to_av(frame, pix_fmt, ts, _TIME_BASE), ref_av))
                del others
                if progress:
                    progress(n + 1, total)
            else:
                for s in self.scorers:
                    self._put(s, None)
        except vs.Error as exc:
            self.stop.set()
            raise CompareError(message_of(exc) or " ".join(str(exc).split())) from None
        except Exception:
            self.stop.set()
            raise
        except BaseException:  # an interruption: leave the scoring threads to the process's end
            self.stop.set()
            workers = []
            raise
        finally:
            for t in workers:
                t.join(timeout=None if not self.stop.is_set() else 2.0)
        if self.errors:
            first = self.errors[0]
            if isinstance(first, CompareError):
                raise first
            raise CompareError(f"scoring failed: {first}") from None
