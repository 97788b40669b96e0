"""The work a Dask worker does for ``vsfilter.batch``: open a pair and score a frame range of it.

Tasks are pure functions of their arguments (they write nothing), so Dask may run one twice or move it
to another worker when a worker dies. Each opens its pair itself (the packet index is cached per
machine, so only the first open of a file indexes it) and uses the worker's thread count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..compare.options import CompareOptions
from ..reader.raw import RawFormat, is_raw_path
from .manifest import PairSpec

__all__ = ["Settings", "score_first", "score_chunk", "render_report", "chunk_bounds"]


@dataclass(frozen=True)
class Settings:
    """How every pair of a batch is scored.

    Attributes:
        options: the compare options (``reference_raw``/``distorted_raw`` there are ignored: use ``raw``).
        chunk_frames: split longer pairs into chunks of this many frames.
        raw: the geometry of every ``.yuv`` input.
        dist_raw: the geometry of ``.yuv`` distorted inputs, when it differs from ``raw``.
    """

    options: CompareOptions = field(default_factory=CompareOptions)
    chunk_frames: int = 2000
    raw: RawFormat | None = None
    dist_raw: RawFormat | None = None

    def options_for(self, pair: PairSpec) -> CompareOptions:
        """The options of one pair: the raw geometry applied to its ``.yuv`` inputs."""
        return self.options.with_(reference_raw=self.raw if is_raw_path(pair.reference) else None,
                                  distorted_raw=(self.dist_raw or self.raw) if is_raw_path(pair.distorted) else None)


def chunk_bounds(count: int, settings: Settings) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``chunk_frames`` frames (starts on multiples of subsample)."""
    n = settings.options.subsample
    size = max(n, -(-settings.chunk_frames // n) * n)
    return [(a, min(count, a + size)) for a in range(0, count, size)]


def _threads() -> int:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return 0


def _open(pair: PairSpec, options: CompareOptions, threads: int):
    import vsfilter  # noqa: F401  (openvino before vs.core)

    from ..compare.core import open_pair

    return open_pair(pair.reference, pair.distorted, options.with_(threads=threads))


def _scores(opened, start: int, stop: int) -> dict:
    from ..compare.pipeline import score_range

    scores = score_range(opened.ref, opened.dist, opened.pre, opened.score_range(start, stop, context=True))
    return {"start": start, "stop": stop,
            "streams": {s: {"frames": sc.frame_numbers, "per_frame": sc.per_frame, "told": sc.told}
                        for s, sc in scores.items()}}


def score_first(pair: PairSpec, settings: Settings) -> dict:
    """Open the pair, learn its length, and score its first chunk (one task for a short pair).

    Returns the frame count, the pair's record (model, notes, warnings, options), the options the other
    chunks must use (the offset as found, no second search) and the first chunk's scores.
    """
    from ..compare.core import pair_record

    opened = _open(pair, settings.options_for(pair), _threads())
    start, stop = chunk_bounds(opened.count, settings)[0]
    return {"count": opened.count, "record": pair_record(opened),
            "chunk_options": opened.options.with_(find_offset=0), "chunk": _scores(opened, start, stop)}


def score_chunk(pair: PairSpec, options: CompareOptions, start: int, stop: int) -> dict:
    """Scores of frames ``[start, stop)`` of the pair, exactly as a whole-file run gives them."""
    return _scores(_open(pair, options, _threads()), start, stop)


def render_report(pair: PairSpec, options: CompareOptions, result: dict) -> str:
    """The HTML report page of a scored pair (frames fetched from the pair's clips)."""
    from ..compare.core import CompareResult
    from ..compare.html import render_report as render

    fields = {k: v for k, v in result.items() if k != "schema_version"}
    return render(CompareResult(**fields), _open(pair, options, _threads()))
