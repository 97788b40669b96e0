"""Dynamic-PTQ INT8 as the card describes (``onnxruntime.quantization.quantize_dynamic``).

    python -m training.ptq_dynamic --model model/tiny/learned_filter_v1.onnx \\
        --output runs/learned_filter_v1.int8-dynamic.onnx

Kept for fidelity to the card. Its ConvInteger graph runs far *slower* than fp32 on CPU (we measured
7-20x), so ``vmaf_pre(precision="int8")`` uses the static QDQ model from ``training.ptq_static``
instead. With ``--record`` the measured slowdown goes into the model's JSON sidecar.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_output, atomic_write_text

from .cli import UsageError, check_output_file, require_onnx, run_main, sha256_file, step_parser


def time_model(path: Path, shape=(1, 1, 360, 640), runs: int = 3) -> float:
    """Best-of-``runs`` seconds for one ONNX Runtime CPU inference (optimisation level ALL)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    session.run(None, {name: x})
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, {name: x})
        best = min(best, time.perf_counter() - t0)
    return best


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--force", action="store_true", help="replace an existing --output")
    ap.add_argument("--record", type=Path, help="a sidecar JSON to record the dynamic model and its speed in")
    args = ap.parse_args(argv)
    require_onnx(args.model)
    check_output_file(args.output, args.force)
    if args.record is not None and not args.record.is_file():
        raise UsageError(f"--record {args.record} does not exist (it names the model's JSON sidecar)")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_output(args.output) as tmp:
        quantize_dynamic(str(args.model), str(tmp), weight_type=QuantType.QUInt8)
    fp32_s, int8_s = time_model(args.model), time_model(args.output)
    print(f"wrote {args.output}; 640x360 on ONNX Runtime CPU: fp32 {fp32_s * 1e3:.1f} ms, dynamic INT8 "
          f"{int8_s * 1e3:.1f} ms ({int8_s / fp32_s:.1f}x the fp32 time)")
    if args.record is not None:
        sidecar = json.loads(args.record.read_text())
        sidecar["int8_dynamic"] = {
            "tool": "training.ptq_dynamic", "file": args.output.name, "sha256": sha256_file(args.output),
            "shipped": False,
            "ms_640x360_ort_cpu": {"fp32": round(fp32_s * 1e3, 2), "int8_dynamic": round(int8_s * 1e3, 2)},
            "note": ("ConvInteger graph (card's dynamic PTQ) is slower than fp32 on CPU; vmaf_pre uses the "
                     "static QDQ sidecar"),
        }
        atomic_write_text(args.record, json.dumps(sidecar, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
