"""What a pre-filter is worth in bits, and encoder ladders compared: BD-rate over libvmaf's metrics.

``python -m vsfilter.rd REF ENCODE... [--against ENCODE...] [--encode ENCODER:CRF,...]``; from Python,
:func:`bd_rate` and :func:`bd_quality` on ``(rate, quality)`` points, and :func:`run_rd` for ladders.
"""

from .bdrate import bd_quality, bd_rate, check_curve
from .bitrate import StreamRate, video_bitrate
from .core import Ladder, RdResult, run_rd

__all__ = ["bd_rate", "bd_quality", "check_curve", "video_bitrate", "StreamRate", "Ladder", "RdResult", "run_rd"]
