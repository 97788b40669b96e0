"""The options of one comparison, in one typed object: what ``compare()``, the CLI, the HTML report and
``vsfilter.batch`` pass around, validate once, and record in every result (so a result made with other
settings is never taken for a fresh one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import CompareError, SourceError
from ..reader.raw import RawFormat, as_raw_format

__all__ = ["CompareOptions", "OFFSET_SEARCH_DEFAULT"]

#: How far (in frames, each way) the default offset check and ``find_offset`` without a value look.
OFFSET_SEARCH_DEFAULT = 5


def _int(name: str, value, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CompareError(f"{name} must be a whole number >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class CompareOptions:
    """How to compare a reference and a distorted stream.

    Attributes:
        model: the pre-filter: a registry id or an ``.onnx`` path.
        device: `vmaf_pre` device (``auto``, ``cpu``, ``cuda``, ``openvino``).
        precision: `vmaf_pre` precision.
        vmaf_model: a built-in libvmaf model (``vmaf_v0.6.1``, ``vmaf_v1.0.16_3d0h``, ...), ``auto`` (the
            4K model for references of 3840x2160 and up), ``v1`` (the VMAF v1 model for the reference's
            size and frame rate), a model file path; ``:phone`` after a v0 name applies libvmaf's phone
            transform (``vmaf_v0.6.1:phone``); several, comma-separated, are scored side by side.
        vmaf_10bit: measure VMAF v1 at 10 bits when the inputs have fewer (both converted as FFmpeg's
            ``format=yuv420p10le`` does), as Netflix specifies; False = the inputs' own bit depth.
        subsample: score every n-th frame; only those frames go through the pre-filter.
        threads: libvmaf threads per run and `vmaf_pre` threads; 0 = automatic.
        frames: score at most this many frames.
        scale: scale a distorted stream of another size to the reference size (bicubic); False = error.
        force: compare frame by frame even when the frame rates differ.
        tilesize: `vmaf_pre` tilesize (None = automatic, 0 = whole frames).
        dist_offset: pair distorted frame ``k + dist_offset`` with reference frame ``k`` (negative: the
            reference starts later).
        find_offset: search offsets up to this many frames each way and use the best (None = no search:
            ``dist_offset`` is used, and a clearly better offset only draws a warning).
        cambi: also score banding (libvmaf's CAMBI) of both streams (on frames at least 216 pixels wide
            or high; CAMBI refuses smaller ones).
        reference_raw, distorted_raw: geometry of raw YUV inputs (``.yuv``); a dict of
            :class:`~vsfilter.reader.raw.RawFormat` fields is accepted.
    """

    model: str = "learned_filter_v1"
    device: str = "auto"
    precision: str = "fp32"
    vmaf_model: str = "vmaf_v0.6.1"
    vmaf_10bit: bool = True
    subsample: int = 1
    threads: int = 0
    frames: int | None = None
    scale: bool = True
    force: bool = False
    tilesize: int | None = None
    dist_offset: int = 0
    find_offset: int | None = None
    cambi: bool = True
    reference_raw: RawFormat | None = None
    distorted_raw: RawFormat | None = None

    def __post_init__(self) -> None:
        _int("subsample", self.subsample, 1)
        _int("threads", self.threads, 0)
        _int("frames", self.frames, 1, allow_none=True)
        _int("tilesize", self.tilesize, 0, allow_none=True)
        _int("find_offset", self.find_offset, 0, allow_none=True)
        if not isinstance(self.dist_offset, int) or isinstance(self.dist_offset, bool):
            raise CompareError(f"dist_offset must be a whole number of frames, got {self.dist_offset!r}")
        if not isinstance(self.model, str):
            object.__setattr__(self, "model", str(self.model))
        for name in ("reference_raw", "distorted_raw"):
            value = getattr(self, name)
            if value is not None:
                try:
                    object.__setattr__(self, name, as_raw_format(value))
                except SourceError as exc:
                    raise CompareError(f"{name.split('_')[0]}: {exc}") from None

    def with_(self, **changes) -> CompareOptions:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)

    def describe(self) -> dict:
        """What a result records of these options (everything that changes a score; not ``threads``)."""
        out = asdict(self)
        out.pop("threads")
        for name in ("reference_raw", "distorted_raw"):
            raw = getattr(self, name)
            out[name] = None if raw is None else {**asdict(raw), "fps": None if raw.fps is None else str(raw.fps)}
        return out
