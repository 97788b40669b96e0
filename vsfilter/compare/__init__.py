"""Score a distorted stream and its prefiltered version against a reference with libvmaf.

``from vsfilter.compare import compare`` (the function); ``python -m vsfilter.compare`` (the CLI).
"""

from .core import CompareError, CompareResult, RateMismatchError, SizeMismatchError, compare

__all__ = ["compare", "CompareError", "CompareResult", "RateMismatchError", "SizeMismatchError"]
