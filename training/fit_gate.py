"""Fit a model's per-frame gate on a codec pair set and (optionally) register it with the model.

    python -m training.fit_gate --model model/tiny/learned_filter_codec_v2.onnx --pairs data/codec_pairs_v2 \\
        [--val-packages P ...] [--frames 3000] [--harm-weight 2] [--output runs/gate.json] \\
        [--register learned_filter_codec_v2] [--force]

The network's gain on every training frame (PSNR-Y, rounded as ``vmaf_pre`` outputs) and the frame's
gate statistics fit a weighted logistic regression (``training.gating``); the threshold is chosen on
the held-out packages' frames. Prints and writes, per quality band, the share of frames the gate runs
the network on and the mean gain always-on vs gated. ``--register ID`` stores the gate in the registry
row of ``ID`` (its ONNX must be ``--model``) and in its sidecar, so ``vmaf_pre(model=ID)`` applies it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_write_text

from .cli import UsageError, check_output_file, run_main, sha256_file, step_parser

#: Low-bitrate and good CRF bands per encoder (the codec issue's: x264 CRF 35-40 is poor, ~22 good).
BANDS = {"libx264": ((33, 42), 24), "libx265": ((31, 40), 26), "libsvtav1": ((45, 56), 32),
         "libvpx-vp9": ((45, 56), 32)}


def quality_band(label: dict) -> str:
    """``low``, ``mid``, ``good`` or ``identity`` for a pair label of ``load_pairs``."""
    if label["encoder"] not in BANDS:
        return "identity"
    (lo, hi), good = BANDS[label["encoder"]]
    crf = label["crf"]
    return "low" if lo <= crf <= hi else "good" if crf <= good else "mid"


def _sample(pairs: list, labels: list, count: int, seed: int) -> tuple[list, list]:
    if len(pairs) <= count:
        return pairs, labels
    idx = np.sort(np.random.default_rng(seed).choice(len(pairs), count, replace=False))
    return [pairs[i] for i in idx], [labels[i] for i in idx]


def _register(model_id: str, model: Path, record: dict) -> None:
    from vsfilter.models import model_dir

    from .registry import update_registry

    directory = model_dir()
    rows = {r["id"]: r for r in json.loads((directory / "registry.json").read_text())["models"]}
    if model_id not in rows:
        raise UsageError(f"--register {model_id}: no such registry model; export it first "
                         "(python -m training.export_tiny_models)")
    if rows[model_id]["sha256"] != sha256_file(model):
        raise UsageError(f"--register {model_id}: --model {model} is not that model's ONNX (sha256 differs)")
    update_registry(directory, {"id": model_id, "gate": record["gate"]})
    sidecar = directory / rows[model_id]["sidecar"]
    doc = json.loads(sidecar.read_text())
    doc["gate"] = record
    atomic_write_text(sidecar, json.dumps(doc, indent=2) + "\n")


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="the network: an .onnx or a training checkpoint")
    ap.add_argument("--pairs", type=Path, default=Path("data/codec_pairs_v2"))
    ap.add_argument("--val-packages", nargs="*", default=None,
                    help="held out for the threshold and the report (default: opencv-doc and tuxpaint-data)")
    ap.add_argument("--frames", type=int, default=3000, help="training frames sampled (at most)")
    ap.add_argument("--harm-weight", type=float, default=2.0, help="a dB lost counts this many dB gained")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--output", type=Path, help="write the gate and its report (JSON)")
    ap.add_argument("--register", metavar="ID", help="store the gate in this registry model's row and sidecar")
    ap.add_argument("--force", action="store_true", help="replace --output")
    args = ap.parse_args(argv)
    if args.frames < 10 or args.harm_weight < 0:
        raise UsageError("--frames must be >= 10 and --harm-weight >= 0")
    if args.output is not None:
        check_output_file(args.output, args.force)
    from .checkpoint import load_weights
    from .corpus import DEFAULT_VAL_PACKAGES
    from .gating import choose_threshold, fit_gate, frame_stats, gate_report
    from .pair_sets import load_pairs

    if not args.model.is_file():
        raise UsageError(f"--model {args.model} does not exist")
    model = load_weights(args.model)[0]
    listing = json.loads((args.pairs / "manifest.json").read_text()) if (args.pairs / "manifest.json").is_file() \
        else None
    if listing is None:
        raise UsageError(f"{args.pairs} is not a codec pair set (no manifest.json); build it with "
                         "python -m training.codec_pairs")
    packages = {c["package"] for c in listing["clips"]}
    val_packages = set(args.val_packages if args.val_packages is not None else
                       [p for p in DEFAULT_VAL_PACKAGES if p in packages])
    train, train_labels = _sample(*load_pairs(args.pairs, exclude=val_packages, identity=True), args.frames, args.seed)
    val, val_labels = _sample(*load_pairs(args.pairs, packages=val_packages, identity=True), args.frames, args.seed)
    if len(train) < 10 or len(val) < 10:
        raise UsageError("the pair set has fewer than 10 training or held-out frames; check --val-packages")
    gate = fit_gate(frame_stats(model, train), args.harm_weight)
    held_out = frame_stats(model, val)
    gate = choose_threshold(gate, held_out, args.harm_weight)
    report = gate_report(gate, held_out, val_labels, quality_band)
    record = {"gate": gate.to_record(), "held_out": report, "val_packages": sorted(val_packages),
              "pairs": str(args.pairs), "pair_set_key": listing["key"], "train_frames": len(train),
              "harm_weight": args.harm_weight, "network_sha256": sha256_file(args.model)}
    for band, row in report.items():
        print(f"{band:9s} frames {row['frames']:5d}  applied {100 * row['applied']:5.1f}%  gain always "
              f"{row['gain_always_db']:+.4f} dB, gated {row['gain_gated_db']:+.4f} dB "
              f"(worst {row['worst_gated_db']:+.3f})")
    print(f"threshold {gate.threshold}")
    if args.output is not None:
        atomic_write_text(args.output, json.dumps(record, indent=2) + "\n")
    if args.register:
        _register(args.register, args.model, record)
        print(f"registered the gate with {args.register}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
