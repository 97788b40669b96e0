"""One quantizer scale for every codec: what the decoder says of how coarsely a block was quantized, as
the H.264-equivalent QP of an 8-bit stream, and the plane a quantizer-conditioned model is fed.

The common unit is the quantizer *step size*, written as the H.264 QP that has that step at 8 bits
(H.264's step doubles every 6 QP: ``step = 2 ** ((qp - 4) / 6)``, 1.0 at QP 4):

- **H.264** and **HEVC**: the QP itself; FFmpeg reports high-bit-depth QPs with the bit-depth offset
  added (QP' = QP + 6 x (bits - 8): 42 for CRF 30 at 10 bits), which is removed;
- **VP9** and **AV1** ``qindex`` (0-255): the luma AC step of the codec's 8-bit lookup table
  (``ac_qlookup``, 4 at qindex 0 up to 1828 at 255), over 8 (their transforms carry 3 more bits than
  H.264's), so qindex 255 maps to QP 51 and qindex 0 to -2 (clamped to 0);
- **MPEG-2** ``quantiser_scale`` (1-112): a step of ``quantiser_scale`` (QP 4 + 6 log2(scale)).

The model's plane is ``qp / 51`` (0 = lossless, 1 = H.264's coarsest). Where the bitstream says
nothing (HEVC, AV1, raw video, other sources) the model's learned estimate (``vsfilter.qp_estimator``)
stands in for the decoder's QP; without one the plane is :data:`UNKNOWN`, on which the network was
trained to act blind-safe.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "PLANE_SCALE", "UNKNOWN", "qp_equivalent", "plane_value", "VP9_AC_QLOOKUP", "block_plane",
           "side_data_props", "frame_plane", "QuantizerPlane", "QP_SOURCES", "equivalent_map", "PROP_MEAN",
           "PROP_KIND", "PROP_BLOCK", "PROP_MAP", "PROP_MAP_WIDTH", "PROP_CODEC", "prop_text", "codec_kind"]

#: The quantizer kinds a QP is reported in (the ``QPKind`` frame prop of :func:`vsfilter.source`).
KINDS = ("h264", "hevc", "vp9", "av1", "mpeg2")
#: H.264-equivalent QP that maps to a plane value of 1.0.
PLANE_SCALE = 51.0
#: The quantizer plane's value where the quantizer is not known.
UNKNOWN = -1.0

#: VP9's (and AV1's) 8-bit luma AC dequantizer per qindex (the specifications' ``ac_qlookup``).
VP9_AC_QLOOKUP = np.array([4, *range(8, 103), *range(104, 153, 2), *range(155, 204, 3), *range(207, 256, 4),
                           *range(260, 306, 5), *range(311, 360, 6), *range(366, 409, 7), *range(416, 457, 8),
                           465, 474, 483, 492, 501, 510, 520, 530, 540, 550, 560, 571, 582, 593, 604, 615, 627,
                           639, 651, 663, 676, 689, 702, 715, 729, 743, 757, 771, 786, 801, 816, 832, 848, 864,
                           881, 898, 915, 933, 951, 969, 988, 1007, 1026, 1046, 1066, 1087, 1108, 1129, 1151,
                           1173, 1196, 1219, 1243, 1267, 1292, 1317, 1343, 1369, 1396, 1423, 1451, 1479, 1508,
                           1537, 1567, 1597, 1628, 1660, 1692, 1725, 1759, 1793, 1828], dtype=np.float64)
assert VP9_AC_QLOOKUP.size == 256


def qp_equivalent(kind: str, value, bits: int = 8):
    """The H.264-equivalent 8-bit QP (float, >= 0) of a quantizer ``value`` (a number or an array).

    Args:
        kind: one of :data:`KINDS`.
        value: the codec's own quantizer as FFmpeg exports it (QP', qindex or quantiser_scale).
        bits: the stream's luma bit depth (H.264/HEVC QPs carry its offset).
    """
    v = np.asarray(value, dtype=np.float64)
    if kind in ("h264", "hevc"):
        out = v - 6.0 * (bits - 8)
    elif kind in ("vp9", "av1"):
        step = VP9_AC_QLOOKUP[np.clip(np.rint(v), 0, 255).astype(np.int64)] / 8.0
        out = 4.0 + 6.0 * np.log2(step)
    elif kind == "mpeg2":
        out = 4.0 + 6.0 * np.log2(np.maximum(v, 1.0))
    else:
        raise ValueError(f"unknown quantizer kind {kind!r}; kinds are {', '.join(KINDS)}")
    out = np.maximum(out, 0.0)
    return float(out) if out.ndim == 0 else out


def plane_value(qp: float | None) -> float:
    """The quantizer plane's value for an H.264-equivalent QP (None: :data:`UNKNOWN`)."""
    if qp is None or (isinstance(qp, float) and math.isnan(qp)):
        return UNKNOWN
    return float(qp) / PLANE_SCALE


def block_plane(qp_blocks: np.ndarray, height: int, width: int, block: int = 16) -> np.ndarray:
    """The per-pixel quantizer plane (float32 ``height`` x ``width``) of a block map of H.264-equivalent
    QPs (``block`` x ``block`` pixels each, NaN = unknown): ``qp / 51``, :data:`UNKNOWN` where NaN."""
    qp = np.asarray(qp_blocks, dtype=np.float32)
    plane = np.repeat(np.repeat(qp, block, axis=0), block, axis=1)[:height, :width]
    if plane.shape != (height, width):  # a map of another frame size: refuse rather than stretch
        raise ValueError(f"a {qp.shape[1]}x{qp.shape[0]} map of {block} px blocks does not cover {width}x{height}")
    return np.where(np.isnan(plane), np.float32(UNKNOWN), plane / np.float32(PLANE_SCALE)).astype(np.float32)


# ------------------------------------------------------------------ frame props (vsfilter.source)

#: The frame props :func:`vsfilter.source` sets from the decoder's quantizer side data: the frame's mean
#: QP in the codec's own scale, the codec's QP kind, the block size of the map (0: one QP for the frame),
#: the map (block QPs in the codec's scale, one unsigned byte each, row-major: a data prop, because an
#: integer-array prop of a 1080p frame's 8,160 blocks costs VapourSynth 4 ms to set) and its width in
#: blocks.
PROP_MEAN, PROP_KIND, PROP_BLOCK, PROP_MAP, PROP_MAP_WIDTH = "QPMean", "QPKind", "QPBlockSize", "QPMap", "QPMapWidth"
#: The stream's codec, FFmpeg's canonical name (``h264``, ``hevc``, ``av1``, ...): a prop of every frame
#: :func:`vsfilter.source` decodes.
PROP_CODEC = "Codec"
#: FFmpeg codec names whose quantizer kind has another name.
_CODEC_KINDS = {"mpeg2video": "mpeg2"}
#: FFmpeg's ``AVVideoEncParamsType`` -> our kind.
_SIDE_DATA_KINDS = {0: "vp9", 1: "h264", 2: "mpeg2"}


def side_data_props(params, width: int) -> dict:
    """The QP frame props of a decoded frame's ``VIDEO_ENC_PARAMS`` side data (PyAV's ``VideoEncParams``)
    for a frame ``width`` pixels wide, or {} for a codec type this scale does not know.

    H.264 and MPEG-2 give a QP per 16x16 macroblock (PyAV's ``block_size`` is the size of FFmpeg's block
    record, not of a block: the block's own width is in the record); VP9 one per frame (its segment
    deltas are not exported)."""
    kind = _SIDE_DATA_KINDS.get(int(params.codec_type))
    if kind is None:
        return {}
    count = int(params.nb_blocks)
    if not count:
        return {PROP_MEAN: float(params.qp), PROP_KIND: kind, PROP_BLOCK: 0}
    # FFmpeg's AVVideoBlockParams records (src_x, src_y, w, h, delta_qp: five int32), row-major, read
    # straight from the side data (PyAV's qp_map() loops in Python: 6 ms a 1080p frame, 300x this).
    start, size = int(params.blocks_offset), int(params.block_size)
    raw = np.frombuffer(params, np.uint8)[start:start + count * size].reshape(count, size)
    blocks = np.ascontiguousarray(raw[:, :20]).view(np.int32).reshape(count, 5)
    block = int(blocks[0, 2])
    cols = -(-width // block)
    qmap = int(params.qp) + blocks[:, 4].astype(np.int64)
    return {PROP_MEAN: float(qmap.mean()), PROP_KIND: kind, PROP_BLOCK: block,
            PROP_MAP: np.clip(qmap, 0, 255).astype(np.uint8).tobytes(), PROP_MAP_WIDTH: cols}


def prop_text(value) -> str:
    """A text frame prop as str (VapourSynth hands data props back as bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def codec_kind(props) -> str | None:
    """The quantizer kind (:data:`KINDS`) of the stream a frame came from: its ``QPKind`` prop, else its
    ``Codec`` prop where that names a kind; None for frames that say neither (raw video, other source
    filters, codecs this scale does not know)."""
    if PROP_KIND in props:
        return prop_text(props[PROP_KIND])
    codec = prop_text(props.get(PROP_CODEC, ""))
    codec = _CODEC_KINDS.get(codec, codec)
    return codec if codec in KINDS else None


#: Where a two-input model's quantizer plane came from (the ``VmafPreQPSource`` prop of ``vmaf_pre``).
QP_SOURCES = ("bitstream", "estimate", "given", "unknown")


@dataclass(frozen=True)
class QuantizerPlane:
    """The quantizer plane a two-input model is fed for one frame.

    Attributes:
        plane: float32 ``height`` x ``width``: ``qp / 51`` per pixel, :data:`UNKNOWN` where not known.
        qp: the frame's mean H.264-equivalent QP, or None when unknown.
        source: one of :data:`QP_SOURCES`.
        kind: the codec of the stream the plane was read from (``bitstream``) or estimated for
            (``estimate``), one of :data:`KINDS` (:func:`codec_kind`), else None: what picks a model's
            per-codec specialist (``ModelSpec.specialists``).
    """

    plane: np.ndarray
    qp: float | None
    source: str
    kind: str | None = None


def frame_plane(props, width: int, height: int, bits: int, override: float | str | None = None,
                estimate: Callable[[], float | None] | None = None) -> QuantizerPlane:
    """The quantizer plane of one frame: the override, else the frame's QP props, else the estimate.

    Args:
        props: the frame's props (``QPKind``, ``QPMean``, ``QPBlockSize``, ``QPMap``, ``QPMapWidth`` as
            :func:`vsfilter.source` sets them).
        width, height: the plane's size.
        bits: the stream's bit depth (H.264 QPs carry its offset).
        override: an H.264-equivalent QP for every pixel, ``"unknown"``, ``"estimate"`` (the estimate even
            where the props tell the quantizer) or None (the props, else the estimate).
        estimate: the frame's estimated H.264-equivalent QP (a model's quantizer estimator), called only
            when needed; None (or an estimate of None): :data:`UNKNOWN` where the props say nothing.
    """
    def constant(qp: float | None, source: str, kind: str | None = None) -> QuantizerPlane:
        return QuantizerPlane(np.full((height, width), plane_value(qp), np.float32), qp, source, kind)

    if override == "unknown":
        return constant(None, "unknown")
    if override is not None and not isinstance(override, str):
        return constant(float(override), "given")
    found = None if override == "estimate" else equivalent_map(props, bits)
    if found is None:
        qp = estimate() if estimate is not None else None
        return constant(qp, "estimate", codec_kind(props)) if qp is not None else constant(None, "unknown")
    qmap, block = found
    if not block:
        return constant(float(qmap[0, 0]), "bitstream", codec_kind(props))
    return QuantizerPlane(block_plane(qmap, height, width, block), float(qmap.mean()), "bitstream", codec_kind(props))


def equivalent_map(props, bits: int) -> tuple[np.ndarray, int] | None:
    """(H.264-equivalent QP per block, the block size; 0 with a 1x1 map for one QP per frame) of a frame's
    QP props (:func:`side_data_props`), or None when it has none.

    Args:
        props: the frame's props.
        bits: the stream's bit depth (H.264 QPs carry its offset).
    """
    if PROP_KIND not in props or PROP_MEAN not in props:
        return None
    kind = prop_text(props[PROP_KIND])
    block = int(props.get(PROP_BLOCK, 0))
    if block and PROP_MAP in props:
        qmap = np.frombuffer(props[PROP_MAP], np.uint8).astype(np.float64).reshape(-1, int(props[PROP_MAP_WIDTH]))
        return np.asarray(qp_equivalent(kind, qmap, bits)), block
    return np.full((1, 1), qp_equivalent(kind, float(props[PROP_MEAN]), bits)), 0
