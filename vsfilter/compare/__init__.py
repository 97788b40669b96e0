"""Score a distorted stream and its prefiltered version against a reference with libvmaf."""

from .core import CompareError, CompareResult, compare

__all__ = ["compare", "CompareError", "CompareResult"]
