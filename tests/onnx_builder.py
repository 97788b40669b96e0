"""Build learned_filter_v1-shaped ONNX graphs with random weights (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_filter_onnx(path: Path, *, num_blocks: int = 4, channels: int = 16, seed: int = 0,
                      input_name: str = "input", output_name: str = "output", scale: float = 0.05,
                      height: int | str = "H", width: int | str = "W") -> Path:
    """Conv(1->C)+ReLU -> num_blocks x [x + Conv(ReLU(Conv(x)))] -> Conv(C->1), plus the global skip."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def conv(name: str, src: str, cin: int, cout: int) -> str:
        w = (rng.standard_normal((cout, cin, 3, 3)) * scale).astype(np.float32)
        b = (rng.standard_normal(cout) * scale).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}.w"), numpy_helper.from_array(b, f"{name}.b")])
        nodes.append(helper.make_node("Conv", [src, f"{name}.w", f"{name}.b"], [name], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1]))
        return name

    def relu(src: str) -> str:
        nodes.append(helper.make_node("Relu", [src], [src + ".relu"]))
        return src + ".relu"

    x = relu(conv("head", input_name, 1, channels))
    for i in range(num_blocks):
        y = conv(f"b{i}.c2", relu(conv(f"b{i}.c1", x, channels, channels)), channels, channels)
        nodes.append(helper.make_node("Add", [x, y], [f"b{i}.out"]))
        x = f"b{i}.out"
    tail = conv("tail", x, channels, 1)
    nodes.append(helper.make_node("Add", [input_name, tail], [output_name]))
    graph = helper.make_graph(
        nodes, "learned_filter_test",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 1, height, width])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", 1, height, width])],
        inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path
