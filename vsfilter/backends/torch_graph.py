"""An ONNX graph of Conv/Relu/Add/Clip nodes run with PyTorch ops (imported only by the PyTorch backend).

:class:`OnnxGraphModule` holds the graph's initializers as buffers and executes its nodes in order;
with :meth:`~OnnxGraphModule.set_half` the body runs in float16/bfloat16 while each Add that reads the
graph input (the global residual skip) adds the float32 input to its other operand cast back to float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import torch
from onnx import numpy_helper
from torch import nn
from torch.nn import functional as F

from ..errors import BackendError

__all__ = ["SUPPORTED_OPS", "OnnxGraphModule", "load_graph_module"]

SUPPORTED_OPS = frozenset({"Conv", "Relu", "Add", "Clip", "Identity"})

Node = tuple[str, list[str], list[str], dict[str, Any]]


def _conv_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise BackendError("TORCH_CUDA needs explicit Conv pads (auto_pad is not supported); use ORT_CUDA")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise BackendError("TORCH_CUDA needs symmetric Conv pads; use ORT_CUDA")
    return {"stride": tuple(attrs.get("strides", (1, 1))), "padding": tuple(pads[:2]),
            "dilation": tuple(attrs.get("dilations", (1, 1))), "groups": int(attrs.get("group", 1))}


class OnnxGraphModule(nn.Module):
    """The graph as a module ``f(x) -> y`` (see the module doc).

    Args:
        weights: initializer name -> tensor.
        nodes: (op type, inputs, outputs, attributes) in the graph's order.
        input_name, output_name: the graph's input and output.
    """

    def __init__(self, weights: dict[str, torch.Tensor], nodes: list[Node], input_name: str, output_name: str) -> None:
        super().__init__()
        self.nodes, self.input_name, self.output_name = nodes, input_name, output_name
        self.names: dict[str, str] = {}
        for i, (name, tensor) in enumerate(weights.items()):
            self.register_buffer(f"w{i}", tensor)
            self.names[name] = f"w{i}"
        self.half_dtype: torch.dtype | None = None

    def set_half(self, dtype: torch.dtype) -> OnnxGraphModule:
        """Run the body in ``dtype`` (float16/bfloat16), the skip Adds on the input in float32."""
        self.half_dtype = dtype
        for key in self.names.values():
            buf = getattr(self, key)
            if buf.dtype.is_floating_point:
                setattr(self, key, buf.to(dtype))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, Any] = {self.input_name: x if self.half_dtype is None else x.to(self.half_dtype)}
        for op, ins, outs, attrs in self.nodes:
            args: list[Any] = [values[n] if n in values else getattr(self, self.names[n]) if n else None for n in ins]
            values[outs[0]] = self._node(op, ins, args, attrs, x)
        out = values[self.output_name]
        return out.float() if self.half_dtype is not None else out

    def _node(self, op: str, ins: list[str], args: list[Any], attrs: dict[str, Any], x: torch.Tensor) -> Any:
        if op == "Conv":
            return F.conv2d(args[0], args[1], args[2] if len(args) > 2 else None, **attrs)
        if op == "Relu":
            return F.relu(args[0])
        if op == "Add":
            if self.half_dtype is not None and self.input_name in ins:  # the global skip, in fp32
                return x + (args[1] if ins[0] == self.input_name else args[0]).float()
            return args[0] + args[1]
        if op == "Clip":
            lo = attrs.get("min", args[1] if len(args) > 1 else None)
            hi = attrs.get("max", args[2] if len(args) > 2 else None)
            return torch.clamp(args[0], min=lo, max=hi)
        return args[0]  # Identity


def load_graph_module(path: Path, input_name: str, output_name: str) -> OnnxGraphModule:
    """The ONNX model at ``path`` as an :class:`OnnxGraphModule` in eval mode (CPU, float32)."""
    proto = onnx.load(str(path))
    bad = sorted({n.op_type for n in proto.graph.node} - SUPPORTED_OPS)
    if bad:
        raise BackendError(f"TORCH_CUDA runs graphs of {', '.join(sorted(SUPPORTED_OPS))}; this model has "
                           f"{', '.join(bad)}: use ORT_CUDA (device='cuda' with onnxruntime-gpu)")
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in proto.graph.initializer}
    nodes: list[Node] = []
    for node in proto.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        nodes.append((node.op_type, list(node.input), list(node.output),
                      _conv_attrs(attrs) if node.op_type == "Conv" else attrs))
    return OnnxGraphModule(weights, nodes, input_name, output_name).eval()
