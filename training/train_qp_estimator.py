"""Train the quantizer estimate a quantizer-conditioned filter falls back on where the bitstream is silent.

    python -m training.train_qp_estimator --pairs data/rate_pairs_v1 --output model/tiny/learned_qp_estimator_v1.onnx \\
        [--steps 6000] [--batch-size 16] [--tau 0.2 | --tau hevc=0.3 av1=0.1] [--lr 2e-3] [--seed 7] [--threads 1] \\
        [--val-packages P ...] [--state checkpoints/qp_estimator/state.ckpt [--chunk 500] [--stop-after S]] [--force]

The pairs: a codec pair set of the codecs the estimator serves (``training.qp_estimator.CODECS``:
``python -m training.codec_pairs --codecs libx265 libsvtav1``), which records each frame's coded rate
and quantizer (x265's per-frame QP from its log, SVT-AV1's CRF as qindex), as H.264-equivalent QP
(``vsfilter.quantizer``). Trained with the pinball loss at ``--tau`` (< 0.5: it errs low, see
``training.qp_estimator``) on whole frames of the training packages; the held-out packages
(opencv-doc, tuxpaint-data) print the bias, mean absolute error and over-estimate share per encoder.
``--state`` keeps a resumable state (weights, Adam, step; the frames of step k come from a generator
seeded by (seed, k)), written every ``--chunk`` steps and at the end; a run given the same state file
resumes it; ``--stop-after`` ends the run at the first chunk end after that many seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .cli import UsageError, check_output_file, run_main, step_parser

__all__ = ["main"]

def _parser():
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, required=True, help="a codec pair set (python -m training.codec_pairs)")
    ap.add_argument("--output", type=Path, required=True, help="the estimator .onnx to write")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--tau", nargs="+", default=["0.2"], metavar="TAU|CODEC=TAU",
                    help="the quantile predicted (< 0.5 errs low): one for every codec, or one per served codec "
                         "(hevc=0.3 av1=0.1)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = all cores")
    ap.add_argument("--val-packages", nargs="*", default=None,
                    help="source packages held out (default: opencv-doc and tuxpaint-data)")
    ap.add_argument("--state", type=Path,
                    help="resumable training state (written every --chunk steps; resumed when it exists)")
    ap.add_argument("--chunk", type=int, default=500, help="steps between states and progress lines")
    ap.add_argument("--stop-after", type=float, metavar="SECONDS",
                    help="stop at the first chunk end after SECONDS (the state is kept; run again to resume)")
    ap.add_argument("--force", action="store_true", help="replace an existing --output")
    return ap


def _check(args) -> None:
    if args.steps < 1 or args.batch_size < 1 or args.chunk < 1:
        raise UsageError("--steps, --batch-size and --chunk must be >= 1")
    if args.stop_after is not None and (args.state is None or args.stop_after < 0):
        raise UsageError("--stop-after needs --state (where the run is kept) and a number of seconds >= 0")
    args.tau = parse_tau(args.tau)
    if args.output.suffix.lower() != ".onnx":
        raise UsageError(f"--output {args.output} must end in .onnx")
    check_output_file(args.output, args.force)
    if args.state is not None and not args.state.parent.is_dir():
        raise UsageError(f"--state {args.state}: folder {args.state.parent} does not exist")


def parse_tau(items: list[str]) -> float | dict[str, float]:
    """``--tau``: one quantile (``0.1``), or ``CODEC=TAU`` for each served codec (UsageError otherwise)."""
    from .qp_estimator import CODECS

    def quantile(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0.0 < value < 1.0:
            raise UsageError(f"--tau is a quantile: give a value between 0 and 1, got {text!r}")
        return value

    if len(items) == 1 and "=" not in items[0]:
        return quantile(items[0])
    taus = {}
    for item in items:
        codec, sep, value = item.partition("=")
        if not sep or codec not in CODECS:
            raise UsageError(f"--tau {item!r}: give one quantile, or CODEC=TAU for each of {', '.join(CODECS)}")
        taus[codec] = quantile(value)
    if set(taus) != set(CODECS):
        raise UsageError(f"--tau gives {', '.join(sorted(taus))}; give CODEC=TAU for each of {', '.join(CODECS)}")
    return taus


def _frames(pairs: Path, held_out: set[str]) -> tuple[tuple, tuple]:
    """(training, held-out) ``frame_targets`` of a pair set."""
    from .pair_sets import load_pairs
    from .qp_estimator import CODECS, frame_targets

    train = frame_targets(*load_pairs(pairs, exclude=held_out, quantizer=True))
    val = frame_targets(*load_pairs(pairs, packages=held_out, quantizer=True))
    if not train[0]:
        raise UsageError(f"{pairs} has no {'/'.join(CODECS)} frames with a recorded rate and quantizer outside the "
                         "held-out packages; build one with python -m training.codec_pairs --codecs libx265 libsvtav1")
    print(f"{len(train[0])} training frames, {len(val[0])} held-out frames of {pairs}", flush=True)
    return train, val


@run_main
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _check(args)
    import torch

    from vsfilter.atomic import atomic_write_text

    from .checkpoint import load_checkpoint, save_checkpoint
    from .corpus import DEFAULT_VAL_PACKAGES
    from .qp_estimator import CODECS, EstimatorData, EstimatorTraining, evaluate_estimator, export_estimator

    if args.threads:
        torch.set_num_threads(args.threads)
    held_out = set(DEFAULT_VAL_PACKAGES if args.val_packages is None else args.val_packages)
    train, val = _frames(args.pairs, held_out)
    run = EstimatorTraining({k: getattr(args, k) for k in ("steps", "batch_size", "tau", "lr", "seed")})
    if args.state is not None and args.state.exists():
        try:
            run.load_state(load_checkpoint(args.state))
        except ValueError as exc:
            raise UsageError(f"--state {args.state}: {exc}; give those, or another --state") from None
        print(f"resumed at step {run.step}", flush=True)
    data, started = EstimatorData(*train[:3]), time.monotonic()
    while run.step < args.steps:
        loss = run.run_chunk(data, args.chunk)
        if args.state is not None:
            save_checkpoint(args.state, run.state())
        print(f"step {run.step}/{args.steps} pinball {loss:.5f}", flush=True)
        if args.stop_after is not None and run.step < args.steps and time.monotonic() - started >= args.stop_after:
            print(f"stopped at step {run.step}/{args.steps} (--stop-after); run again to resume", flush=True)
            return 0

    held = evaluate_estimator(run.model, *val)
    for encoder, row in held.items():
        print(f"  held out {encoder:12s} {row['frames']:5d} frames: bias {row['bias']:+.2f} QP, MAE {row['mae']:.2f}, "
              f"over by > 3 QP {100 * row['over_3']:.1f}%")
    export_estimator(run.model, args.output)
    record = {"tool": "training.train_qp_estimator", "settings": run.settings, "pairs": str(args.pairs),
              "codecs": list(CODECS), "held_out_packages": sorted(held_out), "held_out": held,
              "history": run.history, "training_frames": len(train[0])}
    atomic_write_text(args.output.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
