"""``rd``: what the pre-filter is worth in bits, and encoder ladders compared, as BD-rate.

Every encode of a ladder is scored as ``vsfilter.compare`` scores it (the raw and the prefiltered
stream against the reference), on a Dask cluster with ``vsfilter.batch``'s runner (its resume: a
rerun reuses the scores of encodes made and scored with the same settings); its bitrate is its video
packets' bits over its duration. Each ladder gives two rate-quality curves per metric, raw and
prefiltered (the filter costs no bits: the same rates); BD-rate and BD-quality (``bdrate``) compare
prefiltered against raw on a ladder, and with a second ladder, one ladder against the other.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..compare.options import CompareOptions
from ..errors import RdError
from ..reader.raw import RawFormat
from .bdrate import MIN_POINTS, bd_quality, bd_rate
from .bitrate import StreamRate, video_bitrate
from .ladder import LadderSpec, encode_one, encode_paths

__all__ = ["Ladder", "RdResult", "run_rd", "make_ladder", "check_ladder", "BD_METRICS_EXCLUDED", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
#: Metrics without a BD figure: lower is better (banding).
BD_METRICS_EXCLUDED = ("cambi",)
#: The two ladders a run may have: ``encode`` (the one under test) and ``against`` (its anchor).
ROLES = ("encode", "against")


@dataclass
class Ladder:
    """The encodes of one ladder (``role``: ``encode`` or ``against``), named by what made them."""

    role: str
    name: str
    paths: list[str]


@dataclass
class RdResult:
    """A rate-distortion comparison: ``to_dict()`` is the JSON document (docs/compare.md, ``rd``)."""

    reference: str
    ladders: list[Ladder]
    encodes: list[dict]
    metrics: list[str]
    bd_rate: dict
    bd_quality: dict
    model: dict
    vmaf_model: str
    options: dict
    resumed: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "tool": "vsfilter.rd", "reference": self.reference,
                "ladders": {lad.role: {"name": lad.name, "encodes": list(lad.paths)} for lad in self.ladders},
                "encodes": self.encodes, "metrics": self.metrics, "bd_rate": self.bd_rate,
                "bd_quality": self.bd_quality, "model": self.model, "vmaf_model": self.vmaf_model,
                "options": self.options, "warnings": self.warnings}

    def curve(self, role: str, stream: str, metric: str) -> list[tuple[float, float]]:
        """(kbps, mean quality) of one ladder's encodes, by rate."""
        return sorted((e["bitrate_kbps"], e["pooled"][stream][metric]) for e in self.encodes if e["ladder"] == role)


def check_ladder(ladder: Ladder) -> None:
    """Refuse a ladder BD-rate cannot use, before anything is scored: fewer than 4 encodes, one twice."""
    if len(ladder.paths) < MIN_POINTS:
        raise RdError(f"ladder {ladder.name}: {len(ladder.paths)} encode(s); BD-rate needs at least {MIN_POINTS}")
    seen = {os.path.realpath(p) for p in ladder.paths}
    if len(seen) != len(ladder.paths):
        raise RdError(f"ladder {ladder.name}: an encode is given twice")


def make_ladder(client, reference: str, spec: LadderSpec, role: str, raw: RawFormat | None = None) -> Ladder:
    """Encode ``spec`` from ``reference`` on ``client``'s cluster (encodes already in the cache are kept)."""
    paths = [str(p) for p in encode_paths(reference, spec, raw)]
    futures = client.map(encode_one, [reference] * len(paths), [spec.encoder] * len(paths), list(spec.crfs), paths,
                         [raw] * len(paths), pure=False)
    try:
        client.gather(futures)
    except RdError:
        raise
    except Exception as exc:
        raise RdError(f"ladder {spec.name}: encoding failed ({' '.join(str(exc).split())[:200]})") from None
    return Ladder(role, spec.name, paths)


def _pair_id(path: str) -> str:
    """A batch pair id for an encode: its stem and a digest of its path, size and modification time (a
    re-encoded file at the same path is scored again)."""
    stat = os.stat(path)
    digest = hashlib.sha256(repr((os.path.realpath(path), stat.st_size, stat.st_mtime_ns)).encode()).hexdigest()
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(path).stem)[:80] or "encode"
    return f"{stem}.{digest[:12]}"


def run_rd(reference: str, ladders: list[Ladder], options: CompareOptions, *, client, raw: RawFormat | None = None,
           progress: Callable[[int, int], None] | None = None) -> RdResult:
    """Score every encode of ``ladders`` against ``reference`` and compute the BD figures.

    Args:
        reference: the reference video.
        ladders: one ladder (``encode``) or two (``encode`` and ``against``), each of 4+ encodes.
        options: compare's options (the pre-filter, the VMAF models, ...).
        client: a ``distributed.Client``.
        raw: the reference's raw YUV geometry, when it is a ``.yuv`` file.
        progress: ``progress(frames_done, frames_known)``.

    Raises:
        RdError: an encode that cannot be scored or has no bitrate, or a curve BD-rate rejects.
    """
    from ..batch.manifest import PairSpec
    from ..batch.runner import run_batch
    from ..batch.tasks import Settings
    from ..cache import cache_dir

    for ladder in ladders:
        check_ladder(ladder)
    rates: dict[str, StreamRate] = {p: video_bitrate(p) for lad in ladders for p in lad.paths}
    pairs = {p: PairSpec(_pair_id(p), os.path.abspath(reference), os.path.abspath(p))
             for lad in ladders for p in lad.paths}
    settings = Settings(options, raw=raw)
    out_dir = cache_dir("rd", "scores")
    outcomes = run_batch(list(pairs.values()), out_dir, settings, client=client, progress=progress)
    failed = next((o for o in outcomes if o.status == "error"), None)
    if failed is not None:
        raise RdError(f"encode {failed.pair.distorted}: {failed.error}")
    results: dict[str, dict] = {o.pair.distorted: o.result for o in outcomes if o.result is not None}
    encodes = []
    for lad in ladders:
        for p in lad.paths:
            doc, rate = results[os.path.abspath(p)], rates[p]
            encodes.append({"path": p, "ladder": lad.role, "bitrate_kbps": rate.bitrate_kbps, "bits": rate.bits,
                            "frames": rate.frames, "fps": rate.fps, "duration_s": rate.duration_s,
                            "frames_scored": doc["frames"], "pooled": doc["pooled"], "delta": doc["delta"],
                            "verdict": doc["verdict"]})
    first = results[os.path.abspath(ladders[0].paths[0])]
    metrics = [m for m in first["delta"] if m not in BD_METRICS_EXCLUDED]
    result = RdResult(str(reference), ladders, encodes, metrics, {}, {}, first["model"], first["vmaf_model"],
                      first["options"], resumed=sum(o.status == "resumed" for o in outcomes))
    result.bd_rate, result.bd_quality = _bd_figures(result)
    return result


def _bd_figures(result: RdResult) -> tuple[dict, dict]:
    """(bd_rate, bd_quality): prefiltered vs distorted on the ``encode`` ladder, and the ``encode`` ladder
    vs the ``against`` ladder (raw and prefiltered), per metric."""
    names = {lad.role: lad.name for lad in result.ladders}
    out: tuple[dict, dict] = ({}, {})
    for figure, fn in zip(out, (bd_rate, bd_quality)):
        figure["prefiltered_vs_distorted"] = {
            m: fn(result.curve("encode", "distorted", m), result.curve("encode", "prefiltered", m),
                  (f"ladder {names['encode']} (distorted {m})", f"ladder {names['encode']} (prefiltered {m})"))
            for m in result.metrics}
        if "against" in names:
            figure["vs_against"] = {s: {m: fn(result.curve("against", s, m), result.curve("encode", s, m),
                                              (f"ladder {names['against']} ({s} {m})",
                                               f"ladder {names['encode']} ({s} {m})"))
                                        for m in result.metrics} for s in ("distorted", "prefiltered")}
    return out
