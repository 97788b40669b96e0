"""The model registry (``model/tiny/registry.json``): its schema, the op allowlist, and row updates."""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from vsfilter.atomic import atomic_write_text
from vsfilter.models import INPUT_LAYOUTS
from vsfilter.quantizer import KINDS

__all__ = ["OP_ALLOWLIST", "QUANT_OPS", "REGISTRY_SCHEMA", "graph_ops", "graph_opset", "update_registry"]

#: The card's allowlist (core/src/dnn/op_allowlist.c): Conv, Relu, Add; Clip for a clamped output.
OP_ALLOWLIST = frozenset({"Conv", "Relu", "Add", "Clip"})
#: Extra ops an INT8 graph may hold: QDQ (static) or ConvInteger-style (dynamic).
QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "Cast", "Mul",
                       "Reshape"})

_SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
REGISTRY_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema_version", "models"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": 1},
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "kind", "onnx", "sha256", "opset", "license"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                    "kind": {"enum": ["filter"]},
                    "onnx": {"type": "string", "pattern": r"^[^/\\]+\.onnx$"},
                    "sha256": _SHA,
                    "opset": {"type": "integer", "minimum": 11},
                    "sidecar": {"type": "string", "pattern": r"^[^/\\]+\.json$"},
                    "quant_mode": {"enum": ["none", "static-qdq-per-channel", "dynamic"]},
                    "int8_onnx": {"type": "string", "pattern": r"^[^/\\]+\.onnx$"},
                    "int8_sha256": _SHA,
                    "quant_accuracy_budget_plcc": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                    "license": {"type": "string"},
                    "notes": {"type": "string"},
                    # what the network is fed: the luma, or the luma and the quantizer plane (vsfilter.quantizer)
                    "inputs": {"enum": [list(layout) for layout in INPUT_LAYOUTS.values()]},
                    "qp_estimator": {  # the estimate a two-input model's plane falls back on (vsfilter.qp_estimator)
                        "type": "object",
                        "required": ["onnx", "sha256"],
                        "additionalProperties": False,
                        "properties": {"onnx": {"type": "string", "pattern": r"^[^/\\]+\.onnx$"}, "sha256": _SHA,
                                       "notes": {"type": "string"}},
                    },
                    "specialists": {  # a two-input model's per-codec networks: quantizer kind -> registry id
                        "type": "object",
                        "propertyNames": {"enum": list(KINDS)},
                        "additionalProperties": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                    },
                    "gate": {  # vsfilter.gate.Gate.to_record(): the per-frame gate of a gated model
                        "type": "object",
                        "required": ["kind", "features", "weights", "mean", "scale", "bias", "threshold"],
                        "additionalProperties": False,
                        "properties": {
                            "kind": {"const": "logistic"},
                            "features": {"type": "array", "items": {"type": "string"}},
                            "weights": {"type": "array", "items": {"type": "number"}},
                            "mean": {"type": "array", "items": {"type": "number"}},
                            "scale": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}},
                            "bias": {"type": "number"},
                            "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                    },
                },
                "dependentRequired": {"int8_onnx": ["int8_sha256", "quant_mode"]},
            },
        },
    },
}


def graph_ops(path: Path) -> set[str]:
    """The op types in an ONNX graph."""
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def graph_opset(path: Path) -> int:
    """The default-domain opset of an ONNX model."""
    proto = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def update_registry(directory: Path, row: dict, drop: tuple[str, ...] = ()) -> dict:
    """Merge ``row`` into the registry entry with the same id (created when missing), removing the
    ``drop`` fields (what a new export makes stale); write atomically."""
    path = directory / "registry.json"
    registry = json.loads(path.read_text()) if path.is_file() else {"schema_version": 1, "models": []}
    for entry in registry["models"]:
        if entry["id"] == row["id"]:
            for key in drop:
                entry.pop(key, None)
            entry.update(row)
            break
    else:
        registry["models"].append(dict(row))
    atomic_write_text(path, json.dumps(registry, indent=2) + "\n")
    return registry
