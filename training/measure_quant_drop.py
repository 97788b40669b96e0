"""Accuracy of the INT8 sidecar against fp32 on held-out real degraded frames.

    python -m training.measure_quant_drop --fp32 model/tiny/learned_filter_v1.onnx \\
        --int8 model/tiny/learned_filter_v1.int8.onnx --manifest runs/c3/train_konvid.manifest.json

Reports the PLCC between fp32 and INT8 outputs (the card's measure, budget 0.01 = PLCC >= 0.99), the
PLCC of the learned residuals (output - input, stricter), the PSNR-Y gain of each, and the share of
pixels within 2 code values; a two-input model is also measured told "unknown" (every 4th pair), where
both should leave the picture alone. Exit codes: 0 within budget, 1 over budget, 2 error.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_write_text

from .calibration import codec_split, degraded_pairs, held_out_paths
from .cli import UsageError, require_onnx, run_main, step_parser
from .loop import psnr
from .pairs import told_nothing


def make_runner(fp32: Path, int8: Path | None, runtime: str):
    """The runner vmaf_pre would use for this model, runtime and precision."""
    from vsfilter.backends import ORT_CPU, OpenVINO, Precision
    from vsfilter.models import ModelError, resolve_model

    try:
        spec = resolve_model(fp32)
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    if runtime == "openvino-bf16":
        return OpenVINO().create(spec, Precision.BF16)
    backend = OpenVINO() if runtime == "openvino" else ORT_CPU()
    if int8 is None:
        return backend.create(spec, Precision.FP32)
    return backend.create(dataclasses.replace(spec, int8_path=int8), Precision.INT8)


def measure(pairs, fp32_run, fast_run) -> dict:
    """Compare two runners on (clean, degraded) pairs (or quantizer triples: the plane is fed too)."""
    ref_all, fast_all, res_ref, res_fast, within2 = [], [], [], [], []
    gain_ref, gain_fast = [], []
    from .pairs import model_input, peak_of

    for pair in pairs:
        clean, degraded = pair[0], pair[1]
        peak = peak_of(clean)
        x = model_input(pair)
        a, b = fp32_run(x)[0, 0], fast_run(x)[0, 0]
        ref_all.append(a.ravel())
        fast_all.append(b.ravel())
        res_ref.append((a - x[0, 0]).ravel())
        res_fast.append((b - x[0, 0]).ravel())
        qa, qb = np.clip(np.rint(a * peak), 0, peak), np.clip(np.rint(b * peak), 0, peak)
        within2.append(np.abs(qa - qb) <= 2 * peak / 255)
        gain_ref.append(psnr(qa, clean, peak) - psnr(degraded, clean, peak))
        gain_fast.append(psnr(qb, clean, peak) - psnr(degraded, clean, peak))
    plcc = float(np.corrcoef(np.concatenate(ref_all), np.concatenate(fast_all))[0, 1])
    plcc_res = float(np.corrcoef(np.concatenate(res_ref), np.concatenate(res_fast))[0, 1])
    return {"images": len(pairs), "plcc": plcc, "plcc_drop": 1 - plcc, "residual_plcc": plcc_res,
            "psnr_gain_fp32_db": float(np.mean(gain_ref)), "psnr_gain_fast_db": float(np.mean(gain_fast)),
            "psnr_delta_db": float(np.mean(gain_fast) - np.mean(gain_ref)),
            "share_within_2_codes": float(np.concatenate([w.ravel() for w in within2]).mean())}


def measure_told_unknown(triples, fp32_run, fast_run) -> dict:
    """:func:`measure` of a model with quantizer planes on its pairs with every plane "unknown" (NaN maps),
    where both runners should leave the picture alone (a uint8 input clipping -1 to QP 0 would not)."""
    told = measure([told_nothing(pair) for pair in triples], fp32_run, fast_run)
    return {k: told[k] for k in ("images", "psnr_gain_fp32_db", "psnr_gain_fast_db", "psnr_delta_db",
                                 "share_within_2_codes")}


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--fp32", type=Path, required=True)
    ap.add_argument("--int8", type=Path, help="the INT8 model (omit with --runtime openvino-bf16)")
    ap.add_argument("--images", type=Path, help="held-out images")
    ap.add_argument("--manifest", type=Path, help="use a training run's validation split")
    ap.add_argument("--pairs", type=Path, help="a codec pair set (training.codec_pairs): measure on its held-out "
                                                  "packages (the codec model)")
    ap.add_argument("--runtime", choices=["ort", "openvino", "openvino-bf16"], default="ort")
    ap.add_argument("--budget", type=float, default=0.01, help="allowed 1 - PLCC")
    ap.add_argument("--max-side", type=int, default=1024, help="center-crop held-out images to this size")
    ap.add_argument("--record", type=Path, help="sidecar JSON to store the result in (int8.accuracy.<runtime>)")
    args = ap.parse_args(argv)
    for path in (args.fp32, args.int8):
        if path is not None:
            require_onnx(path)
    if args.int8 is None and args.runtime != "openvino-bf16":
        raise UsageError("--int8 is required (or measure bf16 with --runtime openvino-bf16)")
    if args.pairs is not None:
        from vsfilter.models import ModelError, resolve_model

        try:
            planes = resolve_model(args.fp32).planes
        except ModelError as exc:
            raise UsageError(str(exc)) from None
        pairs = codec_split(args.pairs, held_out=True, planes=planes)
    else:
        paths = held_out_paths(args.manifest) if args.manifest else None
        pairs = degraded_pairs(images=args.images, paths=paths, max_side=args.max_side)
    runtime = "openvino" if args.runtime.startswith("openvino") else "ort"
    fp32_run = make_runner(args.fp32, None, runtime)
    fast_run = make_runner(args.fp32, args.int8, args.runtime)
    assert fast_run.precision is not fp32_run.precision, "the fast path must not be fp32"
    result = measure(pairs, fp32_run, fast_run) | {"runtime": args.runtime, "budget_plcc": args.budget}
    if pairs and len(pairs[0]) > 2:
        result["told_unknown"] = measure_told_unknown(pairs[::4], fp32_run, fast_run)
    result["within_budget"] = result["plcc_drop"] <= args.budget
    print(json.dumps(result, indent=2))
    if args.record is not None:
        sidecar = json.loads(args.record.read_text())
        key = "bf16" if args.runtime == "openvino-bf16" else "int8"
        sidecar.setdefault(key, {}).setdefault("accuracy", {})[args.runtime] = result
        atomic_write_text(args.record, json.dumps(sidecar, indent=2) + "\n")
    return 0 if result["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
