"""vsfilter: a learned luma pre-filter for VapourSynth, a frame-exact PyAV source, and a libvmaf compare tool.

Public API:
    vmaf_pre        -- run learned_filter_v1 (or any [N,1,H,W] ONNX) on a clip's luma
    source          -- open a video file (or raw YUV, with RawFormat) as a frame-exact VapourSynth clip (PyAV)
    compare         -- the compare package: compare.compare(ref, dist) scores dist and prefiltered dist
                       against ref with libvmaf (CLI: python -m vsfilter.compare); CompareOptions holds
                       a comparison's options, CompareResult its scores
    rd              -- the rd package: rd.bd_rate / rd.bd_quality of (rate, quality) curves, rd.run_rd for
                       encoder ladders (CLI: python -m vsfilter.rd); bd_rate and bd_quality are here too
    ORT_CPU, ORT_CUDA, TORCH_CUDA, OpenVINO, Precision -- backend choices
    resolve_model, load_registry, model_dir -- the model registry
    VsfilterError   -- the root of every error vsfilter raises (RdError: a curve BD-rate rejects)

Names are imported on first use, so ``import vsfilter`` stays cheap (no libvmaf, no ONNX Runtime);
it does import the ``openvino`` package when installed, before anything touches ``vs.core`` (see
``vsfilter._openvino``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ._cli import leave_on_interrupt_while_loading

leave_on_interrupt_while_loading()  # `python -m vsfilter.<tool>`: Ctrl-C while importing ends in one line

from . import _openvino  # noqa: E402,F401  (openvino must load before vs.core, see the module)

try:
    __version__ = version("vsfilter")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

#: Public name -> the module that defines it (imported on first use).
_EXPORTS = {
    "vmaf_pre": ".filter",
    "source": ".reader",
    "SourceError": ".errors",
    "ORT_CPU": ".backends",
    "ORT_CUDA": ".backends",
    "TORCH_CUDA": ".backends",
    "OpenVINO": ".backends",
    "Precision": ".backends",
    "BackendError": ".errors",
    "ModelError": ".errors",
    "VsfilterError": ".errors",
    "ModelSpec": ".models",
    "load_registry": ".models",
    "model_dir": ".models",
    "resolve_model": ".models",
    "CompareError": ".errors",
    "CompareResult": ".compare",
    "CompareOptions": ".compare",
    "RawFormat": ".reader",
    "openvino_runtime_library": "._openvino",
    "bd_rate": ".rd",
    "bd_quality": ".rd",
    "RdError": ".errors",
}

__all__ = [  # noqa: RUF022 (grouped as the docstring lists them)
    "vmaf_pre", "source", "RawFormat", "compare", "CompareOptions", "CompareResult",
    "ORT_CPU", "ORT_CUDA", "TORCH_CUDA", "OpenVINO", "Precision",
    "ModelSpec", "load_registry", "model_dir", "resolve_model",
    "rd", "bd_rate", "bd_quality",
    "VsfilterError", "BackendError", "ModelError", "SourceError", "CompareError", "RdError",
    "openvino_runtime_library",
]
assert set(__all__) == {"compare", "rd", *_EXPORTS}

if TYPE_CHECKING:  # pragma: no cover
    from . import compare, rd
    from ._openvino import openvino_runtime_library
    from .backends import ORT_CPU, ORT_CUDA, TORCH_CUDA, OpenVINO, Precision
    from .compare import CompareOptions, CompareResult
    from .errors import BackendError, CompareError, ModelError, RdError, SourceError, VsfilterError
    from .filter import vmaf_pre
    from .models import ModelSpec, load_registry, model_dir, resolve_model
    from .rd import bd_quality, bd_rate
    from .reader import RawFormat, source


def __getattr__(name: str) -> Any:
    if name in ("compare", "rd"):
        return importlib.import_module(f".{name}", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vsfilter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
