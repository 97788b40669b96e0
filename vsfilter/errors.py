"""vsfilter's exceptions: one root, :class:`VsfilterError`, and one subclass per concern.

Every message names what is wrong and how to fix it, in words a library user can act on (never a
command-line flag: the CLIs map errors to their flags). VapourSynth functions (``vmaf_pre``,
``source``) re-raise them as ``vs.Error('<function>: <message>')``.
"""

from __future__ import annotations

__all__ = ["VsfilterError", "BackendError", "ModelError", "SourceError", "CompareError", "VmafError"]


class VsfilterError(Exception):
    """The root of every error vsfilter raises on purpose."""


class BackendError(VsfilterError, RuntimeError):
    """A backend or precision cannot run here; the message names the fix."""


class ModelError(VsfilterError, ValueError):
    """A model could not be found, verified or used; the message says which and why."""


class SourceError(VsfilterError):
    """Opening or decoding a video file failed; raised to VapourSynth as ``vs.Error('source: ...')``."""


class CompareError(VsfilterError, ValueError):
    """The inputs cannot be compared as asked; the message says why and what to do."""


class VmafError(CompareError):
    """libvmaf cannot score this input (unknown model, unsupported format, frames too small)."""
