"""Raw planar YUV files (``.yuv``), as the vmaf CLI and FFmpeg's ``-f rawvideo`` read them.

A raw file has no header: its geometry is given (:class:`RawFormat`). Frames are read straight from a
memory map, so frame ``n`` is bytes ``[n * frame_bytes, (n + 1) * frame_bytes)`` whatever the request
order: frame-exact by construction. Samples above 8 bits are little-endian 16-bit words
(``yuv420p10le`` and friends). A file whose size is not a whole number of frames, or that starts like a
container (Y4M, MP4, Matroska, ...), is refused: reading a compressed file as raw gives garbage scores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import SourceError, vs_error

__all__ = ["RawFormat", "PIXEL_FORMATS", "BIT_DEPTHS", "as_raw_format", "is_raw_path", "raw_source"]

#: Chroma layouts: name -> (log2 horizontal, log2 vertical) subsampling.
PIXEL_FORMATS = {"420": (1, 1), "422": (1, 0), "444": (0, 0)}
BIT_DEPTHS = (8, 10, 12, 16)
DEFAULT_FPS = Fraction(24)
#: The first bytes of files that are not raw video (Y4M, MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, IVF).
_MAGIC = {b"YUV4MPEG2": "a Y4M file", b"\x1aE\xdf\xa3": "a Matroska/WebM file", b"RIFF": "an AVI file",
          b"DKIF": "an IVF file", b"\x00\x00\x01\xba": "an MPEG program stream"}


def is_raw_path(path: str | os.PathLike) -> bool:
    """Whether a path names a raw YUV file by its suffix (``.yuv``)."""
    return Path(os.fspath(path)).suffix.lower() == ".yuv"


@dataclass(frozen=True)
class RawFormat:
    """The geometry of a raw YUV file.

    Attributes:
        width, height: the frame size in pixels.
        pixel_format: chroma layout, ``420``, ``422`` or ``444`` (``yuv420p`` etc. are accepted too).
        bitdepth: 8, 10, 12 or 16 (above 8: little-endian 16-bit samples).
        fps: the frame rate (default 24 when nothing else says).
    """

    width: int
    height: int
    pixel_format: str = "420"
    bitdepth: int = 8
    fps: Fraction | None = None

    def __post_init__(self) -> None:
        name = str(self.pixel_format).lower().removeprefix("yuv").removesuffix("p")
        object.__setattr__(self, "pixel_format", name)
        for what in ("width", "height"):
            value = getattr(self, what)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SourceError(f"raw YUV: {what} must be a positive whole number of pixels, got {value!r}")
        if name not in PIXEL_FORMATS:
            raise SourceError(f"raw YUV: pixel format {self.pixel_format!r} is not one of "
                              f"{', '.join(PIXEL_FORMATS)}")
        if self.bitdepth not in BIT_DEPTHS:
            raise SourceError(f"raw YUV: bit depth {self.bitdepth!r} is not one of "
                              f"{', '.join(map(str, BIT_DEPTHS))}")
        sw, sh = PIXEL_FORMATS[name]
        if self.width % (1 << sw) or self.height % (1 << sh):
            raise SourceError(f"raw YUV: {self.width}x{self.height} does not fit 4:{name[1]}:{name[2]} chroma "
                              f"(width must be a multiple of {1 << sw}, height of {1 << sh})")
        if self.fps is not None:
            try:
                fps = Fraction(self.fps)
            except (TypeError, ValueError):
                raise SourceError(f"raw YUV: fps {self.fps!r} is not a number") from None
            if fps <= 0:
                raise SourceError(f"raw YUV: fps must be > 0, got {self.fps!r}")
            object.__setattr__(self, "fps", fps)

    @property
    def ffmpeg_pix_fmt(self) -> str:
        """FFmpeg's name of the layout: ``yuv420p``, ``yuv444p10le``, ..."""
        return f"yuv{self.pixel_format}p" + ("" if self.bitdepth == 8 else f"{self.bitdepth}le")

    @property
    def plane_shapes(self) -> list[tuple[int, int]]:
        sw, sh = PIXEL_FORMATS[self.pixel_format]
        chroma = (self.height >> sh, self.width >> sw)
        return [(self.height, self.width), chroma, chroma]

    @property
    def frame_bytes(self) -> int:
        per_sample = 1 if self.bitdepth == 8 else 2
        return sum(h * w for h, w in self.plane_shapes) * per_sample

    def describe(self) -> str:
        return f"{self.width}x{self.height} {self.ffmpeg_pix_fmt}"

    def with_fps(self, fps: Fraction | None) -> RawFormat:
        """This geometry at ``fps`` when it has no rate of its own."""
        return self if self.fps is not None or fps is None else replace(self, fps=Fraction(fps))


def as_raw_format(raw: RawFormat | dict) -> RawFormat:
    """A :class:`RawFormat` from itself or from a dict of its fields (``{"width": 352, "height": 288}``)."""
    if isinstance(raw, RawFormat):
        return raw
    if isinstance(raw, dict):
        known = {f.name for f in fields(RawFormat)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SourceError(f"raw YUV: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(known)}")
        if "width" not in raw or "height" not in raw:
            raise SourceError("raw YUV: the width and the height are needed (a raw file has no header)")
        return RawFormat(**raw)
    raise SourceError(f"raw must be a RawFormat or a dict of its fields, not {type(raw).__name__}")


def _check_file(path: Path, fmt: RawFormat) -> int:
    """The number of frames in ``path``; refuses files that cannot be raw video of ``fmt``."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise SourceError(f"{path} does not exist") from None
    except OSError as exc:
        raise SourceError(f"{path} cannot be read ({exc.strerror or exc})") from None
    what = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    if what is None and head[4:8] == b"ftyp":
        what = "an MP4/MOV file"
    if what is None and size >= 189 and head[:1] == b"G":
        with path.open("rb") as fh:
            fh.seek(188)
            what = "an MPEG-TS file" if fh.read(1) == b"G" else None
    if what is not None:
        raise SourceError(f"{path} is {what}, not raw YUV; open it without a raw geometry")
    if size == 0 or size % fmt.frame_bytes:
        raise SourceError(f"{path} is {size} bytes, not a whole number of {fmt.frame_bytes}-byte frames of "
                          f"{fmt.describe()}; check the width, height, pixel format and bit depth")
    return size // fmt.frame_bytes


def raw_source(path: str | os.PathLike, raw: RawFormat | dict):
    """A raw YUV file as a VapourSynth clip (``vs.Error('source: ...')`` on bad geometry)."""
    import vapoursynth as vs

    try:
        fmt = as_raw_format(raw)
        path = Path(os.fspath(path))
        count = _check_file(path, fmt)
    except SourceError as exc:
        raise vs_error("source", exc) from None
    fps = fmt.fps or DEFAULT_FPS
    sw, sh = PIXEL_FORMATS[fmt.pixel_format]
    family = vs.core.query_video_format(vs.YUV, vs.INTEGER, fmt.bitdepth, sw, sh)
    dtype = np.dtype("<u2") if fmt.bitdepth > 8 else np.dtype(np.uint8)
    data = np.memmap(path, dtype=dtype, mode="r")
    samples = [h * w for h, w in fmt.plane_shapes]
    per_frame = sum(samples)
    starts = np.concatenate([[0], np.cumsum(samples)[:-1]])
    blank = vs.core.std.BlankClip(format=family.id, width=fmt.width, height=fmt.height, length=count,
                                  fpsnum=fps.numerator, fpsden=fps.denominator, keep=True)

    def read(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        base = n * per_frame
        for p, ((h, w), start) in enumerate(zip(fmt.plane_shapes, starts)):
            np.asarray(out[p])[...] = data[base + start: base + start + h * w].reshape(h, w)
        props = out.props
        props["_DurationNum"], props["_DurationDen"] = fps.denominator, fps.numerator
        props["_AbsoluteTime"] = float(n / fps)
        props["_FieldBased"] = 0
        props["_SARNum"], props["_SARDen"] = 1, 1
        return out

    return blank.std.ModifyFrame(blank, read)
