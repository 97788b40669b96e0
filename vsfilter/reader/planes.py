"""Reading a PyAV frame's planes as numpy arrays, exactly as coded (no range stretch, no conversion)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import av
import numpy as np
from av.sidedata.sidedata import Type

from ..qp_estimator import PROP_RATE
from ..quantizer import PROP_CODEC, side_data_props

if TYPE_CHECKING:
    from .decoding import StreamInfo

__all__ = ["plane_array", "PlaneLayout", "layout_of", "frame_planes", "frame_props", "luma_u8", "PICT_TYPES"]

#: AVPictureType -> VapourSynth's _PictType.
PICT_TYPES = {1: "I", 2: "P", 3: "B", 4: "S", 5: "i", 6: "p", 7: "b"}


class PlaneLayout:
    """How a pixel format's planes map to a planar YUV/GRAY/RGB image.

    Attributes:
        family: ``"yuv"``, ``"gray"`` or ``"rgb"``.
        bits: bits per sample.
        ssw, ssh: chroma subsampling (log2) along width and height.
        interleaved_chroma: nv12/p010 style (one UV plane, split on read).
        plane_order: which coded plane gives output plane 0, 1, 2 (gbrp stores G, B, R).
        shift: right shift that brings a stored sample to ``bits`` (p010 keeps 10 bits in the top of 16).
    """

    def __init__(self, family: str, bits: int, ssw: int = 0, ssh: int = 0, interleaved_chroma: bool = False,
                 plane_order: tuple[int, ...] = (0, 1, 2), shift: int = 0) -> None:
        self.family, self.bits, self.ssw, self.ssh = family, bits, ssw, ssh
        self.interleaved_chroma, self.plane_order, self.shift = interleaved_chroma, plane_order, shift

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)


_SUBSAMPLING = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "440": (0, 1), "411": (2, 0)}


def layout_of(pix_fmt: str) -> PlaneLayout | None:
    """The layout of a PyAV pixel format name, or None when it is not supported."""
    name = pix_fmt
    if name.endswith("be"):
        return None  # big-endian: not produced by FFmpeg's decoders on this platform
    name = name.removesuffix("le")
    if name in ("gray", "gray8"):
        return PlaneLayout("gray", 8)
    if name.startswith("gray") and name[4:].isdigit():
        return PlaneLayout("gray", int(name[4:]))
    if name in ("nv12", "nv21"):
        return PlaneLayout("yuv", 8, 1, 1, interleaved_chroma=True)
    if name in ("p010", "p016", "p012"):
        bits = int(name[1:])
        return PlaneLayout("yuv", bits, 1, 1, interleaved_chroma=True, shift=16 - bits)
    if name.startswith("gbrp"):
        bits = int(name[4:]) if name[4:].isdigit() else 8
        return PlaneLayout("rgb", bits, plane_order=(2, 0, 1))
    for prefix in ("yuvj", "yuv"):
        if name.startswith(prefix) and name[len(prefix):len(prefix) + 3] in _SUBSAMPLING and \
                name[len(prefix) + 3:len(prefix) + 4] == "p":
            rest = name[len(prefix) + 4:]
            if rest and not rest.isdigit():
                return None
            ssw, ssh = _SUBSAMPLING[name[len(prefix):len(prefix) + 3]]
            return PlaneLayout("yuv", int(rest) if rest else 8, ssw, ssh)
    return None


def plane_array(frame: av.VideoFrame, index: int, dtype: np.dtype, width: int, height: int,
                components: int = 1) -> np.ndarray:
    """Coded plane ``index`` of ``frame`` as a ``height x width (x components)`` view (no copy)."""
    plane = frame.planes[index]
    itemsize = np.dtype(dtype).itemsize
    buf = np.frombuffer(plane, dtype=dtype)
    rows = buf.reshape(-1, plane.line_size // itemsize)[:height]
    if components == 1:
        return rows[:, :width]
    return rows[:, :width * components].reshape(height, width, components)


def luma_u8(frame: av.VideoFrame) -> np.ndarray:
    """The coded Y (or gray, or G) plane of ``frame`` scaled to 8 bits, as a new uint8 array."""
    layout = layout_of(frame.format.name)
    if layout is None:
        raise ValueError(f"unsupported pixel format {frame.format.name}")
    y = plane_array(frame, layout.plane_order[0], layout.dtype, frame.width, frame.height)
    down = layout.shift + layout.bits - 8
    return (y >> down).astype(np.uint8) if down else y.astype(np.uint8, copy=True)


def frame_planes(frame: av.VideoFrame, layout: PlaneLayout, copy: bool = True) -> list[np.ndarray]:
    """The frame as planar arrays in VapourSynth order (Y, U, V / R, G, B / Y), samples as coded.

    nv12/p010 chroma is split into U and V; p010's MSB-aligned samples are shifted down to 10 bits;
    gbrp's G, B, R planes are reordered to R, G, B. With ``copy=False`` the arrays are views of the
    frame's buffers where no conversion is needed (they keep the frame alive).
    """
    w, h = frame.width, frame.height
    cw, ch = (w + (1 << layout.ssw) - 1) >> layout.ssw, (h + (1 << layout.ssh) - 1) >> layout.ssh
    if layout.family == "gray":
        planes = [plane_array(frame, 0, layout.dtype, w, h)]
    elif layout.interleaved_chroma:
        uv = plane_array(frame, 1, layout.dtype, cw, ch, components=2)
        planes = [plane_array(frame, 0, layout.dtype, w, h), uv[..., 0], uv[..., 1]]
        if frame.format.name.startswith("nv21"):
            planes[1], planes[2] = planes[2], planes[1]
    else:
        sizes = [(w, h), (cw, ch), (cw, ch)] if layout.family == "yuv" else [(w, h)] * 3
        planes = [plane_array(frame, i, layout.dtype, *sizes[k]) for k, i in enumerate(layout.plane_order)]
    if layout.shift:
        return [p >> layout.shift for p in planes]
    return [p.copy() for p in planes] if copy else planes


def frame_props(frame: av.VideoFrame, layout: PlaneLayout, pix_fmt: str, info: StreamInfo, duration: int,
                since_first: int, rate: float | None = None) -> dict:
    """VapourSynth frame props of a decoded frame.

    Every frame gets every prop; unspecified colour values stay 2 (unspecified), an unspecified range is
    limited for YUV (FFmpeg's assumption) and full for RGB and yuvj, an unknown SAR is 1:1. Frames whose
    decoder exports its quantizer (H.264 and MPEG-2 per macroblock, VP9 per frame) also get ``QPMean``,
    ``QPKind``, ``QPBlockSize`` and, with a block map, ``QPMap`` and ``QPMapWidth``
    (``vsfilter.quantizer.side_data_props``). Every frame gets ``Codec`` (the stream's codec, FFmpeg's
    canonical name) and, with ``rate``, ``CodedBitsPerPixel`` (``vsfilter.qp_estimator``: what a
    quantizer estimate reads where the bitstream exports no quantizer).

    Args:
        frame: the decoded frame.
        layout: its plane layout.
        pix_fmt: its pixel format name.
        info: the stream's timing.
        duration: the frame's duration in time-base ticks.
        since_first: its PTS minus the first frame's, in ticks.
        rate: the coded bits per pixel around the frame (``coded_bits_per_pixel`` of the packet index).
    """
    rgb = layout.family == "rgb"
    full = frame.color_range == 2 or pix_fmt.startswith("yuvj") or rgb
    # _Range: 0 limited, 1 full (VapourSynth's and zimg's); the deprecated _ColorRange is the other
    # way round (0 full, 1 limited). Both are set so older scripts read the range too.
    props: dict = {"_Range": 1 if full else 0, "_ColorRange": 0 if full else 1}
    props["_Matrix"] = 0 if rgb else int(frame.colorspace or 2)
    props["_Primaries"] = int(frame.color_primaries or 2)
    props["_Transfer"] = int(frame.color_trc or 2)
    props["_ChromaLocation"] = max(0, int(frame.chroma_location or 1) - 1)
    props["_FieldBased"] = (2 if getattr(frame, "top_field_first", True) else 1) if frame.interlaced_frame else 0
    props["_PictType"] = PICT_TYPES.get(int(frame.pict_type), "U")
    dur = Fraction(int(duration)) * info.time_base
    props["_DurationNum"], props["_DurationDen"] = dur.numerator, dur.denominator
    props["_AbsoluteTime"] = float(since_first * info.time_base)
    sar = info.sar if info.sar and info.sar > 0 else Fraction(1)
    props["_SARNum"], props["_SARDen"] = sar.numerator, sar.denominator
    props[PROP_CODEC] = info.codec
    if rate is not None:
        props[PROP_RATE] = rate
    params = frame.side_data.get(Type.VIDEO_ENC_PARAMS)
    if params is not None:  # the decoder's quantizer (vsfilter.quantizer: QPMean, QPKind, QPMap, ...)
        props |= side_data_props(params, frame.width)
    return props
