"""The CUDA code up to the device boundary, on the CPU: session options, the composed integer-I/O
graph, the fp16 rewrite, the PyTorch executor and its integer pipeline, and the error messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import vapoursynth as vs

from vsfilter import vmaf_pre
from vsfilter.backends import ORT_CUDA, TORCH_CUDA, Precision
from vsfilter.backends.base import float_filter_plane
from vsfilter.backends.graphs import fp16_body, integer_io, skip_adds
from vsfilter.backends.ort import cuda_provider_options

from conftest import noise_clip, one_line_error
from onnx_builder import build_filter_onnx

torch = pytest.importorskip("torch", reason="the train extra (torch) is needed for the PyTorch executor")


def _cpu_session(proto_or_path):
    data = proto_or_path if isinstance(proto_or_path, (str, Path)) else proto_or_path.SerializeToString()
    return ort.InferenceSession(str(data) if isinstance(data, Path) else data, providers=["CPUExecutionProvider"])


def test_fp32_turns_tf32_off_and_tf32_is_its_own_precision():
    assert cuda_provider_options(0, Precision.FP32, True)["use_tf32"] == "0"
    assert cuda_provider_options(0, Precision.FP16, True)["use_tf32"] == "0"
    assert cuda_provider_options(1, Precision.TF32, False) | {} == {
        "device_id": "1", "use_tf32": "1", "prefer_nhwc": "0", "cudnn_conv_algo_search": "EXHAUSTIVE",
        "do_copy_in_default_stream": "1"}
    assert set(ORT_CUDA.precisions) == {Precision.FP32, Precision.TF32, Precision.FP16}
    assert Precision.TF32 in TORCH_CUDA.precisions


@pytest.mark.parametrize("bits", [8, 10, 16])
def test_integer_io_graph_equals_the_cpu_path(filter_onnx, bits):
    """What the CUDA EP runs (integer samples in, conversion inside the graph) is bit-exact on the CPU."""
    dtype = np.uint8 if bits == 8 else np.uint16
    plane = np.random.default_rng(bits).integers(0, 1 << bits, (45, 67)).astype(dtype)
    session = _cpu_session(filter_onnx)
    ref = float_filter_plane(lambda b: session.run(None, {"input": b})[0], plane, (1 << bits) - 1)
    composed = _cpu_session(integer_io(onnx.load(str(filter_onnx)), bits))
    got = composed.run(None, {"plane": plane[None, None]})[0][0, 0]
    assert got.dtype == dtype and np.array_equal(got, ref)


def test_fp16_body_keeps_float32_io_and_skip(filter_onnx):
    proto = onnx.load(str(filter_onnx))
    half = fp16_body(proto)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert onnx.TensorProto.FLOAT16 in {i.data_type for i in half.graph.initializer}
    from vsfilter.backends.graphs import _named

    skip = skip_adds(_named(proto))
    assert len(skip) == 1  # the global residual Add reads the fp32 input and a cast of the residual
    add = next(n for n in half.graph.node if n.name == skip[0])
    assert "input" in add.input and any(n.op_type == "Cast" and n.output[0] in add.input for n in half.graph.node)
    x = np.random.default_rng(0).random((1, 1, 40, 52), dtype=np.float32)
    ref = _cpu_session(filter_onnx).run(None, {"input": x})[0]
    out = _cpu_session(half).run(None, {"input": x})[0]
    assert np.abs(out - ref).max() < 2e-2


@dataclass(frozen=True)
class TorchOnCPU(TORCH_CUDA):
    """TORCH_CUDA's runner on the CPU: same executor, pool and integer pipeline, no streams or graphs."""

    def available(self):
        return None

    def _create(self, spec, precision):
        from vsfilter.backends.torch_cuda import _TorchRunner

        return _TorchRunner(spec, precision, "cpu", 2, False, self.name)


@pytest.mark.parametrize("fmt", [vs.GRAY8, vs.YUV420P10, vs.GRAY16, vs.GRAYS])
def test_pytorch_executor_equals_the_cpu_path(core, filter_onnx, fmt):
    clip = noise_clip(core, fmt, 132, 78, length=3)
    for model in (str(filter_onnx), "learned_filter_v1"):
        ref = vmaf_pre(clip, model=model, device="cpu")
        ours = vmaf_pre(clip, model=model, backend=TorchOnCPU(), precision="fp32")
        for n in range(3):
            a, b = np.asarray(ref.get_frame(n)[0]), np.asarray(ours.get_frame(n)[0])
            if fmt == vs.GRAYS:
                np.testing.assert_allclose(a, b, atol=1e-5)
            else:
                diff = np.abs(a.astype(np.int64) - b)
                assert diff.max() <= 1 and (diff > 0).mean() < 0.005
        assert ours.get_frame(0).props["VmafPreBackend"] == "torch-cuda"


def test_pytorch_fp16_adds_the_input_back_in_fp32(core):
    """On a 16-bit plane the fp16 path stays within the budget test_gpu states (the skip is fp32): torch's CPU
    fp16 kernels accumulate in fp16 (cuDNN's in fp32), so this twin is the worse case: 120 codes measured."""
    clip = noise_clip(core, vs.GRAY16, 128, 96, length=1)
    ref = np.asarray(vmaf_pre(clip, device="cpu").get_frame(0)[0]).astype(np.int64)
    half = np.asarray(vmaf_pre(clip, backend=TorchOnCPU(), precision="fp16").get_frame(0)[0])
    assert np.abs(ref - half).max() <= 256


def test_pytorch_executor_refuses_other_ops(core, tmp_path):
    proto = onnx.load(str(build_filter_onnx(tmp_path / "m.onnx")))
    relu = next(n for n in proto.graph.node if n.op_type == "Relu")
    relu.op_type = "Sigmoid"
    onnx.save(proto, str(tmp_path / "sigmoid.onnx"))
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    msg = one_line_error(lambda: vmaf_pre(clip, model=str(tmp_path / "sigmoid.onnx"), backend=TorchOnCPU()),
                         "vmaf_pre: ")
    assert "Sigmoid" in msg and "ORT_CUDA" in msg


def test_cuda_errors_name_the_fix(core, filter_onnx):
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    if not (ORT_CUDA().available() is None or TORCH_CUDA().available() is None):
        msg = one_line_error(lambda: vmaf_pre(clip, model=str(filter_onnx), device="cuda"), "vmaf_pre: ")
        assert "onnxruntime-gpu" in msg and "PyTorch" in msg and "device='cpu'" in msg
        msg = one_line_error(lambda: vmaf_pre(clip, model=str(filter_onnx), backend=TORCH_CUDA()), "vmaf_pre: ")
        assert "TORCH_CUDA needs PyTorch with CUDA" in msg
    for precision in ("fp16", "tf32"):
        msg = one_line_error(lambda p=precision: vmaf_pre(clip, model=str(filter_onnx), device="cpu", precision=p),
                             "vmaf_pre: ")
        assert f"precision='{precision}' is not available on ort-cpu" in msg and "CUDA" in msg
    msg = one_line_error(lambda: vmaf_pre(clip, model=str(filter_onnx), backend="cuda"), "vmaf_pre: ")
    assert "backend must be ORT_CPU(...)" in msg
