"""Which VMAF model scores ``vmaf``: the names compare takes and what libvmaf is told.

- a built-in model of the linked libvmaf, by version: :func:`builtin_vmaf_models` asks libvmaf itself
  which of the versions it has ever shipped this build knows (``vmaf_v0.6.1``, ``vmaf_v0.6.1neg``,
  ``vmaf_4k_v0.6.1``, ``vmaf_4k_v0.6.1neg`` in PyAV's FFmpeg);
- ``auto``: ``vmaf_4k_v0.6.1`` for references 3840 wide or 2160 high and larger (UHD, scope UHD,
  DCI 4K), else ``vmaf_v0.6.1`` (the
  default stays ``vmaf_v0.6.1`` so scores stay comparable across sizes);
- a model file path (``.json``);
- any of those followed by ``:phone``: libvmaf's phone transform (``enable_transform``), the score for
  small screens viewed up close (``vmaf_v0.6.1:phone``).

VMAF NEG is always ``vmaf_v0.6.1neg``, scored beside it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import VmafError

__all__ = ["VmafModel", "builtin_vmaf_models", "parse_vmaf_model", "resolve_vmaf_model", "AUTO", "PHONE", "escape_path"]

AUTO = "auto"
PHONE = ":phone"
#: Every version libvmaf has built in at some release; the linked build is asked which it has.
_KNOWN_VERSIONS = ("vmaf_v0.6.1", "vmaf_v0.6.1neg", "vmaf_4k_v0.6.1", "vmaf_4k_v0.6.1neg", "vmaf_b_v0.6.3",
                   "vmaf_float_v0.6.1", "vmaf_float_v0.6.1neg", "vmaf_float_b_v0.6.3", "vmaf_float_4k_v0.6.1")
#: ``auto`` picks the 4K model from this reference size up.
UHD = (3840, 2160)


def escape_path(path: str) -> str:
    """A path as a filter-graph option value (colons escaped)."""
    return path.replace("\\", "/").replace(":", "\\\\:")


def _configures(option: str) -> bool:
    """Whether a libvmaf graph with ``model=<option>`` configures (libvmaf loads its models then)."""
    import av
    import av.filter

    graph = av.filter.Graph()
    a = graph.add_buffer(width=64, height=64, format="yuv420p", time_base=Fraction(1, 25))
    b = graph.add_buffer(width=64, height=64, format="yuv420p", time_base=Fraction(1, 25))
    try:
        vmaf = graph.add("libvmaf", f"model={option}:log_path={os.devnull}")
        sink = graph.add("buffersink")
        a.link_to(vmaf, 0, 0)
        b.link_to(vmaf, 0, 1)
        vmaf.link_to(sink)
        graph.configure()
        return True
    except (av.error.FFmpegError, ValueError):
        return False


@contextlib.contextmanager
def _stderr_silenced():
    """File descriptor 2 pointed at /dev/null: libvmaf prints "no such built-in model" itself, past
    FFmpeg's logging."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.cache
def builtin_vmaf_models() -> tuple[str, ...]:
    """The model versions built into the linked libvmaf (asked once per process)."""
    import av.logging

    with av.logging.Capture(), _stderr_silenced():
        return tuple(v for v in _KNOWN_VERSIONS if _configures(f"version={v}"))


@dataclass(frozen=True)
class VmafModel:
    """A resolved VMAF model.

    Attributes:
        name: what results record (``vmaf_4k_v0.6.1``, ``vmaf_v0.6.1:phone``, a path).
        base: the built-in version or the absolute model file path.
        builtin: ``base`` is a built-in version.
        phone: apply the phone transform.
    """

    name: str
    base: str
    builtin: bool
    phone: bool = False

    def option(self) -> str:
        """libvmaf's ``model=`` value for this model and VMAF NEG (escaped for a filter graph)."""
        main = f"version={self.base}" if self.builtin else f"path={escape_path(self.base)}"
        transform = "\\:enable_transform=true" if self.phone else ""
        return f"{main}\\:name=vmaf{transform}|version=vmaf_v0.6.1neg\\:name=vmaf_neg"


def parse_vmaf_model(name: str) -> tuple[str, bool]:
    """(base name, phone?) of a model name; checks it is known (``auto`` included) without loading it."""
    base, phone = (name[: -len(PHONE)], True) if name.endswith(PHONE) else (name, False)
    if base != AUTO and base not in builtin_vmaf_models() and not Path(base).is_file():
        raise VmafError(f"unknown VMAF model {name!r}: use auto, one of {', '.join(builtin_vmaf_models())} "
                        f"(add {PHONE} for the phone model) or a path to a libvmaf model file (.json)")
    return base, phone


def resolve_vmaf_model(name: str, width: int, height: int) -> VmafModel:
    """The model ``name`` means for a reference of ``width`` x ``height`` (``auto`` resolved)."""
    base, phone = parse_vmaf_model(name)
    if base == AUTO:
        base = "vmaf_4k_v0.6.1" if width >= UHD[0] or height >= UHD[1] else "vmaf_v0.6.1"
    builtin = base in builtin_vmaf_models()
    return VmafModel(base + (PHONE if phone else ""), base if builtin else os.path.abspath(base), builtin, phone)
