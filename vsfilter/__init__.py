"""vsfilter: a learned luma pre-filter for VapourSynth, a frame-exact PyAV source, and a libvmaf compare tool.

Public API:
    vmaf_pre        -- run learned_filter_v1 (or any [N,1,H,W] ONNX) on a clip's luma
    source          -- open a video file as a frame-exact VapourSynth clip (PyAV)
    compare         -- the compare package: compare.compare(ref, dist) scores dist and prefiltered dist
                       against ref with libvmaf (CLI: python -m vsfilter.compare)
    ORT_CPU, ORT_CUDA, OpenVINO, Precision -- backend choices
    resolve_model, load_registry, model_dir -- the model registry
"""

from __future__ import annotations

from .backends import ORT_CPU, ORT_CUDA, BackendError, OpenVINO, Precision
from .filter import vmaf_pre
from .models import ModelError, ModelSpec, load_registry, model_dir, resolve_model
from .pyav_source import source
from . import compare
from .compare import CompareError, CompareResult

__all__ = [
    "vmaf_pre",
    "source",
    "compare",
    "CompareResult",
    "CompareError",
    "ORT_CPU",
    "ORT_CUDA",
    "OpenVINO",
    "Precision",
    "BackendError",
    "ModelError",
    "ModelSpec",
    "load_registry",
    "model_dir",
    "resolve_model",
]

__version__ = "0.1.0"
