"""Where a training run stands: PSNR-Y gain per encoder and CRF band on a pair set's held-out packages.

    python -m training.evaluate_run --ckpt checkpoints/codec_v3/last.ckpt --pairs data/codec_pairs_v3 \\
        [--against model/tiny/learned_filter_codec_v2.onnx] [--every 3] [--threads 1]

Prints, for the checkpoint (its EMA weights) and for ``--against`` (a shipped model or checkpoint), the
mean gain over the decoded frame per encoder x CRF band and the worst held-out clip. A quantizer-
conditioned checkpoint is scored twice: told each frame's quantizer, and with the plane "unknown"
(blind); a one-input model gets the luma only; a temporal checkpoint (six planes) its neighbours too,
which needs a pair set built with ``--neighbours`` (the other networks are fed the same pairs' own
frame). Held-out packages: opencv-doc and tuxpaint-data
(``--packages`` names others).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .cli import UsageError, run_main, step_parser

__all__ = ["main"]


def _table(name: str, result: dict) -> str:
    cells = "  ".join(f"{k} {v['psnr_gain_db']:+.3f}" for k, v in result["per_codec"].items())
    worst = result["worst_clip"]
    return f"{name:24s} {cells}\n{'':24s} worst clip {worst['clip']}: {worst['psnr_gain_db']:+.3f} dB"


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True, help="the run's checkpoint (or an .onnx model)")
    ap.add_argument("--pairs", type=Path, required=True, help="the codec pair set the run trains on")
    ap.add_argument("--against", type=Path, help="a baseline: a shipped .onnx model or a checkpoint")
    ap.add_argument("--every", type=int, default=3, help="score every N-th held-out pair (1 = all)")
    ap.add_argument("--packages", nargs="+", help="the held-out packages (default: opencv-doc and tuxpaint-data)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = all cores")
    args = ap.parse_args(argv)
    if args.every < 1:
        raise UsageError("--every must be >= 1")
    import torch

    from .checkpoint import load_weights
    from .corpus import DEFAULT_VAL_PACKAGES
    from .evaluation import codec_breakdown
    from .pair_sets import load_pairs

    if args.threads:
        torch.set_num_threads(args.threads)
    model, _ = load_weights(args.ckpt)
    baseline = load_weights(args.against)[0] if args.against is not None else None
    packages = set(args.packages or DEFAULT_VAL_PACKAGES)
    temporal = max(model.in_channels, baseline.in_channels if baseline is not None else 1) > 2
    pairs, labels = load_pairs(args.pairs, packages=packages, quantizer=True, neighbours=temporal)
    pairs, labels = pairs[:: args.every], labels[:: args.every]
    if not pairs:
        raise UsageError(f"{args.pairs} has no pairs of the held-out packages {', '.join(sorted(packages))}; "
                         "name them with --packages")
    device = torch.device("cpu")
    print(f"{len(pairs)} held-out pairs (every {args.every}) of {args.pairs}; PSNR-Y gain per encoder and CRF band")

    def feed(net):  # each network its own planes: (clean, *its input planes)
        return [p[: 1 + net.in_channels] for p in pairs]

    if baseline is not None:
        print(_table(f"{args.against.stem}", codec_breakdown(baseline, feed(baseline), labels, device)))
    print(_table(f"{args.ckpt.name} told" if model.in_channels > 1 else args.ckpt.name,
                 codec_breakdown(model, feed(model), labels, device)))
    if model.in_channels > 1:
        print(_table(f"{args.ckpt.name} blind", codec_breakdown(model, feed(model), labels, device, blind=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
