"""Codec round trips through PyAV's FFmpeg: the encoders training varies, their options, and one
encode/decode of a clip's luma (8-bit, or 10-bit codes encoded at 10 bits; identity is a pseudo-encoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .cli import UsageError

#: Frame rate of every training clip.
RATE = 25


def parse_crf_ranges(items: list[str], flag: str) -> dict[str, tuple[int, int]]:
    """``ENCODER=LOW:HIGH`` items as {encoder: (low, high)}, each within its encoder's CRF scale
    (``flag`` names the option in messages)."""
    ranges = {}
    for item in items:
        try:
            name, span = item.split("=")
            lo, hi = (int(v) for v in span.split(":"))
        except ValueError:
            raise UsageError(f"{flag} {item!r} is not ENCODER=LOW:HIGH (e.g. libx264=24:44)") from None
        if name not in ENCODERS:
            raise UsageError(f"{flag} names {name!r}; encoders are {', '.join(ENCODERS)}")
        limit = ENCODERS[name].crf_limits
        if not limit[0] <= lo <= hi <= limit[1]:
            raise UsageError(f"{flag} {item}: {name} takes CRF {limit[0]}..{limit[1]} with LOW <= HIGH")
        ranges[name] = (lo, hi)
    return ranges


@dataclass(frozen=True)
class Encoder:
    """An encoder of PyAV's FFmpeg and how training varies it."""

    name: str
    decoder: str
    crf_limits: tuple[int, int]
    crf_default: tuple[int, int]
    presets: tuple[str, ...]
    gops: tuple[str, ...]


ENCODERS: dict[str, Encoder] = {e.name: e for e in (
    Encoder("libx264", "h264", (0, 51), (24, 44), ("veryfast", "medium", "slow"), ("bframes", "p-only", "short-gop")),
    Encoder("libx265", "hevc", (0, 51), (24, 44), ("fast", "medium"), ("bframes", "p-only", "short-gop")),
    Encoder("libsvtav1", "libdav1d", (1, 63), (35, 60), ("8", "10", "12"), ("random-access", "low-delay", "short-gop")),
    Encoder("libvpx-vp9", "vp9", (0, 63), (30, 55), ("good-3", "good-5", "realtime-8"), ("alt-ref", "low-delay")),
)}


#: The pseudo-encoder of identity pairs (source -> source): they teach the network to leave pixels alone.
IDENTITY = "identity"
#: Encoders that take 10-bit input in this FFmpeg build (VP9 is 8-bit only here).
TEN_BIT_ENCODERS = ("libx264", "libx265", "libsvtav1")


@dataclass(frozen=True)
class Encode:
    """One round trip's settings."""

    encoder: str
    crf: int
    preset: str
    gop: str


def encoder_options(encode: Encode, frames: int) -> dict[str, str]:
    """FFmpeg encoder options for ``encode`` (one thread: the round trips run in parallel processes)."""
    short = str(max(2, frames // 3))
    if encode.encoder == "libx264":
        params = {"bframes": "threads=1", "p-only": "bframes=0:threads=1",
                  "short-gop": f"keyint={short}:min-keyint={short}:threads=1"}[encode.gop]
        return {"crf": str(encode.crf), "preset": encode.preset, "x264-params": params}
    if encode.encoder == "libx265":
        params = {"bframes": "", "p-only": "bframes=0:", "short-gop": f"keyint={short}:min-keyint={short}:"}[encode.gop]
        return {"crf": str(encode.crf), "preset": encode.preset,
                "x265-params": params + "log-level=error:pools=none:frame-threads=1"}
    if encode.encoder == "libsvtav1":
        params = {"random-access": "", "low-delay": "pred-struct=1:", "short-gop": f"keyint={short}:"}[encode.gop]
        return {"crf": str(encode.crf), "preset": encode.preset, "svtav1-params": params + "lp=1"}
    deadline, cpu = encode.preset.split("-")
    return {"crf": str(encode.crf), "b": "0", "deadline": deadline, "cpu-used": cpu, "threads": "1",
            "lag-in-frames": "0" if encode.gop == "low-delay" else "25"}


def luma_frame(luma: np.ndarray, pts: int, time_base: Fraction):
    """A yuv420p (uint8 ``luma``) or yuv420p10le (uint16 ``luma`` of 10-bit codes) ``av.VideoFrame`` with
    neutral chroma, at ``pts``."""
    import av

    height, width = luma.shape
    ten = luma.dtype == np.uint16
    dtype = np.uint16 if ten else np.uint8
    frame = av.VideoFrame(width, height, "yuv420p10le" if ten else "yuv420p")
    plane = frame.planes[0]
    np.frombuffer(plane, dtype).reshape(-1, plane.line_size // dtype().itemsize)[:height, :width] = luma
    for plane in frame.planes[1:]:
        np.frombuffer(plane, dtype)[:] = 512 if ten else 128
    frame.pts, frame.time_base = pts, time_base
    return frame


def decoded_luma(frame, height: int, width: int) -> np.ndarray:
    """The luma plane of a decoded 8-bit (uint8) or 10-bit (uint16) frame, ``height`` x ``width``."""
    plane = frame.planes[0]
    dtype = np.uint16 if frame.format.name.endswith(("10le", "10")) else np.uint8
    return np.frombuffer(plane, dtype).reshape(-1, plane.line_size // dtype().itemsize)[:height, :width].copy()


def round_trip(frames: np.ndarray, encode: Encode) -> np.ndarray:
    """Encode ``frames`` (N x H x W luma: uint8, or uint16 10-bit codes encoded at 10 bits; neutral chroma)
    and decode them again: the same shape and dtype. ``identity`` returns the frames as they are."""
    import av

    if encode.encoder == IDENTITY:
        return frames.copy()
    n, height, width = frames.shape
    ctx = av.CodecContext.create(encode.encoder, "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p10le" if frames.dtype == np.uint16 else "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, RATE), Fraction(RATE)
    ctx.options = encoder_options(encode, n)
    packets = []
    for i, luma in enumerate(frames):
        packets += ctx.encode(luma_frame(luma, i, Fraction(1, RATE)))
    packets += ctx.encode(None)
    decoder = av.CodecContext.create(ENCODERS[encode.encoder].decoder, "r")
    decoded = []
    for packet in packets + [None]:
        for frame in decoder.decode(packet):
            decoded.append(decoded_luma(frame, height, width))
    if len(decoded) != n:
        raise RuntimeError(f"{encode.encoder} returned {len(decoded)} of {n} frames")
    out = np.stack(decoded)
    if out.dtype != frames.dtype:
        raise RuntimeError(f"{encode.encoder} decoded {out.dtype} samples from {frames.dtype} input")
    return out


def check_encoders(codecs: list[str]) -> None:
    import av

    for name in codecs:
        if name not in ENCODERS:
            raise UsageError(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")
        for codec, mode in ((name, "w"), (ENCODERS[name].decoder, "r")):
            try:
                av.codec.Codec(codec, mode)
            except Exception:
                what = "encoder" if mode == "w" else "decoder"
                raise UsageError(f"this FFmpeg build (PyAV {av.__version__}) has no {codec} {what}; drop {name} "
                                 "from the encoder list or install a PyAV with it") from None
