"""Finding, verifying and describing the ONNX models that `vmaf_pre` runs.

A model is named either by an id from the registry in ``model/tiny/registry.json`` (the shipped
models, checked against their sha256 on load) or by a path to any ``.onnx`` file whose single input is
``[N, 1, H, W]`` and whose single output has the same shape.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import onnx

__all__ = [
    "ModelError",
    "ModelSpec",
    "model_dir",
    "load_registry",
    "resolve_model",
    "sha256_file",
    "receptive_radius",
]

#: Environment variable that points at another model directory (holding a ``registry.json``).
MODEL_DIR_ENV = "VSFILTER_MODEL_DIR"


class ModelError(ValueError):
    """A model could not be found, verified or used; the message says which and why."""


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
    """

    id: str
    path: Path
    sha256: str
    input_name: str
    output_name: str
    receptive_radius: int
    int8_path: Path | None = None
    int8_sha256: str | None = None


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


def receptive_radius(graph: onnx.GraphProto) -> int:
    """Context radius in pixels of a fully convolutional graph: the sum of each Conv's half-extent.

    Exact for a chain of convolutions with skips (every conv lies on the longest path), an upper
    bound otherwise, which is the safe side for choosing a tile overlap.
    """
    radius = 0
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        kernel = attrs.get("kernel_shape")
        if kernel is None:
            kernel = _initializer_shape(graph, node.input[1])[2:]
        dilation = attrs.get("dilations", [1] * len(kernel))
        radius += max((k - 1) // 2 * d for k, d in zip(kernel, dilation))
    return radius


def resolve_model(model: str | os.PathLike, *, verify: bool = True) -> ModelSpec:
    """Turn a registry id or an ``.onnx`` path into a verified :class:`ModelSpec`.

    Args:
        model: a registry id (``"learned_filter_v1"``) or a path to an ``.onnx`` file.
        verify: check a registry model's sha256 (and its INT8 sidecar's, when present).

    Raises:
        ModelError: unknown id, missing file, sha256 mismatch, or a graph that is not
            ``[N,1,H,W] -> [N,1,H,W]``.
    """
    text = os.fspath(model)
    registry = load_registry()
    entries = {m["id"]: m for m in registry.get("models", [])}
    if text in entries:
        return _spec_from_registry(entries[text], model_dir(), verify)
    path = Path(text)
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
    int8_path = int8_sha = None
    if entry.get("int8_onnx"):
        int8_path = directory / entry["int8_onnx"]
        int8_sha = entry.get("int8_sha256")
        if verify and int8_path.is_file() and sha256_file(int8_path) != int8_sha:
            raise ModelError(f"registry model {entry['id']!r}: sha256 of {int8_path.name} does not match the registry")
    return _spec_from_file(path, model_id=entry["id"], sha=sha, int8_path=int8_path, int8_sha=int8_sha)


@functools.lru_cache(maxsize=32)
def _graph_facts(path: Path, mtime_ns: int) -> tuple[str, str, int]:
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
            "vmaf_pre needs one input [N,1,H,W] and one output of the same shape"
        )
    for value in (inputs[0], graph.output[0]):
        dims = _dims(value)
        if len(dims) != 4 or dims[1] not in (1, None):
            raise ModelError(
                f"{path.name}: {value.name!r} has shape {_shape_text(dims)}; vmaf_pre needs [N,1,H,W] in "
                "and the same shape out (a single-channel image model)"
            )
    in_dims, out_dims = _dims(inputs[0]), _dims(graph.output[0])
    for axis in (2, 3):
        a, b = in_dims[axis], out_dims[axis]
        if a is not None and b is not None and a != b:
            raise ModelError(
                f"{path.name}: output {_shape_text(out_dims)} differs from input {_shape_text(in_dims)}; "
                "vmaf_pre needs an output of the input's shape"
            )
    return inputs[0].name, graph.output[0].name, receptive_radius(graph)


def _spec_from_file(path: Path, *, model_id: str, sha: str, int8_path: Path | None = None,
                    int8_sha: str | None = None) -> ModelSpec:
    input_name, output_name, radius = _graph_facts(path.resolve(), path.stat().st_mtime_ns)
    return ModelSpec(model_id, path, sha, input_name, output_name, radius, int8_path, int8_sha)


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
