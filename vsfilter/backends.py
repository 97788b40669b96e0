"""Inference backends: which runtime runs the model, on which device, at which precision.

Each backend is a small frozen dataclass (as vs-mlrt's ``Backend.ORT_CPU(...)``) whose
:meth:`create` returns a :class:`Runner`: a thread-safe callable that maps a float32 ``[N,1,H,W]``
batch to the model's output. A runner keeps a pool of ``num_streams`` sessions (or OpenVINO infer
requests) so that VapourSynth's worker threads filter frames in parallel.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import queue
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .models import ModelSpec

__all__ = [
    "BackendError",
    "Precision",
    "Runner",
    "ORT_CPU",
    "ORT_CUDA",
    "OpenVINO",
    "Backend",
    "select_backend",
    "openvino_available",
    "cuda_available",
    "openvino_runtime_library",
]


class BackendError(RuntimeError):
    """A backend or precision cannot run here; the message names the fix."""


class Precision(str, Enum):
    """Numeric precision of the inference. ``AUTO`` lets the backend pick its fastest accurate one."""

    AUTO = "auto"
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


class Runner(Protocol):
    """What a backend builds: ``runner(batch) -> output``, safe to call from many threads."""

    backend: str
    precision: Precision

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class _Pool:
    """A fixed set of workers (sessions, infer requests) lent to one caller at a time."""

    def __init__(self, make: Callable[[], object], size: int) -> None:
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(size):
            self._free.put(make())

    def run(self, fn: Callable[[object], np.ndarray]) -> np.ndarray:
        worker = self._free.get()
        try:
            return fn(worker)
        finally:
            self._free.put(worker)


class _ShapePools:
    """Pools built on first use of each input shape (a session or a compiled model per shape).

    ``build(shape)`` runs under a lock, once per shape, even when several threads ask at once.
    """

    def __init__(self, build: Callable[[tuple[int, ...]], _Pool]) -> None:
        self._build = build
        self._pools: dict[tuple[int, ...], _Pool] = {}
        self._lock = threading.Lock()

    def get(self, shape: tuple[int, ...]) -> _Pool:
        pool = self._pools.get(shape)
        if pool is None:
            with self._lock:
                pool = self._pools.get(shape)
                if pool is None:
                    pool = self._pools[shape] = self._build(shape)
        return pool


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _default_streams(num_streams: int | None) -> int:
    # Measured at 1080p on 2 cores: one session using every core beats one session per core
    # (3.65 vs 2.86 fps); VapourSynth's other threads still overlap sample conversion with inference.
    return num_streams if num_streams and num_streams > 0 else 1


# --------------------------------------------------------------------------- ONNX Runtime


class _OrtRunner:
    """ONNX Runtime sessions per input shape, each pooled ``streams`` deep.

    Sessions are built with the model's symbolic dimensions (N, H, W) pinned to the frame's shape
    (``add_free_dimension_override_by_name``): static shapes let ORT plan memory and pick kernels up
    front, 7-11% faster at 1080p than one dynamic-shape session (vs-mlrt pins shapes the same way).
    """

    def __init__(self, path: str, spec: ModelSpec, providers: list, threads: int, streams: int,
                 backend: str, precision: Precision) -> None:
        import onnx

        self.backend, self.precision = backend, precision
        self._path, self._providers = path, providers
        self._input, self._output = spec.input_name, spec.output_name
        self._intra = threads if threads > 0 else max(1, _cpu_count() // streams)
        proto = onnx.load(path, load_external_data=False)
        value = next(i for i in proto.graph.input if i.name == self._input)
        self._dim_names = [d.dim_param for d in value.type.tensor_type.shape.dim]
        self._pools = _ShapePools(lambda shape: _Pool(lambda: self._make_session(shape), streams))
        self._make_session(None)  # fail now, not at the first frame, when the provider cannot start

    def _make_session(self, shape: tuple[int, ...] | None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self._intra
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        if shape is not None:
            for name, size in zip(self._dim_names, shape):
                if name:
                    opts.add_free_dimension_override_by_name(name, size)
        session = ort.InferenceSession(self._path, sess_options=opts, providers=self._providers)
        wanted = self._providers[0] if isinstance(self._providers[0], str) else self._providers[0][0]
        if wanted not in session.get_providers():
            raise BackendError(f"ONNX Runtime could not start {wanted} (got {session.get_providers()})")
        return session

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        feed = {self._input: np.ascontiguousarray(batch, dtype=np.float32)}
        return self._pools.get(batch.shape).run(lambda s: s.run([self._output], feed)[0])


@dataclass(frozen=True)
class ORT_CPU:
    """ONNX Runtime on the CPU (the default backend).

    Attributes:
        threads: intra-op threads per session; 0 = the cores divided among the streams.
        num_streams: sessions run concurrently, one frame each; None = 1 (which uses every core).
    """

    threads: int = 0
    num_streams: int | None = None
    name = "ort-cpu"

    def create(self, spec: ModelSpec, precision: Precision) -> Runner:
        if precision in (Precision.AUTO, Precision.FP32):
            path, precision = spec.path, Precision.FP32
        elif precision is Precision.INT8:
            path = _int8_path(spec)
        else:
            raise BackendError(
                f"precision={precision.value!r} is not available on device='cpu' (ONNX Runtime CPU runs fp32 "
                "and int8); use device='openvino' for bf16"
            )
        return _OrtRunner(str(path), spec, ["CPUExecutionProvider"], self.threads,
                          _default_streams(self.num_streams), self.name, precision)


@dataclass(frozen=True)
class ORT_CUDA:
    """ONNX Runtime on an NVIDIA GPU (needs ``onnxruntime-gpu``).

    Attributes:
        device_id: the CUDA device.
        num_streams: sessions run concurrently.
        fp16: run in half precision (also chosen by ``precision="fp16"``).
    """

    device_id: int = 0
    num_streams: int | None = 1
    name = "ort-cuda"

    def create(self, spec: ModelSpec, precision: Precision) -> Runner:
        if not cuda_available():
            raise BackendError(
                "device='cuda' needs onnxruntime-gpu and an NVIDIA GPU "
                "(pip install onnxruntime-gpu, or use device='cpu')"
            )
        if precision in (Precision.AUTO, Precision.FP32):
            path, precision = spec.path, Precision.FP32
        elif precision is Precision.FP16:
            path = _fp16_model(spec.path)
        else:
            raise BackendError(f"precision={precision.value!r} is not available on device='cuda'; use fp32 or fp16")
        providers = [("CUDAExecutionProvider", {"device_id": self.device_id}), "CPUExecutionProvider"]
        return _OrtRunner(str(path), spec, providers, 0, _default_streams(self.num_streams), self.name, precision)


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when ONNX Runtime was built with CUDA (onnxruntime-gpu) and lists the CUDA provider."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def _fp16_model(path) -> str:
    """An fp16 copy of the model (fp32 inputs/outputs kept), cached next to the user cache dir."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from .cache import cache_dir

    out = cache_dir("models") / (path.stem + ".fp16.onnx")
    if not out.exists():
        proto = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        from .atomic import atomic_write_bytes

        atomic_write_bytes(out, proto.SerializeToString())
    return str(out)


def _int8_path(spec: ModelSpec):
    if spec.int8_path is None or not spec.int8_path.is_file():
        raise BackendError(
            f"precision='int8' needs an INT8 sidecar for model {spec.id!r} and none is registered; "
            "make one with python -m training.ptq_static, or use precision='fp32'"
        )
    return spec.int8_path


# --------------------------------------------------------------------------- OpenVINO


def _import_openvino() -> str | None:
    """Import ``openvino``; None on success, else why not.

    vapoursynth-mlrt-ov bundles its own OpenVINO runtime, loaded with the plugins when ``vs.core`` is
    first touched; once it is in, the Python package refuses to import (version mismatch). Importing
    it first (``import vsfilter`` does) lets both share one runtime.
    """
    if importlib.util.find_spec("openvino") is None:
        return "the openvino package is not installed (pip install 'vsfilter[openvino]')"
    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        if "mismatch" in str(exc):
            return ("another OpenVINO runtime (vapoursynth-mlrt-ov's) was loaded before the openvino package: "
                    "import vsfilter before first using vs.core, and under vspipe (which loads plugins before "
                    f"the script) run it with LD_PRELOAD={openvino_runtime_library()}")
        return f"openvino failed to import: {str(exc).splitlines()[0]}"
    return None


def openvino_runtime_library() -> str:
    """Path of the openvino package's ``libopenvino.so``: preloading it (LD_PRELOAD) makes
    vapoursynth-mlrt-ov share that runtime, so vsfilter's OpenVINO backend works under vspipe too."""
    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.submodule_search_locations:
        return ""
    libs = sorted((Path(next(iter(spec.submodule_search_locations))) / "libs").glob("libopenvino.so.*"))
    return str(libs[0]) if libs else ""


_OPENVINO_IMPORT_ERROR = _import_openvino()


def openvino_available() -> bool:
    """True when the ``openvino`` package imported."""
    return _OPENVINO_IMPORT_ERROR is None


@functools.lru_cache(maxsize=1)
def _ov_core():
    import openvino as ov

    return ov.Core()


def _cpu_has_bf16() -> bool:
    return "BF16" in _ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class _OvRunner:
    """Compiles the model once per input shape and lends a pool of infer requests per shape."""

    def __init__(self, path: str, spec: ModelSpec, config: dict, streams: int, backend: str,
                 precision: Precision) -> None:
        self.backend, self.precision = backend, precision
        self._path, self._config, self._streams = path, config, streams
        self._input = spec.input_name
        self._pools = _ShapePools(self._compile)

    def _compile(self, shape: tuple[int, ...]) -> _Pool:
        core = _ov_core()
        model = core.read_model(self._path)
        model.reshape({self._input: list(shape)})
        compiled = core.compile_model(model, "CPU", self._config)
        warm = np.zeros(shape, np.float32)

        def make():
            # One inference per request here, under the pools' lock: pyopenvino initialises
            # function-local statics on first use, and two VapourSynth threads doing that at once
            # deadlocked (one waits on the C++ init guard holding the GIL).
            request = compiled.create_infer_request()
            self._infer(request, warm)
            return request

        return _Pool(make, self._streams)

    @staticmethod
    def _infer(request, batch: np.ndarray) -> np.ndarray:
        request.infer({0: batch}, share_inputs=True)
        return request.get_output_tensor(0).data.copy()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self._pools.get(batch.shape).run(lambda request: self._infer(request, batch))


@dataclass(frozen=True)
class OpenVINO:
    """OpenVINO on the CPU (optional extra ``openvino``): fp32, bf16 (AMX/AVX-512 BF16) and static INT8.

    Attributes:
        threads: inference threads in all; 0 = OpenVINO's default (all cores).
        num_streams: infer requests run concurrently, one OpenVINO stream each; None = min(2, cores).
    """

    threads: int = 0
    num_streams: int | None = None
    name = "openvino"

    def create(self, spec: ModelSpec, precision: Precision) -> Runner:
        if not openvino_available():
            raise BackendError(f"device='openvino' cannot run: {_OPENVINO_IMPORT_ERROR}")
        bf16 = _cpu_has_bf16()
        path = spec.path
        if precision is Precision.AUTO:
            precision = Precision.INT8 if spec.int8_path is not None and spec.int8_path.is_file() else (
                Precision.BF16 if bf16 else Precision.FP32)
        if precision is Precision.BF16 and not bf16:
            raise BackendError("precision='bf16' needs a CPU with AVX-512 BF16 or AMX; use precision='fp32'")
        if precision is Precision.FP16:
            raise BackendError("precision='fp16' is not available on device='openvino'; use bf16 or fp32")
        if precision is Precision.INT8:
            path = _int8_path(spec)
        # Two infer requests on two streams beat one on both cores (720p bf16: 8.6 vs 7.0 fps).
        streams = self.num_streams if self.num_streams and self.num_streams > 0 else min(2, _cpu_count())
        config = {
            # INT8 layers run in int8 whatever the hint; the hint sets the precision of the rest.
            "INFERENCE_PRECISION_HINT": "bf16" if precision is Precision.BF16 or (precision is Precision.INT8 and bf16) else "f32",
            "NUM_STREAMS": str(streams),
            "PERFORMANCE_HINT": "THROUGHPUT" if streams > 1 else "LATENCY",
        }
        if self.threads > 0:
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
        return _OvRunner(str(path), spec, config, streams, self.name, precision)


Backend = ORT_CPU | ORT_CUDA | OpenVINO


def select_backend(device: str, threads: int, num_streams: int | None) -> Backend:
    """Map the ``device`` argument of `vmaf_pre` to a backend.

    ``"auto"`` picks the fastest one installed: CUDA, then OpenVINO, then ONNX Runtime CPU.
    """
    if device == "auto":
        device = "cuda" if cuda_available() else "openvino" if openvino_available() else "cpu"
    if device == "cpu":
        return ORT_CPU(threads=threads, num_streams=num_streams)
    if device == "cuda":
        return ORT_CUDA(num_streams=num_streams or 1)
    if device == "openvino":
        return OpenVINO(threads=threads, num_streams=num_streams)
    raise BackendError(f"device={device!r} is not one of 'auto', 'cpu', 'cuda', 'openvino'")
