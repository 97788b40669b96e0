"""The learned quantizer estimate a quantizer-conditioned model is fed where the bitstream is silent.

HEVC and AV1 decoders export no quantizer; a model that takes a quantizer plane
(learned_filter_codec_v3) then runs on the estimate of its registry row's ``qp_estimator``: a small
network (``training.qp_estimator``) that reads the frame's H.264-equivalent QP off the rate the encoder
spent around it (``CodedBitsPerPixel``, which :func:`vsfilter.source` sets from its packet index), the
codec (``Codec``) and the luma, trained to err low (an over-estimate would restore grain that belongs
to the picture). Frames without those props (other source filters, raw video, codecs the estimator was
not trained on: its ONNX metadata lists them) get no estimate: the model's "unknown" plane. It runs on
ONNX Runtime's CPU provider whatever backend runs the filter: ~0.15 GMAC a 1080p frame, against the
filter's ~40.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .errors import ModelError
from .quantizer import PLANE_SCALE, PROP_CODEC, prop_text

__all__ = ["QuantizerEstimator", "ESTIMATE_GRID", "RATE_WINDOW", "coded_bits_per_pixel", "PROP_RATE",
           "PROP_CODEC", "CODECS_KEY", "rate_row", "load_estimator"]

#: The estimator reads whole 16x16 blocks on the codec's grid (from the frame's top-left corner).
ESTIMATE_GRID = 16
#: Frames on each side whose coded sizes make a frame's rate (``coded_bits_per_pixel``).
RATE_WINDOW = 12
#: The frame prop :func:`vsfilter.source` sets with the coded rate around the frame (``coded_bits_per_pixel``
#: of its packet index); the stream's codec is ``vsfilter.quantizer.PROP_CODEC``.
PROP_RATE = "CodedBitsPerPixel"
#: The estimator ONNX's metadata key listing the codecs of its one-hot codec input, comma-separated.
CODECS_KEY = "vsfilter.codecs"
#: The largest QP an estimate may say (H.264's 51 plus the override's headroom).
_MAX_QP = 63.0


def coded_bits_per_pixel(sizes: np.ndarray, keyframe: np.ndarray, pixels: int, window: int = RATE_WINDOW) -> np.ndarray:
    """Per frame, the mean coded bits per luma pixel of the inter frames within ``window`` frames of it
    (of all of them where the window holds only keyframes): the rate a CRF encoder spent around the
    frame, the estimator's second input. Keyframes are left out because their share depends on the GOP
    length (a 12-frame training clip has one, a broadcast stream one in 250), not on the quantizer;
    hidden reference frames (VP9, AV1) ride in inter packets, so windows of inter frames count them.

    Args:
        sizes: bytes of each frame's packet, in presentation order.
        keyframe: whether each frame's packet is a keyframe.
        pixels: luma pixels per frame.
        window: frames on each side.
    """
    sizes = np.asarray(sizes, np.float64)
    inter = ~np.asarray(keyframe, bool)
    n = sizes.size
    lo = np.clip(np.arange(n) - window, 0, n)
    hi = np.clip(np.arange(n) + window + 1, 0, n)
    total, count = np.concatenate([[0.0], np.cumsum(sizes)]), np.concatenate([[0], np.cumsum(np.ones(n))])
    inter_total = np.concatenate([[0.0], np.cumsum(np.where(inter, sizes, 0.0))])
    inter_count = np.concatenate([[0], np.cumsum(inter)])
    k = inter_count[hi] - inter_count[lo]
    mean = np.where(k > 0, (inter_total[hi] - inter_total[lo]) / np.maximum(k, 1),
                    (total[hi] - total[lo]) / np.maximum(count[hi] - count[lo], 1))
    return 8.0 * mean / max(int(pixels), 1)


def rate_row(bits_per_pixel: float, codec: str, codecs: tuple[str, ...]) -> np.ndarray:
    """The estimator's ``rate`` input of one frame: its coded bits per pixel, then its codec one-hot over
    ``codecs`` (float32 ``[1 + len(codecs)]``)."""
    return np.array([bits_per_pixel, *(float(codec == c) for c in codecs)], np.float32)


class QuantizerEstimator:
    """A frame's H.264-equivalent QP, estimated from its coded rate, codec and luma.

    Args:
        path: the estimator's ONNX file (``luma [N,1,H,W]`` in [0,1] and ``rate [N,1+codecs]`` -> ``qp
            [N,1]`` = QP / 51; metadata ``vsfilter.codecs``: the codecs of the one-hot part of ``rate``).
        threads: ONNX Runtime intra-op threads (frames run concurrently: 1 by default).
    """

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT's own error types
            raise ModelError(f"quantizer estimator {Path(path).name} cannot be loaded: "
                             f"{str(exc).strip().splitlines()[0][:200]}") from None
        listed = self._session.get_modelmeta().custom_metadata_map.get(CODECS_KEY, "")
        self.codecs = tuple(c for c in listed.split(",") if c)
        if not self.codecs:
            raise ModelError(f"quantizer estimator {Path(path).name} lists no codecs (metadata {CODECS_KEY!r})")

    def __call__(self, luma: np.ndarray, peak: int | None, props) -> float | None:
        """The QP of one frame: its luma (integer codes of ``peak``, or float samples for ``peak=None``)
        and its props (``CodedBitsPerPixel``, ``Codec``); None where the props do not allow an estimate
        (missing, a codec the estimator was not trained on) or the frame is smaller than one 16x16 block."""
        codec = prop_text(props.get(PROP_CODEC, ""))
        rate = props.get(PROP_RATE)
        if codec not in self.codecs or rate is None:
            return None
        h, w = (luma.shape[0] // ESTIMATE_GRID) * ESTIMATE_GRID, (luma.shape[1] // ESTIMATE_GRID) * ESTIMATE_GRID
        if not h or not w:
            return None
        x = np.asarray(luma[:h, :w], np.float32)
        if peak is not None:
            x = x / np.float32(peak)
        row = rate_row(float(rate), codec, self.codecs)[None]
        value = float(self._session.run(None, {"luma": x[None, None], "rate": row})[0].reshape(-1)[0])
        return float(np.clip(value * PLANE_SCALE, 0.0, _MAX_QP))


@functools.lru_cache(maxsize=8)
def load_estimator(path: Path, sha256: str | None) -> QuantizerEstimator:
    """The :class:`QuantizerEstimator` of a model's estimator file, loaded once per file and content (a
    replaced file has another ``sha256``, so another entry): vmaf_pre, compare and each batch chunk share
    its ONNX Runtime session (``run`` is thread-safe).

    Args:
        path: the estimator's ONNX file (``ModelSpec.qp_estimator``).
        sha256: its hex digest (``ModelSpec.qp_estimator_sha256``).
    """
    return QuantizerEstimator(path)
