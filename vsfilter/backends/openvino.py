"""The OpenVINO backend (optional extra ``openvino``): fp32, bf16 (AMX / AVX-512 BF16) and static INT8."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _openvino
from ..errors import BackendError
from ..models import ModelSpec
from .base import BackendBase, Pool, Precision, Runner, ShapePools, cpu_count, float_filter_plane, int8_path

__all__ = ["OpenVINO", "openvino_available", "cpu_has_bf16"]


def openvino_available() -> bool:
    """True when the ``openvino`` package imported (see ``vsfilter._openvino``)."""
    return _openvino.IMPORT_ERROR is None


@functools.lru_cache(maxsize=1)
def _core():
    import openvino as ov

    return ov.Core()


def cpu_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively on this CPU."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class _OvRunner:
    """Compiles the model once per input shape and lends a pool of infer requests per shape."""

    def __init__(self, path: str, spec: ModelSpec, config: dict, streams: int, backend: str,
                 precision: Precision) -> None:
        self.backend, self.precision = backend, precision
        self._path, self._config, self._streams = path, config, streams
        self._input = spec.input_name
        self._pools = ShapePools(self._compile)

    def _compile(self, shape: tuple[int, ...]) -> Pool:
        core = _core()
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

        return Pool(make, self._streams)

    @staticmethod
    def _infer(request, batch: np.ndarray) -> np.ndarray:
        request.infer({0: batch}, share_inputs=True)
        return request.get_output_tensor(0).data.copy()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self._pools.get(batch.shape).run(lambda request: self._infer(request, batch))

    def filter_plane(self, plane: np.ndarray, peak: int | None) -> np.ndarray:
        return float_filter_plane(self, plane, peak)


@dataclass(frozen=True)
class OpenVINO(BackendBase):
    """OpenVINO on the CPU: fp32, bf16 (CPUs with AMX or AVX-512 BF16) and static INT8.

    Attributes:
        threads: inference threads in all; 0 = OpenVINO's default (all cores).
        num_streams: infer requests run concurrently, one OpenVINO stream each; None = min(2, cores).
    """

    threads: int = 0
    num_streams: int | None = None
    name: ClassVar[str] = "openvino"
    tiles_large_frames: ClassVar[bool] = True
    precisions: ClassVar[tuple[Precision, ...]] = (Precision.FP32, Precision.BF16, Precision.INT8)

    def available(self) -> str | None:
        if _openvino.IMPORT_ERROR is not None:
            return f"device='openvino' cannot run: {_openvino.IMPORT_ERROR}"
        return None

    def auto_precision(self, spec: ModelSpec) -> Precision:
        if spec.int8_path is not None and spec.int8_path.is_file() and not spec.int8_error:
            return Precision.INT8
        return Precision.BF16 if cpu_has_bf16() else Precision.FP32

    def _create(self, spec: ModelSpec, precision: Precision) -> Runner:
        bf16 = cpu_has_bf16()
        if precision is Precision.BF16 and not bf16:
            raise BackendError("precision='bf16' needs a CPU with AVX-512 BF16 or AMX; use precision='fp32'")
        path = int8_path(spec) if precision is Precision.INT8 else spec.path
        # Two infer requests on two streams beat one on both cores (720p bf16: 8.6 vs 7.0 fps).
        streams = self.num_streams or min(2, cpu_count())
        # INT8 layers run in int8 whatever the hint; the hint sets the precision of the rest, which for
        # INT8 stays f32: a sidecar leaves layers float because int8 is too coarse there, and bf16 (8
        # mantissa bits) is coarser still. With bf16 there (a Zen 4 EPYC, 2026-12-07) codec_v3's INT8
        # moved 5.3% of a frame's pixels off fp32 instead of 3.0%, and lost up to 0.097 dB of fp32's
        # gain on real clips instead of 0.040 (ONNX Runtime's INT8 of the same sidecar: 3.4%, 0.040).
        hint = "bf16" if precision is Precision.BF16 else "f32"
        config = {"INFERENCE_PRECISION_HINT": hint, "NUM_STREAMS": str(streams),
                  "PERFORMANCE_HINT": "THROUGHPUT" if streams > 1 else "LATENCY"}
        if self.threads > 0:
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
        return _OvRunner(str(path), spec, config, streams, self.name, precision)
