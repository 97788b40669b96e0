"""``TORCH_CUDA``: the model's ONNX weights run by PyTorch on an NVIDIA GPU, the whole plane on the GPU.

Why PyTorch as well as ONNX Runtime: the network is tiny per pixel (16 channels), so memory traffic
and launch overhead bound it, not FLOPs. Measured on an H200 at 1080p, ORT's CUDA EP reached 116 fps
in fp32 and 107 in fp16 (its float16 graph is slower than fp32), PyTorch with cuDNN and channels_last
149-153 fps in fp32 and 262-272 in fp16 on the same weights. This runner goes further than that
PyTorch loop by removing what surrounds the model:

- the plane is uploaded as its integer samples (1-2 bytes each, from pinned memory) and normalised,
  rounded, clamped and cast back on the GPU, so 2-4x fewer bytes cross PCIe each way;
- the per-plane work (conversion, model, conversion back) is one CUDA graph per shape, replayed on
  one of ``num_streams`` CUDA streams, so launches cost one call and frames overlap;
- channels_last activations, cuDNN's fastest algorithms (benchmarked once per shape), and in fp16/bf16
  the global skip added in fp32 (only the learned residual is computed in half precision).

``precision="fp32"`` is true fp32: TF32 is off while the graphs are captured (``"tf32"`` turns it on).
Only graphs of Conv, Relu, Add, Clip (and Identity) run here -- the card's allowlist; anything else
is refused with a pointer to ``ORT_CUDA``.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..models import ModelSpec
from .base import BackendBase, Pool, Precision, Runner, ShapePools

__all__ = ["TORCH_CUDA", "torch_cuda_available", "build_module", "integer_pipeline"]



@functools.lru_cache(maxsize=1)
def torch_cuda_available() -> bool:
    """True when PyTorch is installed and sees a CUDA GPU (cheap when there is no NVIDIA device)."""
    if importlib.util.find_spec("torch") is None:
        return False
    if not any(Path("/dev").glob("nvidia*")) and not Path("/proc/driver/nvidia").exists():
        return False  # no NVIDIA driver: skip importing torch (seconds) to learn that
    import torch

    return bool(torch.cuda.is_available())


def build_module(path: Path, input_name: str, output_name: str):
    """The ONNX model at ``path`` (Conv/Relu/Add/Clip nodes) as a torch module ``f(x32) -> y32``."""
    from .torch_graph import load_graph_module

    return load_graph_module(path, input_name, output_name)


def integer_pipeline(module, samples, bits: int):
    """Integer samples (uint8, or uint16 bit patterns in int16) -> ``/ peak`` -> ``module`` -> ``* peak``
    -> round half to even -> clamp -> integer samples of the same type; on the samples' device."""
    import torch

    peak = float((1 << bits) - 1)
    with torch.inference_mode():
        x = samples.to(torch.int32).bitwise_and_(0xFFFF) if bits > 8 else samples
        x = x.to(torch.float32).div_(peak)[None, None].contiguous(memory_format=torch.channels_last)
        y = module(x)[0, 0]
        y = y.mul(peak).round_().clamp_(0.0, peak).to(torch.int32)
        return y.to(torch.uint8) if bits == 8 else y.to(torch.int16)


class _Slot:
    """One CUDA stream with its pinned host buffers, device buffers and captured graph for one shape."""

    def __init__(self, runner: _TorchRunner, shape: tuple[int, int], bits: int) -> None:
        import torch

        cuda = runner.device.type == "cuda"
        self.stream: Any = torch.cuda.Stream(device=runner.device) if cuda else None
        host = torch.uint8 if bits == 8 else torch.int16  # uint16 samples travel as int16 bit patterns
        self.host_in = torch.empty(shape, dtype=host, pin_memory=cuda)
        self.host_out = torch.empty(shape, dtype=host, pin_memory=cuda)
        self.np_in = self.host_in.numpy().view(np.uint8 if bits == 8 else np.uint16)
        self.np_out = self.host_out.numpy().view(np.uint8 if bits == 8 else np.uint16)
        self.dev_in = torch.empty(shape, dtype=host, device=runner.device)
        self.graph = None
        self.runner, self.bits = runner, bits
        if not cuda:  # the CPU twin (tests): same conversions and model, no streams or graphs
            return
        stream: Any = self.stream
        with torch.cuda.stream(stream), runner.cudnn_flags():
            self.dev_out = self._pipeline()  # also warms cuDNN's algorithm choice for this shape
            stream.synchronize()
            if runner.cuda_graphs:
                for _ in range(2):
                    self._pipeline()
                stream.synchronize()
                self.graph = self._capture()

    def _capture(self):
        """The pipeline as a CUDA graph; None (plain launches) if capturing fails twice."""
        import torch

        assert self.stream is not None
        for _ in range(2):
            graph = torch.cuda.CUDAGraph()
            try:
                # thread_local: other VapourSynth threads may sync or allocate while this one captures
                with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                    self.dev_out = self._pipeline()
                self.stream.synchronize()
                return graph
            except RuntimeError:  # the first capture in a process can hit lazy CUDA initialisation
                torch.cuda.synchronize(self.runner.device)
        self.dev_out = self._pipeline()
        return None

    def _pipeline(self):
        return integer_pipeline(self.runner.module, self.dev_in, self.bits)

    def run(self, plane: np.ndarray) -> np.ndarray:
        import torch

        np.copyto(self.np_in, plane)
        if self.stream is None:
            return integer_pipeline(self.runner.module, self.host_in, self.bits).numpy().view(self.np_out.dtype).copy()
        stream = self.stream
        with torch.cuda.stream(stream):
            self.dev_in.copy_(self.host_in, non_blocking=True)
            if self.graph is not None:
                self.graph.replay()
            else:
                with self.runner.cudnn_flags():
                    self.dev_out = self._pipeline()
            self.host_out.copy_(self.dev_out, non_blocking=True)
        stream.synchronize()
        return self.np_out.copy()


class _TorchRunner:
    """Per (shape, bits): a pool of ``streams`` slots; float batches (tiles) run without graphs."""

    def __init__(self, spec: ModelSpec, precision: Precision, device, streams: int,
                 cuda_graphs: bool, backend: str) -> None:
        import torch

        self.backend, self.precision = backend, precision
        self.device = torch.device(device)
        self.cuda_graphs = cuda_graphs
        module = build_module(spec.path, spec.input_name, spec.output_name)
        if precision in (Precision.FP16, Precision.BF16):
            module.set_half(torch.float16 if precision is Precision.FP16 else torch.bfloat16)
        self.module = module.to(self.device)
        if precision in (Precision.FP16, Precision.BF16):  # NHWC tensor-core kernels; fp32 runs faster NCHW
            for key in module.names.values():
                buf = getattr(module, key)
                if buf.dim() == 4:
                    setattr(module, key, buf.contiguous(memory_format=torch.channels_last))
        self._pools = ShapePools(lambda key: Pool(lambda: _Slot(self, key[0], key[1]), streams))
        self._float_lock = threading.Lock()

    def cudnn_flags(self):
        import contextlib

        import torch

        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False,
                                          allow_tf32=self.precision is Precision.TF32)

    def filter_plane(self, plane: np.ndarray, peak: int | None) -> np.ndarray:
        if peak is None:
            return self(plane.astype(np.float32, copy=False)[None, None])[0, 0].astype(plane.dtype, copy=False)
        key = (plane.shape, int(peak).bit_length())
        return self._pools.get(key).run(lambda slot: slot.run(plane))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with self._float_lock, torch.inference_mode(), self.cudnn_flags():
            x = torch.from_numpy(np.require(batch, np.float32, ["C", "W"])).to(self.device)
            return self.module(x.contiguous(memory_format=torch.channels_last)).cpu().numpy()


@dataclass(frozen=True)
class TORCH_CUDA(BackendBase):
    """The model's ONNX weights on PyTorch + cuDNN on an NVIDIA GPU: fp32 (no TF32), tf32, fp16, bf16.

    Attributes:
        device_id: the CUDA device.
        num_streams: CUDA streams (frames in flight); None = 3.
        cuda_graphs: capture the per-plane work as one CUDA graph per frame shape.
    """

    device_id: int = 0
    num_streams: int | None = None
    cuda_graphs: bool = True
    name: ClassVar[str] = "torch-cuda"
    precisions: ClassVar[tuple[Precision, ...]] = (Precision.FP32, Precision.TF32, Precision.FP16, Precision.BF16)

    def available(self) -> str | None:
        if not torch_cuda_available():
            return "TORCH_CUDA needs PyTorch with CUDA and an NVIDIA GPU (or use device='cpu')"
        return None

    def auto_precision(self, spec: ModelSpec) -> Precision:
        return Precision.FP16

    def _create(self, spec: ModelSpec, precision: Precision) -> Runner:
        return _TorchRunner(spec, precision, f"cuda:{self.device_id}", self.num_streams or 3, self.cuda_graphs,
                            self.name)
