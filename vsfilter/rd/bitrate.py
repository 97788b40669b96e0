"""An encode's bitrate as the codec world states it: the bits of the video stream's packets over the
stream's duration (frames / frame rate), in kbps; container overhead and audio are not counted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

from ..errors import RdError

__all__ = ["StreamRate", "video_bitrate"]


@dataclass(frozen=True)
class StreamRate:
    """What the bitrate of one encode is made of.

    Attributes:
        bitrate_kbps: ``bits / duration / 1000``.
        bits: the video packets' payload, in bits.
        frames: coded frames (packets with a payload).
        fps: the stream's frame rate.
        duration_s: ``frames / fps``.
    """

    bitrate_kbps: float
    bits: int
    frames: int
    fps: float
    duration_s: float


def video_bitrate(path: str | os.PathLike) -> StreamRate:
    """The bitrate of the first video stream of ``path``.

    Raises:
        RdError: not a video file FFmpeg reads, no video stream, no frame rate, or a raw ``.yuv`` file
            (it has no bitrate of its own).
    """
    import av

    from ..reader.raw import is_raw_path

    if is_raw_path(path):
        raise RdError(f"{path} is raw YUV: an encode of a ladder must be a compressed stream (it has no bitrate)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise RdError(f"{path} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            sizes = [packet.size for packet in container.demux(stream) if packet.size]
    except av.error.FFmpegError as exc:
        raise RdError(f"{path} is not a video file FFmpeg reads ({exc.strerror})") from None
    if not rate or rate <= 0:
        raise RdError(f"{path}: its video stream states no frame rate, so it has no duration to divide by")
    fps = Fraction(int(rate.numerator), int(rate.denominator))
    frames = len(sizes)
    if not frames:
        raise RdError(f"{path}: its video stream holds no coded frames")
    bits = 8 * sum(sizes)
    duration = frames / fps
    return StreamRate(float(bits / duration / 1000), bits, frames, float(fps), float(duration))
