"""Inference backends: which runtime runs the model, on which device, at which precision.

Each backend is a small frozen dataclass (as vs-mlrt's ``Backend.ORT_CPU(...)``): ``ORT_CPU``,
``ORT_CUDA``, ``TORCH_CUDA`` and ``OpenVINO``. Pass one to ``vmaf_pre(backend=...)``, or name a device
(``device="auto" | "cpu" | "cuda" | "openvino"``) and :func:`backend_for_device` picks one. A backend's
``create(spec, precision)`` returns a :class:`Runner`: thread-safe, holding a pool of sessions, infer
requests or CUDA streams so that VapourSynth's worker threads filter frames in parallel.
"""

from __future__ import annotations

from .._openvino import openvino_runtime_library
from ..errors import BackendError
from .base import BackendBase, Precision, Runner, resolve_precision
from .openvino import OpenVINO, cpu_has_bf16, openvino_available
from .ort import ORT_CPU, ORT_CUDA, cuda_available
from .torch_cuda import TORCH_CUDA, torch_cuda_available

__all__ = [
    "BackendError", "Precision", "Runner", "Backend", "BackendBase",
    "ORT_CPU", "ORT_CUDA", "TORCH_CUDA", "OpenVINO",
    "DEVICES", "backend_for_device", "resolve_precision",
    "openvino_available", "cuda_available", "torch_cuda_available", "cpu_has_bf16", "openvino_runtime_library",
]

Backend = ORT_CPU | ORT_CUDA | TORCH_CUDA | OpenVINO

#: The ``device`` names vmaf_pre accepts.
DEVICES = ("auto", "cpu", "cuda", "openvino")


def backend_for_device(device: str, threads: int = 0, num_streams: int | None = None) -> Backend:
    """The backend a ``device`` name stands for.

    ``"auto"`` picks the fastest one installed: CUDA (PyTorch, else onnxruntime-gpu), then OpenVINO,
    then ONNX Runtime on the CPU. ``"cuda"`` is PyTorch when it sees a GPU, else onnxruntime-gpu.
    """
    if device not in DEVICES:
        raise BackendError(f"device={device!r} is not one of {', '.join(map(repr, DEVICES))}")
    if device in ("auto", "cuda"):
        if torch_cuda_available():
            return TORCH_CUDA(num_streams=num_streams)
        if cuda_available() or device == "cuda":
            return ORT_CUDA(num_streams=num_streams)
        device = "openvino" if openvino_available() else "cpu"
    if device == "openvino":
        return OpenVINO(threads=threads, num_streams=num_streams)
    return ORT_CPU(threads=threads, num_streams=num_streams)
