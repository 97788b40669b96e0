"""The work a Dask worker does for ``vsfilter.batch``: open a pair and score a frame range of it.

Tasks are pure functions of their arguments (they write nothing), so Dask may run one twice or move it
to another worker when a worker dies. Each opens its pair itself (the packet index is cached per
machine, so only the first open of a file indexes it) and uses the worker's thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

from .manifest import PairSpec

__all__ = ["Settings", "score_first", "score_chunk", "render_report", "chunk_bounds"]


@dataclass(frozen=True)
class Settings:
    """The compare options every pair of a batch is scored with."""

    model: str = "learned_filter_v1"
    device: str = "auto"
    precision: str = "fp32"
    vmaf_model: str = "vmaf_v0.6.1"
    subsample: int = 1
    chunk_frames: int = 2000
    tilesize: int | None = None


def chunk_bounds(count: int, settings: Settings) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``chunk_frames`` frames (starts on multiples of subsample)."""
    n = settings.subsample
    size = max(n, -(-settings.chunk_frames // n) * n)
    return [(a, min(count, a + size)) for a in range(0, count, size)]


def _threads() -> int:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return 0


def _open(pair: PairSpec, settings: Settings, threads: int):
    import vapoursynth as vs

    import vsfilter  # noqa: F401  (openvino before vs.core)

    from ..compare.core import open_pair

    if threads:
        vs.core.num_threads = threads
    return open_pair(pair.reference, pair.distorted, model=settings.model, device=settings.device,
                     precision=settings.precision, vmaf_model=settings.vmaf_model, subsample=settings.subsample,
                     threads=threads, tilesize=settings.tilesize)


def _scores(opened, settings: Settings, start: int, stop: int, threads: int) -> dict:
    from ..compare.pipeline import ScoreRange, score_range

    rng = ScoreRange(start, stop, settings.vmaf_model, settings.subsample, threads, context=True)
    scores = score_range(opened.ref, opened.dist, opened.pre, rng)
    return {"start": start, "stop": stop,
            "streams": {s: {"frames": sc.frame_numbers, "per_frame": sc.per_frame} for s, sc in scores.items()}}


def score_first(pair: PairSpec, settings: Settings) -> dict:
    """Open the pair, learn its length, and score its first chunk (one task for a short pair)."""
    threads = _threads()
    opened = _open(pair, settings, threads)
    start, stop = chunk_bounds(opened.count, settings)[0]
    return {"count": opened.count, "model": opened.plan.describe(), "notes": opened.notes,
            "warnings": opened.warnings, "chunk": _scores(opened, settings, start, stop, threads)}


def score_chunk(pair: PairSpec, settings: Settings, start: int, stop: int) -> dict:
    """Scores of frames ``[start, stop)`` of the pair, exactly as a whole-file run gives them."""
    threads = _threads()
    return _scores(_open(pair, settings, threads), settings, start, stop, threads)


def render_report(pair: PairSpec, settings: Settings, result: dict) -> str:
    """The HTML report page of a scored pair (frames fetched from the pair's clips)."""
    from ..compare.core import CompareResult
    from ..compare.html import render_report as render

    fields = {k: v for k, v in result.items() if k != "schema_version"}
    return render(CompareResult(**fields), _open(pair, settings, _threads()))
