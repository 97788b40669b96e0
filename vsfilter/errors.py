"""vsfilter's exceptions: one root, :class:`VsfilterError`, and one subclass per concern.

Every message names what is wrong and how to fix it, in words a library user can act on (never a
command-line flag: the CLIs map errors to their flags). VapourSynth functions (``vmaf_pre``,
``source``) re-raise them as ``vs.Error('<function>: <message>')`` through :func:`vs_error`, which
keeps the typed error: :func:`cause_of` gives it back from the ``vs.Error`` (VapourSynth may wrap a
frame's error in its own traceback text), so callers never parse messages.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["VsfilterError", "BackendError", "ModelError", "SourceError", "CompareError", "VmafError", "FrameError",
           "OptionError", "RateMismatchError", "SizeMismatchError", "ManifestError", "BatchError", "RdError",
           "UsageError",
           "vs_error", "cause_of", "message_of"]


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


class OptionError(VsfilterError, ValueError):
    """An argument of the wrong type or out of range; the message says what is accepted."""


class FrameError(VsfilterError, RuntimeError):
    """A frame could not be filtered (the runtime's error, with the frame number)."""


class _Refusal(CompareError):
    """A comparison refused until an option allows it; ``reason`` is the message without the option."""

    option = ""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}; {self.option}")


class RateMismatchError(_Refusal):
    """The frame rates differ and ``force`` was not set."""

    option = "force=True compares frame by frame anyway"


class SizeMismatchError(_Refusal):
    """The sizes differ and ``scale`` was off."""

    option = "scale=True scales the distorted stream to the reference"


class ManifestError(VsfilterError, ValueError):
    """A batch manifest cannot be used as a whole (the message names the line and the fix)."""


class BatchError(VsfilterError):
    """A batch cannot run as asked (output folder, scheduler); the message names the fix."""


class RdError(VsfilterError, ValueError):
    """A rate-distortion curve that BD-rate cannot be computed on (the message names the ladder and why),
    or a ladder that cannot be made."""


class UsageError(VsfilterError, ValueError):
    """A command line that cannot run as given: the CLI prints it as its one-line error (exit code 2)."""


class VmafError(CompareError):
    """libvmaf cannot score this input (unknown model, unsupported format, frames too small)."""


#: Recent errors raised as vs.Error, by their message (bounded: a long run raises few distinct ones).
_CAUSES: OrderedDict[str, VsfilterError] = OrderedDict()
_CAUSES_LOCK = threading.Lock()
_CAUSES_KEPT = 256


def vs_error(function: str, cause: VsfilterError):
    """``vs.Error('<function>: <cause>')``, remembered so :func:`cause_of` finds ``cause`` again."""
    import vapoursynth as vs

    message = f"{function}: {cause}"
    with _CAUSES_LOCK:
        _CAUSES[message] = cause
        _CAUSES.move_to_end(message)
        while len(_CAUSES) > _CAUSES_KEPT:
            _CAUSES.popitem(last=False)
    return vs.Error(message)


def _lookup(error: BaseException) -> tuple[str, VsfilterError] | None:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    with _CAUSES_LOCK:
        for line in (lines[-1:] + lines[:1]) if lines else ():
            if line in _CAUSES:
                return line, _CAUSES[line]
    return None


def cause_of(error: BaseException) -> VsfilterError | None:
    """The typed error a ``vs.Error`` of :func:`vs_error` carries (its message may come wrapped in
    VapourSynth's traceback: the last line is ours), or None for any other error."""
    found = _lookup(error)
    return None if found is None else found[1]


def message_of(error: BaseException) -> str | None:
    """The one-line ``'<function>: <cause>'`` message of a ``vs.Error`` of :func:`vs_error`, or None."""
    found = _lookup(error)
    return None if found is None else found[0]
