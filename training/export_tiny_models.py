"""Export the C3 checkpoint to ONNX (opset 17, dynamic N/H/W) with its sidecar and registry row.

    python -m training.export_tiny_models --c3-ckpt runs/c3_konvid/last.ckpt [--output-dir model/tiny] [--force]

Checks that ONNX Runtime's output equals torch's within 1e-5 and that every op is on the allowlist
(Conv, Relu, Add, Clip), then writes ``learned_filter_v1.onnx``, ``learned_filter_v1.json`` (with the
run_provenance block) and updates ``registry.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_write_text
from vsfilter.models import model_dir

from .cli import UsageError, run_main, sha256_file
from .registry import OP_ALLOWLIST, graph_ops, update_registry

MODEL_ID = "learned_filter_v1"
OPSET = 17


def export_onnx(model, path: Path) -> None:
    """torch -> ONNX with input ``input`` and output ``output``, dynamic batch, height and width."""
    import torch

    dummy = torch.rand(1, 1, 64, 48)
    axes = {0: "N", 2: "H", 3: "W"}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.onnx.export(model, (dummy,), str(tmp), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": axes, "output": axes}, opset_version=OPSET, dynamo=False)
    tmp.replace(path)


def check_against_torch(model, path: Path, atol: float = 1e-5) -> float:
    """Max |ORT - torch| on two odd-sized inputs; raises when above ``atol``."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    rng = np.random.default_rng(0)
    for shape in [(1, 1, 37, 53), (2, 1, 120, 96)]:
        x = rng.random(shape, dtype=np.float32)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        worst = max(worst, float(np.abs(session.run(None, {"input": x})[0] - ref).max()))
    if worst > atol:
        raise UsageError(f"ONNX Runtime output differs from torch by {worst:.2e} (> {atol})")
    return worst


def _corpus_sources(train_args: dict) -> list[dict] | None:
    """The package/version/file list ``training.offline_corpus`` wrote next to the training images."""
    images = train_args.get("images")
    listing = Path(images) / "corpus.json" if images and images != "None" else None
    if listing is None or not listing.is_file():
        return None
    return json.loads(listing.read_text())["files"]


def _default_notes(training: dict | None) -> str:
    if training is None:
        return "exported without a training manifest"
    args, data = training["args"], training["data"]
    corpus = args.get("images") if args.get("images") not in (None, "None") else args.get("videos")
    return (f"trained by training.train_konvid on {len(data['train'])} + {len(data['val'])} (val) files from "
            f"{corpus}; see the sidecar's training block and docs/learned_filter_v1.md")


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.export_tiny_models", description=__doc__.splitlines()[0])
    ap.add_argument("--c3-ckpt", type=Path, required=True, help="last.ckpt from training.train_konvid")
    ap.add_argument("--c2-ckpt", type=Path, help="accepted for the card's command; the C2 model is not part of vsfilter")
    ap.add_argument("--output-dir", type=Path, default=None, help="default: the package's model/tiny")
    ap.add_argument("--manifest", type=Path, help="training manifest (default: next to the checkpoint)")
    ap.add_argument("--force", action="store_true", help="replace an existing exported model")
    ap.add_argument("--notes", help="the registry row's notes (default: what the model was trained on)")
    args = ap.parse_args(argv)
    out_dir = args.output_dir or model_dir()
    onnx_path = out_dir / f"{MODEL_ID}.onnx"
    sidecar_path = out_dir / f"{MODEL_ID}.json"
    if not args.c3_ckpt.is_file():
        raise UsageError(f"checkpoint {args.c3_ckpt} does not exist")
    if onnx_path.exists() and not args.force:
        raise UsageError(f"{onnx_path} exists; pass --force to replace it")

    import torch

    from .model import LearnedFilter, count_params

    try:
        state = torch.load(args.c3_ckpt, map_location="cpu", weights_only=False)
        arch = state["arch"]
        model = LearnedFilter(arch["num_blocks"], arch["channels"])
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{args.c3_ckpt} is not a learned_filter_v1 checkpoint ({first})") from None
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, onnx_path)
    max_err = check_against_torch(model, onnx_path)
    ops = graph_ops(onnx_path)
    if not ops <= OP_ALLOWLIST:
        raise UsageError(f"ops outside the allowlist: {sorted(ops - OP_ALLOWLIST)}")

    manifest_path = args.manifest or args.c3_ckpt.parent / "train_konvid.manifest.json"
    training = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    notes = args.notes or _default_notes(training)
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else {}
    sidecar.update({
        "id": MODEL_ID,
        "kind": "filter",
        "onnx": onnx_path.name,
        "sha256": sha256_file(onnx_path),
        "opset": OPSET,
        "input": {"name": "input", "shape": ["N", 1, "H", "W"], "dtype": "float32", "range": [0.0, 1.0]},
        "output": {"name": "output", "shape": ["N", 1, "H", "W"], "dtype": "float32"},
        "architecture": {"num_blocks": arch["num_blocks"], "channels": arch["channels"],
                         "params": count_params(model), "receptive_radius": model.receptive_radius,
                         "ops": sorted(ops)},
        "export_check": {"max_abs_err_vs_torch": max_err},
        "license": "BSD-3-Clause-Plus-Patent",
        "run_provenance": {
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "checkpoint": {"path": str(args.c3_ckpt), "sha256": sha256_file(args.c3_ckpt),
                           "epoch": state.get("epoch")},
            "exporter_args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "onnx_output": str(onnx_path),
            "sidecar_output": str(sidecar_path),
            "registry_target": str(out_dir / "registry.json"),
        },
    })
    if training is not None:
        sidecar["training"] = {
            "manifest_sha256": sha256_file(manifest_path),
            "corpus": training["data"],
            "degradation": training["degradation"],
            "args": training["args"],
            "versions": training["versions"],
            "git_commit": training.get("git_commit"),
            "epochs_run": len(training["epochs"]),
            "final": training.get("final"),
        }
        sidecar["metrics"] = {k: v for k, v in (training.get("final") or {}).items()}
        sources = _corpus_sources(training["args"])
        if sources is not None:
            sidecar["training"]["corpus_sources"] = sources
    atomic_write_text(sidecar_path, json.dumps(sidecar, indent=2) + "\n")
    update_registry(out_dir, {"id": MODEL_ID, "kind": "filter", "onnx": onnx_path.name,
                              "sha256": sidecar["sha256"], "opset": OPSET, "license": "BSD-3-Clause-Plus-Patent",
                              "sidecar": sidecar_path.name, "notes": notes})
    print(f"exported {onnx_path} ({count_params(model)} params, max |ORT - torch| = {max_err:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
