"""Feeding libvmaf: one pass over the reference, distorted and prefiltered clips, two scorers at once.

Decoding and filtering happen in VapourSynth's threads; each libvmaf graph runs in a thread of its own,
fed through a bounded queue. Any failure or interruption (Ctrl-C, SIGTERM) stops every thread within
a fraction of a second, frees the libvmaf graphs and removes their temporary logs.

A :class:`ScoreRange` scores frames ``[first, stop)`` of aligned clips. For exact per-frame scores on a
slice of a longer title (``vsfilter.batch``), libvmaf is also fed ``context`` frames around the slice
and their scores are dropped: libvmaf's motion feature of frame i compares reference frames i-1 and
i, and its motion2 is the smaller of frame i's and frame i+1's motion, so a slice needs one reference
frame before it and one after it to score as the whole file does. With ``subsample = N`` libvmaf
scores every N-th frame it is fed (counting from the first one fed), so the slice starts on a multiple
of N and is fed N frames before it, which keeps the scored frames where a whole-file run puts them.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import vapoursynth as vs

from ..errors import CompareError, VmafError
from .scoring import Scores, VmafScorer, pix_fmt_for, vs_to_av

__all__ = ["STREAMS", "ScoreRange", "score_range"]

STREAMS = ("distorted", "prefiltered")
_TIME_BASE = Fraction(1, 1000)


@dataclass(frozen=True)
class ScoreRange:
    """Frames to score and how.

    Attributes:
        first, stop: the frames whose scores are wanted, ``[first, stop)``.
        vmaf_model: built-in VMAF model name or a model file path.
        subsample: score every N-th frame (frame numbers that are multiples of N).
        threads: libvmaf threads per graph; 0 = half the cores each.
        context: feed libvmaf the frames around ``[first, stop)`` needed for whole-file scores.
    """

    first: int
    stop: int
    vmaf_model: str = "vmaf_v0.6.1"
    subsample: int = 1
    threads: int = 0
    context: bool = False


def feed_range(rng: ScoreRange, length: int) -> tuple[int, int]:
    """The frames ``[start, end)`` fed to libvmaf for ``rng`` over clips of ``length`` frames."""
    if not rng.context:
        return rng.first, rng.stop
    if rng.first % rng.subsample:
        raise ValueError(f"a slice starting at frame {rng.first} is not aligned to subsample={rng.subsample}")
    return max(0, rng.first - rng.subsample), min(length, rng.stop + 1)


def score_range(ref: vs.VideoNode, dist: vs.VideoNode, pre: vs.VideoNode, rng: ScoreRange,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Scores]:
    """Per-frame and pooled scores of ``dist`` and ``pre`` against ``ref`` for ``rng``'s frames.

    Frame numbers in the result are those of the clips (``rng.first`` ...), never libvmaf's own.
    """
    start, end = feed_range(rng, ref.num_frames)
    pix_fmt = pix_fmt_for(ref.format)
    # One thread in all: libvmaf scores synchronously in the feeding thread (0 = no libvmaf threads).
    threads = 0 if rng.threads == 1 else rng.threads or max(1, (os.cpu_count() or 2) // 2)
    scorers: dict[str, VmafScorer] = {}
    try:
        for stream in STREAMS:
            scorers[stream] = VmafScorer(ref.width, ref.height, pix_fmt, _TIME_BASE, rng.vmaf_model,
                                         rng.subsample, threads)
        feeder = _Feeder(scorers, inline=rng.threads == 1)
        feeder.run(ref[start:end], dist[start:end], pre[start:end], pix_fmt, progress)
        results = {s: scorers[s].close() for s in STREAMS}
    except BaseException:
        for scorer in scorers.values():
            scorer.abort()
        raise
    return {s: _keep(r, start, rng.first, rng.stop) for s, r in results.items()}


def _keep(scores: Scores, offset: int, first: int, stop: int) -> Scores:
    """Renumber libvmaf's frames (0 = first fed) to clip frames and drop the context frames."""
    keep = [i for i, n in enumerate(scores.frame_numbers) if first <= n + offset < stop]
    if not keep:
        raise VmafError("libvmaf scored no frames in the range asked for")
    per_frame = {m: [v[i] for i in keep] for m, v in scores.per_frame.items()}
    return Scores([scores.frame_numbers[i] + offset for i in keep], per_frame,
                  scores.pooled if len(keep) == len(scores.frame_numbers) else None)


def _sequential(ref, dist, pre):
    """Frames one at a time, nothing rendered ahead: decoding, filtering and scoring take turns on
    one core (what a single-threaded worker should use; prefetching would spill onto others)."""
    for n in range(ref.num_frames):
        yield ref.get_frame(n), dist.get_frame(n), pre.get_frame(n)


class _Feeder:
    """Pushes frame pairs into one queue per scorer; each scorer drains its queue in its own thread.

    ``inline`` (a single-threaded budget, e.g. a one-thread Dask worker): no threads, the scorers are
    fed one after the other in the feeding thread, so the whole pair uses one core.
    """

    def __init__(self, scorers: dict[str, VmafScorer], inline: bool = False) -> None:
        self.scorers, self.inline = scorers, inline
        self.queues: dict[str, queue.Queue] = {s: queue.Queue(maxsize=8) for s in scorers}
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

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

    def run(self, ref, dist, pre, pix_fmt: str, progress) -> None:
        workers = [] if self.inline else [
            threading.Thread(target=self._work, args=(s,), daemon=True, name=f"vmaf-{s}") for s in self.scorers]
        for t in workers:
            t.start()
        total = ref.num_frames
        try:
            frames = _sequential(ref, dist, pre) if self.inline else zip(
                ref.frames(close=True), dist.frames(close=True), pre.frames(close=True))
            for n, (r, d, p) in enumerate(frames):
                if self.stop.is_set():
                    break
                ts = n * 40
                ref_av = vs_to_av(r, pix_fmt, ts, _TIME_BASE)
                self._put("distorted", (vs_to_av(d, pix_fmt, ts, _TIME_BASE), ref_av))
                self._put("prefiltered", (vs_to_av(p, pix_fmt, ts, _TIME_BASE), ref_av))
                if progress:
                    progress(n + 1, total)
            else:
                for s in self.scorers:
                    self._put(s, None)
        except vs.Error as exc:
            self.stop.set()
            raise CompareError(str(exc).strip().splitlines()[-1]) from None
        except BaseException:
            self.stop.set()
            raise
        finally:
            for t in workers:
                t.join(timeout=None if not self.stop.is_set() else 2.0)
        if self.errors:
            first = self.errors[0]
            if isinstance(first, CompareError):
                raise first
            raise CompareError(f"scoring failed: {first}") from None
