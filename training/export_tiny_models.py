"""Export a C3 checkpoint to ONNX (opset 17, dynamic N/H/W) with its sidecar and registry row.

    python -m training.export_tiny_models --c3-ckpt runs/c3/last.ckpt [--model-id learned_filter_v1]
        [--output-dir model/tiny] [--qp-estimator ESTIMATOR.onnx] [--force]

Checks that ONNX Runtime's output equals torch's within 1e-5 and that every op is on the allowlist
(Conv, Relu, Add, Clip), then writes ``<id>.onnx``, ``<id>.json`` (with the run_provenance block) and
updates ``registry.json``. A quantizer-conditioned network (two input planes) is registered with
``inputs: [luma, quantizer]``; ``--qp-estimator`` ships its quantizer estimate (``training.train_qp_estimator``)
as ``<id>.qp.onnx``, the row's ``qp_estimator``. The model id defaults to the one the training run recorded
(``learned_filter_v1`` for the card's degradation, ``learned_filter_codec_v1`` for codec pairs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

from vsfilter.atomic import atomic_write_bytes, atomic_write_text
from vsfilter.models import INPUT_LAYOUTS, model_dir
from vsfilter.quantizer import KINDS

from .cli import UsageError, run_main, sha256_file, step_parser
from .corpus import LISTING
from .onnx_export import OPSET, check_against_torch, export_onnx
from .registry import OP_ALLOWLIST, graph_ops, update_registry


def _corpus_sources(train_args: dict) -> list[dict] | None:
    """The package/version/file list ``training.offline_corpus`` wrote next to the training images."""
    images = train_args.get("images")
    listing = Path(images) / LISTING if images and images != "None" else None
    if listing is None or not listing.is_file():
        return None
    return json.loads(listing.read_text())["files"]


def _check_estimator(path: Path, planes: int) -> None:
    """An estimator is for a network with a quantizer plane, and must load as vmaf_pre loads it."""
    from vsfilter.errors import ModelError
    from vsfilter.qp_estimator import QuantizerEstimator

    if planes < 2:
        raise UsageError("--qp-estimator is for quantizer-conditioned networks (two or six input planes); this "
                         "checkpoint takes the luma only")
    if not path.is_file():
        raise UsageError(f"--qp-estimator {path} does not exist")
    try:
        QuantizerEstimator(path)
    except ModelError as exc:
        raise UsageError(f"--qp-estimator: {exc}") from None


def _sidecar(args, state: dict, model, model_id: str, onnx_path: Path, sidecar_path: Path, out_dir: Path,
             max_err: float, ops: set[str], planes: int) -> dict:
    """The sidecar of an export: what the model is, its export check and where it came from."""
    from .model import count_params

    arch = state["arch"]
    return {
        "id": model_id,
        "kind": "filter",
        "onnx": onnx_path.name,
        "sha256": sha256_file(onnx_path),
        "opset": OPSET,
        "input": {"name": "input", "shape": ["N", planes, "H", "W"], "dtype": "float32", "range": [0.0, 1.0]},
        "output": {"name": "output", "shape": ["N", 1, "H", "W"], "dtype": "float32"},
        "architecture": {"num_blocks": arch["num_blocks"], "channels": arch["channels"],
                         "params": count_params(model), "receptive_radius": model.receptive_radius,
                         "ops": sorted(ops)},
        "export_check": {"max_abs_err_vs_torch": max_err},
        "license": "BSD-3-Clause-Plus-Patent",
        "run_provenance": {
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "checkpoint": {"path": str(args.c3_ckpt), "sha256": sha256_file(args.c3_ckpt),
                           "epoch": state.get("epoch")},
            "exporter_args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "onnx_output": str(onnx_path),
            "sidecar_output": str(sidecar_path),
            "registry_target": str(out_dir / "registry.json"),
        },
    }


def _ship_estimator(source: Path, target: Path) -> dict:
    """Copy the estimator next to its model, or point at an estimator already shipped there with the same
    bytes (variants of one model share one file); its registry record."""
    digest = sha256_file(source)
    same = [p for p in sorted(target.parent.glob("*.qp.onnx")) if p != target and sha256_file(p) == digest]
    if same:
        target.unlink(missing_ok=True)
        return {"onnx": same[0].name, "sha256": digest}
    atomic_write_bytes(target, source.read_bytes())
    return {"onnx": target.name, "sha256": digest}


def _specialist_target(text: str | None, out_dir: Path) -> tuple[str, str] | None:
    """(parent id, quantizer kind) of ``--specialist-of MODEL:KIND``, checked against the registry, or None."""
    if text is None:
        return None
    model, _, kind = text.partition(":")
    if kind not in KINDS:
        raise UsageError(f"--specialist-of {text}: give MODEL:KIND with KIND one of {', '.join(KINDS)}")
    registry = out_dir / "registry.json"
    rows = json.loads(registry.read_text())["models"] if registry.is_file() else []
    row = next((m for m in rows if m["id"] == model), None)
    if row is None or row.get("inputs") != list(INPUT_LAYOUTS[2]):
        raise UsageError(f"--specialist-of {text}: {model!r} is not a two-input model of {registry}; export it first")
    return model, kind


def _default_notes(training: dict | None, model_id: str) -> str:
    if training is None:
        return "exported without a training manifest"
    args, data = training["args"], training["data"]
    gain = (training.get("final") or {}).get("psnr_gain_db")
    result = f"; {gain:+.2f} dB PSNR-Y on the held-out packages {', '.join(data['val_packages'])}" \
        if gain is not None and data.get("val_packages") else ""
    if training["degradation"].get("kind") == "codec":
        what = (f"{data['train_pairs']} real codec round-trip pairs from {data['train_clips']} clips "
                f"(training.codec_pairs)")
    else:
        corpus = args.get("images") if args.get("images") not in (None, "None") else args.get("videos")
        what = f"{len(data['train'])} photos from {corpus} (blur + JPEG, the card's recipe)"
    return f"trained by training.train_konvid on {what}{result}; see docs/{model_id}.md"


def _training_block(training: dict, manifest_path: Path) -> dict:
    """What the sidecar records of a training run (and, for a fine-tune, of the run it started from)."""
    block = {
        "manifest_sha256": sha256_file(manifest_path),
        "corpus": training["data"],
        "degradation": training["degradation"],
        "args": training["args"],
        "schedule": training.get("schedule"),
        "determinism": training.get("determinism"),
        "versions": training["versions"],
        "git_commit": training.get("git_commit"),
        "epochs_run": len(training["epochs"]),
        "train_seconds": training.get("train_seconds"),
        "final": {k: v for k, v in (training.get("final") or {}).items() if k != "per_image"},
    }
    init = training.get("init")
    base_manifest = Path(init["checkpoint"]).with_name("train_konvid.manifest.json") if init else None
    if base_manifest is not None and base_manifest.is_file():
        base = json.loads(base_manifest.read_text())
        block["started_from"] = init | {"training": _training_block(base, base_manifest)}
    return block


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--c3-ckpt", type=Path, required=True, help="last.ckpt from training.train_konvid")
    ap.add_argument("--c2-ckpt", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--model-id", help="registry id (default: the one the training run recorded)")
    ap.add_argument("--output-dir", type=Path, default=None, help="default: the package's model/tiny")
    ap.add_argument("--manifest", type=Path, help="training manifest (default: next to the checkpoint)")
    ap.add_argument("--force", action="store_true", help="replace an existing exported model")
    ap.add_argument("--notes", help="the registry row's notes (default: what the model was trained on)")
    ap.add_argument("--qp-estimator", type=Path,
                    help="a quantizer-conditioned model's estimator .onnx (training.train_qp_estimator)")
    ap.add_argument("--specialist-of", metavar="MODEL:KIND",
                    help="register the export as MODEL's network for frames whose quantizer is read from, or "
                         f"estimated for, a KIND stream ({', '.join(KINDS)}), e.g. learned_filter_codec_v3:h264")
    args = ap.parse_args(argv)
    if args.c2_ckpt is not None:
        raise UsageError("C2 (the NR quality metric) is not part of this package; export the filter with --c3-ckpt")
    out_dir = args.output_dir or model_dir()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--output-dir {out_dir} is a file; give a folder")
    parent = _specialist_target(args.specialist_of, out_dir)

    from .checkpoint import load_model
    from .model import count_params

    model, state = load_model(args.c3_ckpt)
    arch = state["arch"]
    planes = int(arch.get("in_channels", 1))
    if args.qp_estimator is not None:
        _check_estimator(args.qp_estimator, planes)
    model_id = args.model_id or state.get("model_id") or "learned_filter_v1"
    if not re.fullmatch(r"[a-z0-9_]+", model_id):
        raise UsageError(f"--model-id {model_id!r}: use lower-case letters, digits and _")
    if parent is not None and (planes != 2 or parent[0] == model_id):
        raise UsageError(f"--specialist-of {args.specialist_of}: a specialist is another two-input network "
                         f"(this checkpoint takes {planes} plane(s) and would be {model_id!r})")
    onnx_path = out_dir / f"{model_id}.onnx"
    sidecar_path = out_dir / f"{model_id}.json"
    if onnx_path.exists() and not args.force:
        raise UsageError(f"{onnx_path} exists; pass --force to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, onnx_path)
    max_err = check_against_torch(model, onnx_path)
    ops = graph_ops(onnx_path)
    if not ops <= OP_ALLOWLIST:
        raise UsageError(f"ops outside the allowlist: {sorted(ops - OP_ALLOWLIST)}")

    manifest_path = args.manifest or args.c3_ckpt.parent / "train_konvid.manifest.json"
    training = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    notes = args.notes or _default_notes(training, model_id)
    # a new export invalidates whatever the old sidecar said (its INT8 file included)
    sidecar = _sidecar(args, state, model, model_id, onnx_path, sidecar_path, out_dir, max_err, ops, planes)
    if training is not None:
        sidecar["training"] = _training_block(training, manifest_path)
        sidecar["metrics"] = sidecar["training"]["final"]
        sources = _corpus_sources(training["args"])
        if sources is not None:
            sidecar["training"]["corpus_sources"] = sources
    row = {"id": model_id, "kind": "filter", "onnx": onnx_path.name, "sha256": sidecar["sha256"], "opset": OPSET,
           "license": "BSD-3-Clause-Plus-Patent", "sidecar": sidecar_path.name, "notes": notes,
           "inputs": list(INPUT_LAYOUTS[planes])}
    if args.qp_estimator is not None:
        row["qp_estimator"] = _ship_estimator(args.qp_estimator, out_dir / f"{model_id}.qp.onnx")
        sidecar["qp_estimator"] = row["qp_estimator"] | {"source": str(args.qp_estimator)}
    atomic_write_text(sidecar_path, json.dumps(sidecar, indent=2) + "\n")
    registry = update_registry(out_dir, row, drop=("int8_onnx", "int8_sha256", "quant_mode",
                                                   "quant_accuracy_budget_plcc", "qp_estimator"))
    if parent is not None:
        row = next(m for m in registry["models"] if m["id"] == parent[0])
        update_registry(out_dir, {"id": parent[0], "specialists": row.get("specialists", {}) | {parent[1]: model_id}})
        print(f"{parent[0]} runs {model_id} on the frames of {parent[1]} streams whose quantizer is read or estimated")
    print(f"exported {onnx_path} ({count_params(model)} params, max |ORT - torch| = {max_err:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
