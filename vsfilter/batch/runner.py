"""``run_batch``: score many pairs, and long titles in chunks, on a Dask cluster; stitch exact results.

The client submits one ``score_first`` task per pair (it opens the pair, learns its length and scores
its first chunk), then one ``score_chunk`` task per further chunk. Results are stitched by frame
number, pooled the way libvmaf pools, and written as each pair completes: ``<id>.json`` in compare's
schema, and with ``report`` its HTML page. A rerun with the same output folder skips the pairs whose
JSON is already there (resume). Dask reschedules the tasks of a worker that dies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write_text
from ..compare.pipeline import STREAMS
from ..compare.scoring import METRICS, Scores
from ..cpus import cpu_count
from ..errors import BatchError
from ..models import resolve_model
from .manifest import PairSpec
from .tasks import Settings, chunk_bounds, render_report, score_chunk, score_first

__all__ = ["BatchError", "PairOutcome", "run_batch", "stitch", "start_client"]


@dataclass
class PairOutcome:
    """How one pair ended: ``ok`` (with its JSON document), ``error`` (one line), or ``resumed``."""

    pair: PairSpec
    status: str
    error: str = ""
    result: dict | None = None


@dataclass
class _Pending:
    pair: PairSpec
    count: int = 0
    head: dict = field(default_factory=dict)
    chunks: dict[int, dict] = field(default_factory=dict)
    expected: int = 0


def stitch(chunks: list[dict]) -> dict[str, Scores]:
    """Per-stream scores of a title from its chunks' scores (each frame exactly once, in order)."""
    out = {}
    for stream in STREAMS:
        frames: list[int] = []
        ordered = sorted(chunks, key=lambda c: c["start"])
        metrics = list(ordered[0]["streams"][stream]["per_frame"]) if ordered else list(METRICS)
        per_frame: dict[str, list[float]] = {m: [] for m in metrics}
        told: list[dict] = []
        for chunk in ordered:
            part = chunk["streams"][stream]
            frames += part["frames"]
            for metric in metrics:
                per_frame[metric] += part["per_frame"][metric]
            told += part["told"] or [{}] * len(part["frames"])  # a chunk whose frames said nothing
        if frames != sorted(set(frames)):
            raise BatchError("chunks overlap or are out of order; this is a bug")
        out[stream] = Scores(frames, per_frame, None, told if any(told) else [])
    return out


def _completed(path: Path, expected: dict) -> dict | None:
    """The pair's JSON from an earlier run, when it is complete and was made with these settings.

    ``expected`` is what the result must record: the inputs, the model's sha256 and every scoring option
    (:func:`expected_record`); anything else (another precision, backend, VMAF model, subsample, tile
    size, offset, a retrained model file) is recomputed.
    """
    try:
        doc = json.loads(path.read_text())
        frames = [row["frame"] for row in doc["per_frame"]]
        options = doc["options"]
        same = (doc["reference"] == expected["reference"] and doc["distorted"] == expected["distorted"]
                and doc["model"]["sha256"] == expected["sha256"] and options == expected["options"]
                and len(frames) == doc["frames"] > 0 and all(f % options["subsample"] == 0 for f in frames)
                and (len(frames) < 2 or frames[1] - frames[0] == options["subsample"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return doc if same else None


def expected_record(pair: PairSpec, settings: Settings, sha256: str) -> dict:
    """What a reusable result of ``pair`` records (see :func:`_completed`)."""
    return {"reference": pair.reference, "distorted": pair.distorted, "sha256": sha256,
            "options": settings.options_for(pair).describe()}


def start_client(scheduler: str | None, workers: int | None):
    """(client, cluster or None): a Client of ``scheduler``, or of a new LocalCluster of processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise BatchError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
                             "`dask scheduler`, or leave the scheduler out for a local cluster") from None
    import dask

    n = workers or cpu_count()
    # The workers' sampling profiler costs time and briefly keeps task frames (and what they hold) alive;
    # the nanny's MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap threshold, so every frame-sized
    # buffer is mmapped, page-faulted and unmapped again (measured: a pair 12% slower than in-process).
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    with dask.config.set({"distributed.worker.profile.enabled": False, "distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=50)
    return Client(cluster), cluster


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def _core_threads_plugin():
    """The :class:`CoreThreads` worker plugin (distributed is imported only when a batch runs)."""
    from distributed import WorkerPlugin

    class CoreThreads(WorkerPlugin):
        """Each worker's VapourSynth core runs as many threads as the worker has (a one-thread worker is
        one core's worth of work), set once when the worker starts."""

        name = "vsfilter-core-threads"

        def setup(self, worker) -> None:
            import vapoursynth as vs

            import vsfilter  # noqa: F401  (openvino before vs.core)

            vs.core.num_threads = max(1, int(worker.state.nthreads))

    return CoreThreads()


def run_batch(pairs: list[PairSpec], out_dir: Path, settings: Settings, *, client, report: bool = False,
              progress: Callable[[int, int], None] | None = None,
              on_pair: Callable[[PairOutcome], None] | None = None) -> list[PairOutcome]:
    """Score ``pairs`` on ``client``'s cluster; write ``<id>.json`` (and ``<id>.html``) as each completes.

    Args:
        pairs: the manifest's pairs.
        out_dir: the output folder (it exists).
        settings: compare options and the chunk length.
        client: a ``distributed.Client``.
        report: also render each pair's HTML report (compare --report's page).
        progress: ``progress(frames_done, frames_known)`` as chunks complete.
        on_pair: called as each pair ends.

    Returns:
        One outcome per pair, in manifest order.
    """
    from distributed import as_completed

    outcomes: dict[str, PairOutcome] = {}
    pending: dict[str, _Pending] = {}
    futures = as_completed()
    done_frames = known_frames = 0

    def finish(outcome: PairOutcome) -> None:
        outcomes[outcome.pair.id] = outcome
        pending.pop(outcome.pair.id, None)
        if on_pair:
            on_pair(outcome)

    meta: dict[str, tuple[str, str]] = {}  # future key -> (kind, pair id)

    def submit(kind: str, pair_id: str, fn, *args) -> None:
        future = client.submit(fn, *args, key=f"{kind}-{pair_id}-{os.urandom(6).hex()}")
        meta[future.key] = (kind, pair_id)
        futures.add(future)

    sha256 = resolve_model(settings.options.model).identity  # what results record as model.sha256
    plugin = _core_threads_plugin()
    client.register_plugin(plugin, name=plugin.name)
    for pair in pairs:
        previous = _completed(out_dir / f"{pair.id}.json", expected_record(pair, settings, sha256))
        if previous is not None and (not report or (out_dir / f"{pair.id}.html").is_file()):
            finish(PairOutcome(pair, "resumed", result=previous))
            continue
        pending[pair.id] = _Pending(pair)
        submit("first", pair.id, score_first, pair, settings)
    for future in futures:
        kind, pair_id = meta.pop(future.key)
        state = pending.get(pair_id)
        if state is None:
            continue
        try:
            value = future.result()
        except Exception as exc:  # the task's own error, one line
            finish(PairOutcome(state.pair, "error", error=_one_line(exc)))
            continue
        if kind == "report":
            atomic_write_text(out_dir / f"{pair_id}.html", value)
            finish(PairOutcome(state.pair, "ok", result=state.head["result"]))
            continue
        if kind == "first":
            state.count, state.head = value["count"], value
            bounds = chunk_bounds(state.count, settings)
            state.expected = len(bounds)
            known_frames += state.count
            for a, b in bounds[1:]:
                submit("chunk", pair_id, score_chunk, state.pair, value["chunk_options"], a, b)
            value = value["chunk"]
        state.chunks[value["start"]] = value
        done_frames += value["stop"] - value["start"]
        if progress:
            progress(done_frames, known_frames)
        if len(state.chunks) == state.expected:
            result = _write_result(state, out_dir)
            if report:
                state.head["result"] = result
                submit("report", pair_id, render_report, state.pair, state.head["chunk_options"], result)
            else:
                finish(PairOutcome(state.pair, "ok", result=result))
    return [outcomes[p.id] for p in pairs]


def _write_result(state: _Pending, out_dir: Path) -> dict:
    from ..compare.core import result_from_scores
    from ..compare.report import to_json

    scores = stitch(list(state.chunks.values()))
    result = result_from_scores(state.pair.reference, state.pair.distorted, state.head["record"], scores)
    doc = to_json(result)
    atomic_write_text(out_dir / f"{state.pair.id}.json", json.dumps(doc, indent=2) + "\n")
    return doc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[-1].split()) if lines and "Traceback" in str(exc) else text
