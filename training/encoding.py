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


@dataclass
class RoundTrip:
    """A decoded round trip and what is known of its quantizer.

    Attributes:
        frames: the decoded luma, the input's shape and dtype.
        qp: per frame, the H.264-equivalent QP (``vsfilter.quantizer``) of each :data:`QP_BLOCK` x
            :data:`QP_BLOCK` block (float32 ``ceil(H/16) x ceil(W/16)``); NaN where nothing is known.
        qp_source: ``bitstream`` (the decoder's side data: H.264 per macroblock, VP9 per frame),
            ``encoder`` (the frame QP the encoder reports or was forced to: x265's per-frame log,
            SVT-AV1's CRF as qindex) or ``none`` (identity pairs).
        coded_bytes: per frame, the size of its coded packet; 0 for identity round trips (nothing was coded).
        keyframe: per frame, whether its packet is a keyframe.
    """

    frames: np.ndarray
    qp: np.ndarray
    qp_source: str
    coded_bytes: np.ndarray
    keyframe: np.ndarray

    @property
    def bits_per_pixel(self) -> np.ndarray:
        """Per frame, the coded rate around it (``vsfilter.qp_estimator.coded_bits_per_pixel``, the
        ``CodedBitsPerPixel`` prop ``vsfilter.source`` sets); NaN for identity round trips."""
        from vsfilter.qp_estimator import coded_bits_per_pixel

        if not self.coded_bytes.any():
            return np.full(len(self.frames), np.nan)
        return coded_bits_per_pixel(self.coded_bytes, self.keyframe, self.frames.shape[1] * self.frames.shape[2])


#: The block size of the stored quantizer maps (H.264's macroblock).
QP_BLOCK = 16
#: The quantizer kind each encoder's stream reports.
QP_KINDS = {"libx264": "h264", "libx265": "hevc", "libsvtav1": "av1", "libvpx-vp9": "vp9"}


def _block_shape(height: int, width: int) -> tuple[int, int]:
    return -(-height // QP_BLOCK), -(-width // QP_BLOCK)


def side_data_qp(frame, bits: int) -> np.ndarray | None:
    """The H.264-equivalent QP block map (16 px blocks) of a decoded frame's quantizer side data, or None."""
    from av.sidedata.sidedata import Type

    from vsfilter.quantizer import equivalent_map, side_data_props

    params = frame.side_data.get(Type.VIDEO_ENC_PARAMS)
    found = None if params is None else equivalent_map(side_data_props(params, frame.width), bits)
    if found is None:
        return None
    qmap, block = found
    shape = _block_shape(frame.height, frame.width)
    if not block:
        return np.full(shape, qmap[0, 0], np.float32)
    return qmap.astype(np.float32)[: shape[0], : shape[1]]


def _x265_frame_qps(log: str, frames: int) -> list[float] | None:
    """Per displayed frame, the QP x265's CSV log reports (POC order), or None."""
    import csv

    try:
        with open(log, newline="") as fh:
            rows = [{k.strip(): v.strip() for k, v in row.items() if k} for row in csv.DictReader(fh)]
        qps = {int(r["POC"]): float(r["QP"]) for r in rows}
    except (OSError, KeyError, ValueError):
        return None
    return [qps[i] for i in range(frames)] if all(i in qps for i in range(frames)) else None


def round_trip(frames: np.ndarray, encode: Encode) -> RoundTrip:
    """Encode ``frames`` (N x H x W luma: uint8, or uint16 10-bit codes encoded at 10 bits; neutral chroma)
    and decode them again: the same shape and dtype, with the quantizer of every frame (``RoundTrip``).
    ``identity`` returns the frames as they are."""
    import os
    import tempfile

    import av

    from vsfilter.quantizer import qp_equivalent

    n, height, width = frames.shape
    unknown = np.full((n, *_block_shape(height, width)), np.nan, np.float32)
    if encode.encoder == IDENTITY:
        return RoundTrip(frames.copy(), unknown, "none", np.zeros(n, np.int64), np.zeros(n, bool))
    bits = 10 if frames.dtype == np.uint16 else 8
    options = encoder_options(encode, n)
    with tempfile.TemporaryDirectory(prefix="vsfilter-rt-") as tmp:
        log = os.path.join(tmp, "x265.csv")
        if encode.encoder == "libx265":
            options["x265-params"] += f":csv={log}:csv-log-level=1"
        ctx = av.CodecContext.create(encode.encoder, "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p10le" if bits == 10 else "yuv420p"
        ctx.time_base, ctx.framerate = Fraction(1, RATE), Fraction(RATE)
        ctx.options = options
        packets = []
        for i, luma in enumerate(frames):
            packets += ctx.encode(luma_frame(luma, i, Fraction(1, RATE)))
        packets += ctx.encode(None)
        del ctx  # x265 completes its log when the encoder is freed
        x265_qps = _x265_frame_qps(log, n) if encode.encoder == "libx265" else None
    decoder = av.CodecContext.create(ENCODERS[encode.encoder].decoder, "r")
    decoder.options = {"export_side_data": "venc_params"}
    decoded, maps, coded, key = [], [], [], []
    sizes = {int(p.pts): (int(p.size), bool(p.is_keyframe)) for p in packets if p.pts is not None}
    for packet in packets + [None]:
        for frame in decoder.decode(packet):
            decoded.append(decoded_luma(frame, height, width))
            maps.append(side_data_qp(frame, bits))
            size, keyframe = sizes.get(int(frame.pts), (0, False)) if frame.pts is not None else (0, False)
            coded.append(size)
            key.append(keyframe)
    if len(decoded) != n:
        raise RuntimeError(f"{encode.encoder} returned {len(decoded)} of {n} frames")
    out = np.stack(decoded)
    if out.dtype != frames.dtype:
        raise RuntimeError(f"{encode.encoder} decoded {out.dtype} samples from {frames.dtype} input")
    rate = (np.array(coded, np.int64), np.array(key, bool))
    if all(m is not None for m in maps):
        return RoundTrip(out, np.stack(maps), "bitstream", *rate)
    qp = unknown
    if x265_qps is not None:
        # x265's log reports QPs on the 8-bit scale at every bit depth
        qp = np.stack([np.full(unknown.shape[1:], qp_equivalent("hevc", q), np.float32) for q in x265_qps])
    elif encode.encoder == "libsvtav1":  # SVT-AV1 maps CRF c to base qindex 4c (255 at 63)
        qindex = 255 if encode.crf >= 63 else 4 * encode.crf
        qp = np.full(unknown.shape, qp_equivalent("av1", qindex), np.float32)
    return RoundTrip(out, qp, "encoder" if not np.isnan(qp).all() else "none", *rate)


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
