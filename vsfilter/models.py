"""Finding, verifying and describing the ONNX models that `vmaf_pre` runs.

A model is named either by an id from the registry in ``model/tiny/registry.json`` (the shipped
models, checked against their sha256 on load) or by a path to any ``.onnx`` file whose single input is
``[N, 1, H, W]`` and whose single output has the same shape.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import onnx

from .errors import ModelError
from .gate import Gate
from .quantizer import KINDS

__all__ = [
    "ModelError",
    "ModelSpec",
    "model_dir",
    "load_registry",
    "resolve_model",
    "sha256_file",
    "receptive_radius",
    "INPUT_LAYOUTS",
]

#: What a model's input channels hold, by their count (a registry row's ``inputs``): the luma; the luma
#: and its quantizer plane (``vsfilter.quantizer``); or a temporal model's frame, previous frame and
#: next frame, each luma followed by its quantizer plane (``vmaf_pre`` repeats a clip's first and last
#: frame as their own missing neighbour).
INPUT_LAYOUTS: dict[int, tuple[str, ...]] = {
    1: ("luma",),
    2: ("luma", "quantizer"),
    6: ("luma", "quantizer", "previous_luma", "previous_quantizer", "next_luma", "next_quantizer"),
}

#: Environment variable that points at another model directory (holding a ``registry.json``).
MODEL_DIR_ENV = "VSFILTER_MODEL_DIR"


@dataclass(frozen=True)
class ModelSpec:
    """A verified model, ready to hand to a backend.

    Attributes:
        id: registry id, or the file stem for a model given by path.
        path: the fp32 ONNX file.
        sha256: hex digest of ``path``.
        input_name: the graph's input tensor name (``input`` on the card, ``degraded`` on the reference).
        output_name: the graph's output tensor name.
        receptive_radius: pixels of context each output pixel depends on, on each side.
        int8_path: the static INT8 (QDQ) sidecar, when the registry lists one.
        int8_sha256: hex digest of ``int8_path``.
        nonlocal_op: the first op whose output pixel depends on more than a bounded window (e.g.
            ``GlobalAveragePool``, ``Resize``): such a model cannot be tiled. None for local models.
        same_shape: the graph states that the output has the input's height and width (else a probe
            inference checks it when the filter is built).
        int8_error: why the registered INT8 sidecar cannot be used (missing, damaged), else None; it
            only matters when INT8 is asked for.
        gate: the per-frame gate of a gated registry model (the network runs on the frames it selects,
            the others pass unchanged; see ``vsfilter.gate``), else None.
        planes: input planes (:data:`INPUT_LAYOUTS`): 1 (``[N,1,H,W]``: the luma), 2 (``[N,2,H,W]``: the
            luma and the quantizer plane of ``vsfilter.quantizer``, as learned_filter_codec_v3 takes them)
            or 6 (a temporal model: the frame's, the previous frame's and the next frame's luma and plane).
        qp_estimator: a two-input registry model's quantizer estimator (``vsfilter.qp_estimator``): the
            ONNX file its plane is estimated with where the frames carry no QP props; None without one.
        qp_estimator_sha256: hex digest of ``qp_estimator`` (hashed once, when the spec is resolved).
        specialists: a two-input registry model's per-codec networks, ``(quantizer kind, spec)`` pairs (a
            registry row's ``specialists``: ``{"h264": "<registry id>"}``): a frame whose quantizer plane
            was read from, or estimated for, a stream of that codec (``vsfilter.quantizer.KINDS``) runs the
            specialist's weights, every other frame this model's. Their receptive radius is at most this
            model's, so its tiling holds for them.
    """

    id: str
    path: Path
    sha256: str
    input_name: str
    output_name: str
    receptive_radius: int
    int8_path: Path | None = None
    int8_sha256: str | None = None
    nonlocal_op: str | None = None
    same_shape: bool = True
    int8_error: str | None = None
    gate: Gate | None = None
    planes: int = 1
    qp_estimator: Path | None = None
    qp_estimator_sha256: str | None = None
    specialists: tuple[tuple[str, ModelSpec], ...] = ()

    @property
    def temporal(self) -> bool:
        """The model reads the previous and next frame besides the frame it filters."""
        return len(INPUT_LAYOUTS[self.planes]) > 2

    @property
    def identity(self) -> str:
        """What names this model's behaviour: the ONNX file's sha256, combined with the gate's weights
        for a gated model (a refitted gate is another model), with its quantizer estimator's file
        (another estimate is another model) and with its specialists' identities."""
        parts = [self.sha256]
        if self.gate is not None:
            parts.append(json.dumps(self.gate.to_record(), sort_keys=True))
        if self.qp_estimator is not None:
            parts.append(f"qp_estimator:{self.qp_estimator_sha256}")
        parts += [f"specialist:{kind}:{spec.identity}" for kind, spec in self.specialists]
        return self.sha256 if len(parts) == 1 else hashlib.sha256(":".join(parts).encode()).hexdigest()


def model_dir() -> Path:
    """The directory holding ``registry.json`` and the shipped models.

    ``$VSFILTER_MODEL_DIR`` wins; then ``vsfilter/model/tiny`` (where a wheel puts it); then the
    repository's ``model/tiny`` (a source checkout or an editable install).
    """
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "model" / "tiny", here.parent / "model" / "tiny"):
        if (candidate / "registry.json").is_file():
            return candidate
    return here.parent / "model" / "tiny"


def load_registry(directory: Path | None = None) -> dict:
    """Read ``registry.json`` from ``directory`` (default: :func:`model_dir`)."""
    env = os.environ.get(MODEL_DIR_ENV)
    if directory is None and env and not Path(env).is_dir():
        raise ModelError(f"{MODEL_DIR_ENV}={env} is not a folder; point it at a folder holding registry.json, "
                         "or unset it to use the shipped models")
    path = (directory or model_dir()) / "registry.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"schema_version": 1, "models": []}
    except json.JSONDecodeError as exc:
        raise ModelError(f"model registry {path} is not valid JSON: {exc}") from None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Ops whose output pixel depends only on the same pixel of their inputs.
POINTWISE_OPS = frozenset({
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Clip",
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Abs", "Neg", "Max", "Min", "Round", "Floor", "Ceil",
    "Identity", "Cast", "QuantizeLinear", "DequantizeLinear", "Sign", "Erf", "Gelu", "Mish", "Where", "Equal",
    "Less", "Greater", "Not", "And", "Or", "Reciprocal", "BatchNormalization", "Dropout"})
#: Ops with a bounded window (``kernel_shape`` x ``dilations``, stride 1).
WINDOW_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool"})


def receptive_radius(graph: onnx.GraphProto) -> tuple[int, str | None]:
    """(context radius in pixels, first non-local op or None) of an image-to-image graph.

    The radius is the longest path of windowed ops' half-extents from the input to any tensor (each
    Conv 3x3 adds 1). Ops whose footprint is unknown or unbounded (global pooling, reductions,
    resizing, reshapes, strided windows) are reported instead: such a model cannot be tiled exactly.
    """
    inits = {i.name for i in graph.initializer}
    radius: dict[str, int] = {i.name: 0 for i in graph.input if i.name not in inits}
    nonlocal_op = None
    for node in graph.node:
        ins = [radius.get(n, 0) for n in node.input if n and n not in inits]
        here = max(ins, default=0)
        if node.op_type in WINDOW_OPS:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            kernel = attrs.get("kernel_shape")
            if kernel is None and node.op_type in ("Conv", "ConvInteger"):
                kernel = _initializer_shape(graph, node.input[1])[2:]
            strides = attrs.get("strides", [1] * len(kernel or []))
            if kernel is None or any(s != 1 for s in strides):
                nonlocal_op = nonlocal_op or f"{node.op_type} (strided or of unknown size)"
            else:
                dilation = attrs.get("dilations", [1] * len(kernel))
                here += max((k - 1) // 2 * d for k, d in zip(kernel, dilation))
        elif node.op_type not in POINTWISE_OPS:
            nonlocal_op = nonlocal_op or node.op_type
        for out in node.output:
            radius[out] = here
    outputs = [radius.get(o.name, 0) for o in graph.output]
    return max(outputs, default=0), nonlocal_op


def resolve_model(model: str | os.PathLike, *, verify: bool = True, directory: Path | None = None) -> ModelSpec:
    """Turn a registry id or an ``.onnx`` path into a verified :class:`ModelSpec`.

    Args:
        model: a registry id (``"learned_filter_v1"``) or a path to an ``.onnx`` file.
        verify: check a registry model's sha256 (and its INT8 sidecar's, when present).
        directory: the registry folder (default: :func:`model_dir`).

    Raises:
        ModelError: unknown id, missing file, sha256 mismatch, or a graph that is not
            ``[N,1,H,W] -> [N,1,H,W]``.
    """
    text = os.fspath(model)
    folder = directory or model_dir()
    registry = load_registry(directory)
    entries = {m["id"]: m for m in registry.get("models", [])}
    if text in entries:
        spec = _spec_from_registry(entries[text], folder, verify)
        return dataclasses.replace(spec, specialists=_specialists(entries[text], spec, entries, folder, verify))
    path = Path(text)
    if path.is_dir():
        raise ModelError(f"model {text!r} is a folder; pass an .onnx file or a registry id")
    if path.suffix.lower() != ".onnx" and not path.exists():
        known = ", ".join(sorted(entries)) or "none (the registry is empty)"
        raise ModelError(f"unknown model id {text!r}; known ids: {known}; or pass a path to an .onnx file")
    if not path.is_file():
        raise ModelError(f"model file {text!r} does not exist")
    return _spec_from_file(path, model_id=path.stem, sha=sha256_file(path))


def _spec_from_registry(entry: dict, directory: Path, verify: bool) -> ModelSpec:
    path = directory / entry["onnx"]
    if not path.is_file():
        raise ModelError(f"registry model {entry['id']!r}: file {path} is missing (reinstall vsfilter)")
    sha = sha256_file(path)
    if verify and sha != entry["sha256"]:
        raise ModelError(
            f"registry model {entry['id']!r}: sha256 of {path.name} is {sha[:12]}..., the registry says "
            f"{entry['sha256'][:12]}...; the file is corrupt or was replaced (reinstall, or pass the path)"
        )
    int8_path = int8_sha = int8_error = None
    if entry.get("int8_onnx"):
        int8_path = directory / entry["int8_onnx"]
        int8_sha = entry.get("int8_sha256")
        if not int8_path.is_file():
            int8_error = (f"registry model {entry['id']!r}: its INT8 sidecar {int8_path.name} is missing "
                          "(reinstall vsfilter)")
        elif verify and sha256_file(int8_path) != int8_sha:
            int8_error = (f"registry model {entry['id']!r}: sha256 of its INT8 sidecar {int8_path.name} does not match "
                          "the registry; the file is corrupt or was replaced (reinstall vsfilter, or use fp32/bf16)")
    spec = _spec_from_file(path, model_id=entry["id"], sha=sha, int8_path=int8_path, int8_sha=int8_sha)
    gate = Gate.from_record(entry["gate"], entry["id"]) if entry.get("gate") else None
    estimator, estimator_sha = _estimator_file(entry, directory, verify)
    if estimator is not None and spec.planes < 2:
        raise ModelError(f"registry model {entry['id']!r} takes the luma only, yet lists a qp_estimator; "
                         "fix the registry")
    return dataclasses.replace(spec, int8_error=int8_error, gate=gate, qp_estimator=estimator,
                               qp_estimator_sha256=estimator_sha)


def _specialists(entry: dict, spec: ModelSpec, entries: dict[str, dict], directory: Path,
                 verify: bool) -> tuple[tuple[str, ModelSpec], ...]:
    """The verified specialists of a registry row (``{"h264": "<registry id>"}``), as ``(kind, spec)`` pairs."""
    found = []
    for kind, target in sorted((entry.get("specialists") or {}).items()):
        where = f"registry model {entry['id']!r}: its {kind} specialist {target!r}"
        if kind not in KINDS:
            raise ModelError(f"registry model {entry['id']!r}: specialist key {kind!r} is not a quantizer kind "
                             f"({', '.join(KINDS)}); fix the registry")
        if target not in entries or target == entry["id"]:
            raise ModelError(f"{where} is not another model of the registry; fix the registry")
        other = _spec_from_registry(entries[target], directory, verify)
        if spec.planes != 2 or other.planes != 2:
            raise ModelError(f"{where}: specialists are for two-input models (luma and quantizer); fix the registry")
        if other.receptive_radius > spec.receptive_radius or (other.nonlocal_op and not spec.nonlocal_op):
            raise ModelError(f"{where} sees more context than the model ({other.receptive_radius} px against "
                             f"{spec.receptive_radius}); its tiles would differ: fix the registry")
        found.append((kind, other))
    return tuple(found)


def _estimator_file(entry: dict, directory: Path, verify: bool) -> tuple[Path | None, str | None]:
    """(the verified ONNX file of a registry row's ``qp_estimator`` ({onnx, sha256}), its sha256), or Nones."""
    record = entry.get("qp_estimator")
    if not record:
        return None, None
    path = directory / record["onnx"]
    if not path.is_file():
        raise ModelError(f"registry model {entry['id']!r}: its quantizer estimator {path.name} is missing "
                         "(reinstall vsfilter)")
    sha = sha256_file(path)
    if verify and sha != record["sha256"]:
        raise ModelError(f"registry model {entry['id']!r}: sha256 of its quantizer estimator {path.name} does not "
                         "match the registry; the file is corrupt or was replaced (reinstall vsfilter)")
    return path, sha


@functools.lru_cache(maxsize=32)
def _graph_facts(path: Path, mtime_ns: int) -> tuple[str, str, int, str | None, bool, int]:
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ModelError(f"{path.name} is not a readable ONNX model ({type(exc).__name__})") from None
    graph = proto.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelError(
            f"{path.name} has {len(inputs)} inputs and {len(graph.output)} outputs; "
            "vmaf_pre needs one input [N,1,H,W] (or [N,2,H,W]: luma and quantizer; [N,6,H,W]: the same for the "
            "frame and its neighbours) and one output [N,1,H,W]"
        )
    for value, allowed in ((inputs[0], (*INPUT_LAYOUTS, None)), (graph.output[0], (1, None))):
        dims = _dims(value)
        if len(dims) != 4 or dims[1] not in allowed:
            raise ModelError(
                f"{path.name}: {value.name!r} has shape {_shape_text(dims)}; vmaf_pre needs [N,1,H,W] in "
                "(or [N,2,H,W]: the luma and a quantizer plane; [N,6,H,W]: both for the frame and its neighbours) "
                "and [N,1,H,W] out (a single-channel image model)"
            )
    in_dims, out_dims = _dims(inputs[0]), _dims(graph.output[0])
    for axis in (2, 3):
        a, b = in_dims[axis], out_dims[axis]
        if a is not None and b is not None and a != b:
            raise ModelError(
                f"{path.name}: output {_shape_text(out_dims)} differs from input {_shape_text(in_dims)}; "
                "vmaf_pre needs an output of the input's shape"
            )
    radius, nonlocal_op = receptive_radius(graph)
    same = all(_same_dim(a, b) for a, b in zip(_dim_names(inputs[0])[2:], _dim_names(graph.output[0])[2:]))
    return inputs[0].name, graph.output[0].name, radius, nonlocal_op, same, in_dims[1] or 1


def _dim_names(value: onnx.ValueInfoProto) -> list[str | int | None]:
    dims = value.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]


def _same_dim(a: str | int | None, b: str | int | None) -> bool:
    return a is not None and a == b


def _spec_from_file(path: Path, *, model_id: str, sha: str, int8_path: Path | None = None,
                    int8_sha: str | None = None) -> ModelSpec:
    input_name, output_name, radius, nonlocal_op, same, planes = _graph_facts(path.resolve(), path.stat().st_mtime_ns)
    return ModelSpec(model_id, path, sha, input_name, output_name, radius, int8_path, int8_sha, nonlocal_op, same,
                     planes=planes)


def _dims(value: onnx.ValueInfoProto) -> list[int | None]:
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]


def _shape_text(dims: list[int | None]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in dims) + "]"


def _initializer_shape(graph: onnx.GraphProto, name: str) -> list[int]:
    for init in graph.initializer:
        if init.name == name:
            return list(init.dims)
    raise ModelError(f"Conv weight {name!r} is not an initializer; cannot tell its kernel size")
