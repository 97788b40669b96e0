"""What every backend shares: precisions, the Runner protocol, worker pools, and precision resolution."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..cpus import cpu_count
from ..errors import BackendError
from ..models import ModelSpec

__all__ = ["Precision", "Runner", "BackendBase", "Pool", "ShapePools", "cpu_count", "float_filter_plane",
           "resolve_precision", "sample_converters"]


class Precision(StrEnum):
    """Numeric precision of the inference. ``AUTO`` lets the backend pick its fastest accurate one."""

    AUTO = "auto"
    FP32 = "fp32"
    TF32 = "tf32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


#: Where to go for a precision a backend lacks (completes "precision=X is not available on ...").
_WHERE = {
    Precision.FP16: "it runs on CUDA (device='cuda')",
    Precision.TF32: "it runs on CUDA (device='cuda')",
    Precision.BF16: "it runs on OpenVINO on CPUs with AVX-512 BF16 or AMX (device='openvino'), or on CUDA",
    Precision.INT8: "it runs on OpenVINO (device='openvino') and ONNX Runtime CPU (device='cpu')",
}


@runtime_checkable
class Runner(Protocol):
    """What a backend builds, safe to call from many threads.

    ``runner(batch)`` maps a float32 ``[N,1,H,W]`` batch in the model's scale to the model's output;
    ``runner.filter_plane(plane, peak)`` filters one whole plane in its own sample type (integer
    samples divided by ``peak``, rounded and clamped back), which GPU runners do on the device.
    """

    backend: str
    precision: Precision

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def filter_plane(self, plane: np.ndarray, peak: int | None) -> np.ndarray: ...


def sample_converters(dtype: np.dtype, peak: int | None):
    """(to_float, from_float): samples <-> the model's float32 [0, 1] scale, as the reference filter does:
    integer samples divided by the peak code, the output multiplied back, rounded half to even and
    clamped; float samples pass as they are."""
    if peak is None:
        return (lambda a: a.astype(np.float32, copy=False)), (lambda a: a.astype(dtype, copy=False))
    scale = np.float32(peak)

    def to_float(a: np.ndarray) -> np.ndarray:
        return np.divide(a, scale, dtype=np.float32)

    def from_float(a: np.ndarray) -> np.ndarray:
        out = np.multiply(a, scale, dtype=np.float32)
        np.rint(out, out=out)
        np.clip(out, 0, scale, out=out)
        return out.astype(dtype)

    return to_float, from_float


def float_filter_plane(run: Callable[[np.ndarray], np.ndarray], plane: np.ndarray, peak: int | None) -> np.ndarray:
    """A plane through ``run`` with the sample conversion done on the CPU (see :func:`sample_converters`)."""
    to_float, from_float = sample_converters(plane.dtype, peak)
    return from_float(run(to_float(plane)[None, None])[0, 0])


class BackendBase:
    """Mixin of the backend dataclasses: their name, precisions, and the one way precision is resolved.

    Subclasses set ``name``, ``precisions`` (what they run) and implement :meth:`auto_precision`,
    :meth:`available` where they need more than the base install, and ``_create``.
    """

    name: ClassVar[str] = ""
    precisions: ClassVar[tuple[Precision, ...]] = (Precision.FP32,)
    #: Planes larger than 1920x1088 are tiled unless asked otherwise: memory is the host's, and a CPU
    #: backend's activations grow with the frame (a GPU backend runs whole frames).
    tiles_large_frames: ClassVar[bool] = False

    def auto_precision(self, spec: ModelSpec) -> Precision:
        return Precision.FP32

    def available(self) -> str | None:
        """None when this backend can run here, else why not (a sentence naming the fix)."""
        return None

    def create(self, spec: ModelSpec, precision: Precision) -> Runner:
        """A runner of ``spec`` at ``precision``; :class:`BackendError` (naming the fix) when this backend
        cannot run here."""
        why = self.available()
        if why:
            raise BackendError(why)
        return self._create(spec, precision)

    def _create(self, spec: ModelSpec, precision: Precision) -> Runner:  # pragma: no cover - abstract
        raise NotImplementedError


def resolve_precision(backend: BackendBase, spec: ModelSpec, requested: Precision) -> Precision:
    """The precision ``backend`` will run ``spec`` at, or a :class:`BackendError` naming the fix."""
    if requested is Precision.AUTO:
        return backend.auto_precision(spec)
    if requested not in backend.precisions:
        runs = ", ".join(p.value for p in backend.precisions)
        where = _WHERE.get(requested, "")
        raise BackendError(f"precision={requested.value!r} is not available on {backend.name} (it runs {runs})"
                           + (f"; {where}" if where else ""))
    if requested is Precision.INT8 and spec.int8_error:
        raise BackendError(spec.int8_error)
    if requested is Precision.INT8 and (spec.int8_path is None or not spec.int8_path.is_file()):
        raise BackendError(
            f"precision='int8' needs an INT8 sidecar for model {spec.id!r} and none is registered; "
            "make one with python -m training.ptq_static, or use precision='fp32'")
    return requested




class Pool[W]:
    """A fixed set of workers (sessions, infer requests, CUDA streams) lent to one caller at a time."""

    def __init__(self, make: Callable[[], W], size: int) -> None:
        self._free: queue.SimpleQueue[W] = queue.SimpleQueue()
        for _ in range(size):
            self._free.put(make())

    def run(self, fn: Callable[[W], np.ndarray]) -> np.ndarray:
        worker = self._free.get()
        try:
            return fn(worker)
        finally:
            self._free.put(worker)


class ShapePools:
    """Pools built on first use of each key (an input shape: a session or a compiled model per shape).

    ``build(key)`` runs under a lock, once per key, even when several threads ask at once.
    """

    def __init__(self, build: Callable[[Any], Pool[Any]]) -> None:
        self._build = build
        self._pools: dict[Any, Pool[Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> Pool[Any]:
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = self._build(key)
        return pool


def int8_path(spec: ModelSpec) -> Path:
    """The registered INT8 sidecar (``resolve_precision`` checked that it exists)."""
    assert spec.int8_path is not None
    return spec.int8_path
