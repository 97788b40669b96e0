"""Validate ``model/tiny/registry.json``: schema, hashes, sidecars, opset, op allowlist, and a real run.

    python -m training.validate_model_registry [--dir model/tiny]

Prints one line per problem and exits 1 when there is any (2 on unusable input), else prints a summary
and exits 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from vsfilter.errors import ModelError
from vsfilter.models import model_dir, resolve_model

from .cli import UsageError, run_main, sha256_file, step_parser
from .registry import OP_ALLOWLIST, QUANT_OPS, REGISTRY_SCHEMA, graph_ops, graph_opset


def check_file_hash(label: str, path: Path, sha: str) -> list[str] | None:
    """Problems with a listed file's presence and sha256 (empty when it is there and matches); None when it
    is missing, and nothing more about it can be checked (the caller reports that)."""
    if not path.is_file():
        return None
    actual = sha256_file(path)
    return [] if actual == sha else [f"{label}: sha256 of {path.name} is {actual}, registry says {sha}"]


def check_model_file(label: str, path: Path, sha: str, opset: int | None, allowed: frozenset | None,
                     planes: int = 1, output: tuple[int, ...] = (1, 1, 48, 64)) -> list[str]:
    """Problems with one ONNX file: missing, hash, opset, ops (``allowed``; None = any), and a 64x48 ORT
    run on ``planes`` input planes that must give ``output``'s shape."""
    problems = check_file_hash(label, path, sha)
    if problems is None:
        return [f"{label}: file {path.name} is missing"]
    try:
        got_opset = graph_opset(path)
        ops = graph_ops(path)
    except Exception as exc:
        return problems + [f"{label}: {path.name} is not a readable ONNX model ({type(exc).__name__})"]
    if opset is not None and got_opset != opset:
        problems.append(f"{label}: {path.name} has opset {got_opset}, registry says {opset}")
    if allowed is not None and not ops <= allowed:
        problems.append(f"{label}: {path.name} has ops outside the allowlist: {sorted(ops - allowed)}")
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        out = session.run(None, {name: np.random.default_rng(0).random((1, planes, 48, 64), dtype=np.float32)})[0]
        if out.shape != output or not np.isfinite(out).all():
            problems.append(f"{label}: {path.name} on a 64x48 frame gave shape {out.shape} or non-finite values")
    except Exception as exc:
        problems.append(f"{label}: {path.name} fails to run in ONNX Runtime ({str(exc).splitlines()[0][:200]})")
    return problems


def check_estimator_file(label: str, path: Path, sha: str) -> list[str]:
    """Problems with a quantizer estimator (its own small graph, pooling to one QP per frame: any op ORT
    runs): missing, hash, and a run as vmaf_pre runs it (``vsfilter.qp_estimator``) on a 64x48 frame."""
    from vsfilter.errors import ModelError
    from vsfilter.qp_estimator import PROP_CODEC, PROP_RATE, QuantizerEstimator

    problems = check_file_hash(label, path, sha)
    if problems is None:
        return [f"{label}: file {path.name} is missing"]
    try:
        estimator = QuantizerEstimator(path)
        frame = np.random.default_rng(0).integers(0, 256, (48, 64), dtype=np.uint8)
        qp = estimator(frame, 255, {PROP_CODEC: estimator.codecs[0], PROP_RATE: 0.1})
        if qp is None or not np.isfinite(qp):
            problems.append(f"{label}: {path.name} gave no QP for a 64x48 {estimator.codecs[0]} frame")
    except ModelError as exc:
        problems.append(f"{label}: {exc}")
    except Exception as exc:  # ORT's own error types
        problems.append(f"{label}: {path.name} fails to run in ONNX Runtime ({str(exc).splitlines()[0][:200]})")
    return problems


def validate(directory: Path) -> tuple[list[str], int]:
    """All problems in a registry directory, and how many models it lists."""
    import jsonschema

    path = directory / "registry.json"
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    try:
        registry = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [f"registry.json: not valid JSON ({exc})"], 0
    validator = jsonschema.Draft202012Validator(REGISTRY_SCHEMA)
    problems = [f"registry.json: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                for e in sorted(validator.iter_errors(registry), key=lambda e: list(e.absolute_path))]
    if problems:
        return problems, len(registry.get("models", []) if isinstance(registry, dict) else [])
    ids = [m["id"] for m in registry["models"]]
    problems += [f"registry.json: id {i!r} is listed twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for entry in registry["models"]:
        label = entry["id"]
        planes = len(entry.get("inputs", ["luma"]))
        problems += check_model_file(label, directory / entry["onnx"], entry["sha256"], entry["opset"], OP_ALLOWLIST,
                                     planes)
        if "int8_onnx" in entry:
            problems += check_model_file(f"{label} int8", directory / entry["int8_onnx"], entry["int8_sha256"],
                                         None, OP_ALLOWLIST | QUANT_OPS, planes)
        if "qp_estimator" in entry:
            if planes < 2:
                problems.append(f"{label}: a qp_estimator is for models whose inputs include a quantizer plane")
            problems += check_estimator_file(f"{label} qp_estimator", directory / entry["qp_estimator"]["onnx"],
                                             entry["qp_estimator"]["sha256"])
        if "sidecar" in entry:
            problems += check_sidecar(label, directory / entry["sidecar"], entry)
        if "specialists" in entry:  # the rules vmaf_pre applies when it loads the model
            try:
                resolve_model(label, directory=directory)
            except ModelError as exc:
                problems.append(f"{label}: {exc}")
    return problems, len(registry["models"])


def check_sidecar(label: str, path: Path, entry: dict) -> list[str]:
    """The JSON sidecar must agree with its registry row."""
    if not path.is_file():
        return [f"{label}: sidecar {path.name} is missing"]
    try:
        sidecar = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [f"{label}: sidecar {path.name} is not valid JSON ({exc})"]
    problems = []
    for key in ("id", "onnx", "sha256", "opset"):
        if sidecar.get(key) != entry.get(key):
            problems.append(f"{label}: sidecar {key} = {sidecar.get(key)!r}, registry says {entry.get(key)!r}")
    if "int8_onnx" in entry and sidecar.get("int8", {}).get("sha256") != entry["int8_sha256"]:
        problems.append(f"{label}: sidecar int8.sha256 does not match the registry's int8_sha256")
    return problems


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help="default: the package's model/tiny")
    args = ap.parse_args(argv)
    problems, count = validate(args.dir or model_dir())
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"registry OK: {count} model(s) in {args.dir or model_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
