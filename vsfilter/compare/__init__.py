"""Score a distorted stream and its prefiltered version against a reference with libvmaf.

``from vsfilter.compare import compare`` (the function); ``python -m vsfilter.compare`` (the CLI).
"""

from .core import CompareError, CompareResult, RateMismatchError, SizeMismatchError, compare
from .options import CompareOptions

__all__ = ["compare", "CompareOptions", "CompareError", "CompareResult", "RateMismatchError", "SizeMismatchError"]
