"""Encoder ladders made from the reference: ``--encode libx264:22,27,32,37`` encodes the reference once
per CRF with PyAV's encoders (x264, x265, SVT-AV1, libvpx-vp9; at 10 bits where the reference has more
than 8, 8-bit VP9 excepted), into the user cache directory, never next to the user's files. An encode
is named by what made it (the reference's path, size and modification time, the encoder, its settings
and the CRF), so a rerun reuses it and a changed reference makes new ones.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..errors import RdError
from ..reader.raw import RawFormat

if TYPE_CHECKING:
    from av.video.stream import VideoStream

__all__ = ["LadderSpec", "ENCODERS", "parse_ladder", "encode_paths", "encode_one"]

#: Encoder -> (CRF range, options at every rung). One thread per encode: a ladder's encodes run in
#: parallel on the cluster's one-thread workers.
ENCODERS: dict[str, tuple[tuple[int, int], dict[str, str]]] = {
    "libx264": ((0, 51), {"preset": "medium", "threads": "1"}),
    "libx265": ((0, 51), {"preset": "medium", "x265-params": "log-level=error:pools=none:frame-threads=1"}),
    "libsvtav1": ((1, 63), {"preset": "8", "svtav1-params": "lp=1"}),
    "libvpx-vp9": ((0, 63), {"b": "0", "deadline": "good", "cpu-used": "4", "threads": "1", "row-mt": "0"}),
}
#: Encoders that take more than 8 bits per sample in this FFmpeg build.
HIGH_BIT_DEPTH = ("libx264", "libx265", "libsvtav1")
#: Bumped when the way encodes are made changes (it is part of their names).
LADDER_VERSION = 1


@dataclass(frozen=True)
class LadderSpec:
    """One ``--encode ENCODER:CRF,CRF,...``: the encoder and its CRFs, in the order given."""

    encoder: str
    crfs: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.encoder}:{','.join(map(str, self.crfs))}"


def parse_ladder(text: str) -> LadderSpec:
    """``ENCODER:CRF,CRF,...`` as a :class:`LadderSpec` (checked against the encoder's CRF range and this
    FFmpeg build)."""
    import av

    name, sep, crfs = text.partition(":")
    if not sep or name not in ENCODERS:
        raise RdError(f"ladder {text!r}: give ENCODER:CRF,CRF,... with an encoder of {', '.join(ENCODERS)} "
                      "(e.g. libx264:22,27,32,37)")
    try:
        values = tuple(int(v) for v in crfs.split(","))
    except ValueError:
        raise RdError(f"ladder {text!r}: the CRFs must be whole numbers separated by commas") from None
    lo, hi = ENCODERS[name][0]
    bad = [v for v in values if not lo <= v <= hi]
    if bad:
        raise RdError(f"ladder {text!r}: {name} takes CRF {lo}..{hi}, not {bad[0]}")
    if len(set(values)) != len(values):
        raise RdError(f"ladder {text!r}: a CRF is given twice")
    try:
        av.codec.Codec(name, "w")
    except Exception:
        raise RdError(f"ladder {text!r}: this FFmpeg build (PyAV {av.__version__}) has no {name} encoder") from None
    return LadderSpec(name, values)


def _key(reference: Path, raw: RawFormat | None, encoder: str, crf: int) -> str:
    stat = reference.stat()
    text = repr((str(reference.resolve()), stat.st_size, stat.st_mtime_ns, raw, encoder, crf,
                 sorted(ENCODERS[encoder][1].items()), LADDER_VERSION))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_paths(reference: str | os.PathLike, ladder: LadderSpec, raw: RawFormat | None = None) -> list[Path]:
    """Where each rung of ``ladder`` made from ``reference`` lives in the cache (made or not)."""
    from ..cache import cache_dir

    ref = Path(reference)
    folder = cache_dir("rd", "encodes")
    return [folder / f"{ref.stem}.{ladder.encoder}.crf{crf}.{_key(ref, raw, ladder.encoder, crf)}.mkv"
            for crf in ladder.crfs]


def encode_one(reference: str, encoder: str, crf: int, path: str, raw: RawFormat | None = None) -> str:
    """Encode ``reference`` with ``encoder`` at ``crf`` into ``path`` (atomically; kept if it exists).
    A Dask task: a pure function of its arguments."""
    import av
    import vapoursynth as vs

    from ..atomic import atomic_output
    from ..compare.scoring import pix_fmt_for, vs_to_av
    from ..reader import source

    target = Path(path)
    if target.is_file():
        return path
    clip = source(reference, raw=raw, quantizer=False)  # a reference: its QPs are never read
    if clip.format.color_family != vs.YUV:
        raise RdError(f"{reference}: {clip.format.name} video; a ladder is encoded from YUV")
    pix_fmt = pix_fmt_for(clip.format)
    if clip.format.bits_per_sample > 8 and encoder not in HIGH_BIT_DEPTH:
        raise RdError(f"{encoder} in this FFmpeg encodes 8-bit video only; the reference is "
                      f"{clip.format.bits_per_sample}-bit: use libx264, libx265 or libsvtav1")
    rate = Fraction(clip.fps) if clip.fps > 0 else Fraction(25)
    time_base = 1 / rate
    options = dict(ENCODERS[encoder][1]) | {"crf": str(crf)}
    with atomic_output(target) as tmp, av.open(str(tmp), "w", format="matroska") as out:
        stream = cast("VideoStream", out.add_stream(encoder, rate=rate, options=options))
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, pix_fmt
        for n, frame in enumerate(clip.frames(close=True)):
            for packet in stream.encode(vs_to_av(frame, pix_fmt, n, time_base)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
