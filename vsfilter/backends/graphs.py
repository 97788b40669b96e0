"""ONNX graph rewrites the backends run: integer planes in and out, and an fp16 body with an fp32 skip.

``integer_io`` wraps a ``[N,1,H,W]`` float filter so the whole sample conversion happens inside the
graph, on the device that runs it: integer samples in (uint8/uint16, as coded), ``/ peak``, the
model, ``* peak``, round half to even, clamp to ``[0, peak]``, integer samples out -- what
``vmaf_pre`` does on the CPU, bit for bit on the CPU provider. A GPU then receives 1-2 bytes per
sample instead of 4 and returns as many.

``fp16_body`` converts a model to float16 but keeps float32 I/O and the global skip (the Add that
reads the graph input): the input is added back in full precision, so only the small learned residual
is computed in half precision (a 16-bit plane keeps ~16 bits instead of fp16's 11).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["integer_io", "fp16_body", "skip_adds", "io_names"]


def io_names(proto: onnx.ModelProto) -> tuple[str, str]:
    """(input, output) names of a single-input, single-output graph (initializers excluded)."""
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i.name for i in proto.graph.input if i.name not in inits]
    return inputs[0], proto.graph.output[0].name


def skip_adds(proto: onnx.ModelProto) -> list[str]:
    """Names of the Add nodes that read the graph input directly (the global residual skip)."""
    source, _ = io_names(proto)
    return [n.name for n in proto.graph.node if n.op_type == "Add" and source in n.input]


def fp16_body(proto: onnx.ModelProto) -> onnx.ModelProto:
    """float16 weights and activations, float32 I/O and skip Add (see the module doc).

    Written for the allowlist graphs (Conv, Relu, Add, Clip): every float initializer becomes float16,
    the input is cast to float16 once for the body, and each Add that reads the input directly adds
    the float32 input to its other operand cast back to float32.
    """
    import numpy as np

    proto = _named(proto)
    graph = proto.graph
    source, result = io_names(proto)
    skips = set(skip_adds(proto))
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    nodes = [helper.make_node("Cast", [source], ["vsf_input_fp16"], to=TensorProto.FLOAT16, name="vsf_input_fp16")]
    for node in graph.node:
        if node.name in skips:
            other = next(n for n in node.input if n != source)
            nodes.append(helper.make_node("Cast", [other], [other + "_fp32"], to=TensorProto.FLOAT,
                                          name=node.name + "_fp32"))
            node.input[:] = [n if n == source else other + "_fp32" for n in node.input]
        else:
            node.input[:] = ["vsf_input_fp16" if n == source else n for n in node.input]
        nodes.append(node)
    if not any(n.name in skips and result in n.output for n in graph.node):
        for node in nodes:
            node.output[:] = ["vsf_output_fp16" if n == result else n for n in node.output]
        nodes.append(helper.make_node("Cast", ["vsf_output_fp16"], [result], to=TensorProto.FLOAT,
                                      name="vsf_output_fp32"))
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return proto


def _named(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy in which every node has a unique name (exporters may leave them empty)."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    seen: set[str] = set()
    for i, node in enumerate(proto.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)
    return proto


def integer_io(proto: onnx.ModelProto, bits: int) -> onnx.ModelProto:
    """``proto`` (float32 ``[N,1,H,W]`` in and out) wrapped to take and return ``bits``-bit integer samples.

    Args:
        proto: the filter graph.
        bits: sample bits, 8-16 (uint8 for 8, uint16 above).
    """
    if not 8 <= bits <= 16:
        raise ValueError(f"integer samples of 8-16 bits, not {bits}")
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = proto.graph
    source, result = io_names(proto)
    elem = TensorProto.UINT8 if bits == 8 else TensorProto.UINT16
    peak = float((1 << bits) - 1)
    for node in graph.node:
        node.input[:] = ["vsf_model_in" if n == source else n for n in node.input]
        node.output[:] = ["vsf_model_out" if n == result else n for n in node.output]
    shape = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    consts = [numpy_helper.from_array(_f32(peak), "vsf_peak"), numpy_helper.from_array(_f32(0.0), "vsf_zero")]
    pre = [helper.make_node("Cast", ["plane"], ["vsf_plane_f"], to=TensorProto.FLOAT, name="vsf_cast_in"),
           helper.make_node("Div", ["vsf_plane_f", "vsf_peak"], ["vsf_model_in"], name="vsf_normalise")]
    post = [helper.make_node("Mul", ["vsf_model_out", "vsf_peak"], ["vsf_scaled"], name="vsf_scale"),
            helper.make_node("Round", ["vsf_scaled"], ["vsf_rounded"], name="vsf_round"),
            helper.make_node("Clip", ["vsf_rounded", "vsf_zero", "vsf_peak"], ["vsf_clipped"], name="vsf_clamp"),
            helper.make_node("Cast", ["vsf_clipped"], ["plane_out"], to=elem, name="vsf_cast_out")]
    nodes = pre + list(graph.node) + post
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(consts)
    inits = {i.name for i in graph.initializer}
    kept_inputs = [i for i in graph.input if i.name in inits]
    del graph.input[:]
    graph.input.extend([helper.make_tensor_value_info("plane", elem, shape), *kept_inputs])
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info("plane_out", elem, shape)])
    del graph.value_info[:]
    _ensure_opset(proto, 11)  # Round
    return proto


def _f32(value: float):
    import numpy as np

    return np.array(value, dtype=np.float32)


def _ensure_opset(proto: onnx.ModelProto, minimum: int) -> None:
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < minimum:
            opset.version = minimum
