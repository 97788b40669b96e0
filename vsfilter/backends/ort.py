"""ONNX Runtime backends: ``ORT_CPU`` and ``ORT_CUDA`` (onnxruntime-gpu)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import BackendError
from ..models import ModelSpec
from .base import BackendBase, Pool, Precision, Runner, ShapePools, cpu_count, float_filter_plane, int8_path

__all__ = ["ORT_CPU", "ORT_CUDA", "cuda_available", "session_options", "cuda_provider_options"]


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when ONNX Runtime was built with CUDA (onnxruntime-gpu) and lists the CUDA provider."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def session_options(threads: int, dims: dict[str, int] | None = None):
    """ORT session options: full graph optimisation, ``threads`` intra-op threads, pinned free dims.

    Pinning the model's symbolic dimensions (N, H, W) to the frame's shape lets ORT plan memory and pick
    kernels up front: 7-11% faster at 1080p on the CPU than one dynamic-shape session.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    for name, size in (dims or {}).items():
        opts.add_free_dimension_override_by_name(name, size)
    return opts


def cuda_provider_options(device_id: int, precision: Precision, nhwc: bool) -> dict[str, str]:
    """CUDA EP options. ``fp32`` turns TF32 off: ORT's CUDA EP runs convolutions in TF32 by default,
    which moved 16-bit outputs by up to 4 code values; ``tf32`` asks for it explicitly."""
    return {"device_id": str(device_id), "use_tf32": "1" if precision is Precision.TF32 else "0",
            "prefer_nhwc": "1" if nhwc else "0", "cudnn_conv_algo_search": "EXHAUSTIVE",
            "do_copy_in_default_stream": "1"}


class _OrtRunner:
    """ONNX Runtime sessions per input shape, each pooled ``streams`` deep.

    On CUDA, whole planes go through the model wrapped by :func:`vsfilter.backends.graphs.integer_io`: the
    integer samples are uploaded as they are (IO binding) and normalisation, rounding, clamping and
    the cast back run on the GPU.
    """

    def __init__(self, proto_bytes: bytes, spec: ModelSpec, providers: list, threads: int, streams: int,
                 backend: str, precision: Precision, integer_io: bool) -> None:
        import onnx

        self.backend, self.precision = backend, precision
        self._proto_bytes, self._providers = proto_bytes, providers
        self._input, self._output = spec.input_name, spec.output_name
        self._threads, self._streams, self._integer_io = threads, streams, integer_io
        proto = onnx.ModelProto.FromString(proto_bytes)
        value = next(i for i in proto.graph.input if i.name == self._input)
        self._dim_names = [d.dim_param for d in value.type.tensor_type.shape.dim]
        self._pools = ShapePools(lambda key: Pool(lambda: self._session(*key), streams))
        self._integer_graphs: dict[int, bytes] = {}
        self._session(None, 0)  # fail now, not at the first frame, when the provider cannot start

    def _session(self, shape: tuple[int, ...] | None, bits: int):
        import onnxruntime as ort

        dims = {n: s for n, s in zip(self._dim_names, shape or ()) if n}
        model = self._proto_bytes if not bits else self._integer_graph(bits)
        try:
            session = ort.InferenceSession(model, sess_options=session_options(self._threads, dims),
                                           providers=self._providers)
        except Exception:
            if not self._drop_nhwc():
                raise
            session = ort.InferenceSession(model, sess_options=session_options(self._threads, dims),
                                           providers=self._providers)
        wanted = self._providers[0] if isinstance(self._providers[0], str) else self._providers[0][0]
        if wanted not in session.get_providers():
            raise BackendError(f"ONNX Runtime could not start {wanted} (got {session.get_providers()})")
        return session

    def _drop_nhwc(self) -> bool:
        """Retry without ``prefer_nhwc`` (an onnxruntime-gpu built without NHWC kernels refuses it)."""
        first = self._providers[0]
        if isinstance(first, tuple) and first[1].get("prefer_nhwc") == "1":
            self._providers = [(first[0], first[1] | {"prefer_nhwc": "0"}), *self._providers[1:]]
            return True
        return False

    def _integer_graph(self, bits: int) -> bytes:
        if bits not in self._integer_graphs:
            import onnx

            from .graphs import integer_io

            self._integer_graphs[bits] = integer_io(onnx.ModelProto.FromString(self._proto_bytes),
                                                    bits).SerializeToString()
        return self._integer_graphs[bits]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        feed = {self._input: np.ascontiguousarray(batch, dtype=np.float32)}
        return self._pools.get((batch.shape, 0)).run(lambda s: s.run([self._output], feed)[0])

    def filter_plane(self, plane: np.ndarray, peak: int | None) -> np.ndarray:
        if not self._integer_io or peak is None:
            return float_filter_plane(self, plane, peak)
        bits = int(peak).bit_length()
        arr = np.ascontiguousarray(plane)[None, None]

        def run(session) -> np.ndarray:
            binding = session.io_binding()
            binding.bind_cpu_input("plane", arr)
            binding.bind_output("plane_out", "cpu")
            session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()[0][0, 0]

        return self._pools.get((arr.shape, bits)).run(run)


@dataclass(frozen=True)
class ORT_CPU(BackendBase):
    """ONNX Runtime on the CPU (the default backend): fp32, and int8 with the model's QDQ sidecar.

    Attributes:
        threads: intra-op threads per session; 0 = the cores divided among the streams.
        num_streams: sessions run concurrently, one frame each; None = 1 (which uses every core).
    """

    threads: int = 0
    num_streams: int | None = None
    name: ClassVar[str] = "ort-cpu"
    tiles_large_frames: ClassVar[bool] = True
    precisions: ClassVar[tuple[Precision, ...]] = (Precision.FP32, Precision.INT8)

    def _create(self, spec: ModelSpec, precision: Precision) -> Runner:
        # Measured at 1080p on 2 cores: one session using every core beats one session per core
        # (3.65 vs 2.86 fps); VapourSynth's other threads still overlap sample conversion with inference.
        streams = self.num_streams or 1
        path = int8_path(spec) if precision is Precision.INT8 else spec.path
        threads = self.threads or max(1, cpu_count() // streams)
        return _OrtRunner(Path(path).read_bytes(), spec, ["CPUExecutionProvider"], threads, streams, self.name,
                          precision, integer_io=False)


@dataclass(frozen=True)
class ORT_CUDA(BackendBase):
    """ONNX Runtime on an NVIDIA GPU (needs ``onnxruntime-gpu``): fp32 (TF32 off), tf32, fp16.

    Whole planes are uploaded as integer samples and converted on the GPU (see ``graphs.integer_io``).

    Attributes:
        device_id: the CUDA device.
        num_streams: sessions run concurrently (each has its own CUDA stream).
        nhwc: let the CUDA EP use NHWC convolution kernels (``prefer_nhwc``).
    """

    device_id: int = 0
    num_streams: int | None = None
    nhwc: bool = True
    name: ClassVar[str] = "ort-cuda"
    precisions: ClassVar[tuple[Precision, ...]] = (Precision.FP32, Precision.TF32, Precision.FP16)

    def available(self) -> str | None:
        if not cuda_available():
            return ("device='cuda' needs an NVIDIA GPU with PyTorch (a CUDA build) or onnxruntime-gpu "
                    "(pip install onnxruntime-gpu); or use device='cpu'")
        return None

    def auto_precision(self, spec: ModelSpec) -> Precision:
        return Precision.FP16

    def _create(self, spec: ModelSpec, precision: Precision) -> Runner:
        import onnx
        import onnxruntime as ort

        if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from the nvidia-* wheels, where those are installed
            ort.preload_dlls()
        proto = onnx.load(str(spec.path))
        if precision is Precision.FP16:
            from .graphs import fp16_body

            proto = fp16_body(proto)
        providers = [("CUDAExecutionProvider", cuda_provider_options(self.device_id, precision, self.nhwc)),
                     "CPUExecutionProvider"]
        return _OrtRunner(proto.SerializeToString(), spec, providers, 0, self.num_streams or 2, self.name,
                          precision, integer_io=True)
