"""Quantization-aware fine-tuning: adapt a trained checkpoint to the static INT8 (QDQ) graph.

    python -m training.qat_finetune --c3-ckpt runs/c3/last.ckpt --images data/offline_photos \\
        --output runs/c3_qat [--degradation card|codec --pairs DIR] [--steps 1500] [--lr 1e-4]
    python -m training.qat_finetune --c3-ckpt model/tiny/learned_filter_codec_v3.onnx --degradation codec \\
        --pairs data/codec_pairs_v3 --output runs/v3_qat

Post-training quantisation alone loses ~0.09 dB of the fp32 PSNR gain (uint8 activations of the
16-channel residual stream). This step fine-tunes the fp32 weights with fake quantisation placed
exactly where ``training.ptq_static`` puts Q/DQ pairs (``training.qat``), straight-through gradients,
at a low learning rate; the observers freeze after the first tenth of the steps. Its ``last.ckpt``
feeds ``ptq_static --qat-ckpt``; the fp32 model that ships is unchanged. Same data, split and
degradation as ``train_konvid`` (``train_konvid --qat-steps`` runs this at the end of training). A
quantizer-conditioned network (two input planes) is fed each pair's quantizer plane, "unknown" on
``--unknown-share`` of the crops, as it was trained; ``--c3-ckpt`` may be a shipped ``.onnx``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vsfilter.atomic import atomic_write_text

from .cli import UsageError, check_fraction, run_main, step_parser
from .pairs import UNKNOWN_SHARE


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--c3-ckpt", type=Path, required=True, help="a training checkpoint or a shipped .onnx model")
    ap.add_argument("--images", type=Path, help="the training corpus (as train_konvid --images)")
    ap.add_argument("--videos", type=Path)
    ap.add_argument("--degradation", choices=["card", "codec"], default="card")
    ap.add_argument("--pairs", type=Path, default=Path("data/codec_pairs"))
    ap.add_argument("--val-packages", nargs="*", default=None)
    ap.add_argument("--unknown-share", type=float, default=UNKNOWN_SHARE, metavar="FRACTION",
                    help="a two-input network: crops whose quantizer plane is 'unknown'")
    ap.add_argument("--output", type=Path, required=True, help="folder for last.ckpt and qat.manifest.json")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--loss", choices=["l1", "l2"], default="l1")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.crop < 16:
        raise UsageError("--steps and --batch-size must be >= 1, --crop >= 16")
    check_fraction(args.unknown_share, "--unknown-share")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"--output {args.output} is a file; give a folder")
    if (args.output / "last.ckpt").exists() and not args.force:
        raise UsageError(f"{args.output / 'last.ckpt'} exists; pass --force to replace it")

    import torch

    from .checkpoint import load_weights
    from .datasets import DataSpec, load_training_data
    from .loop import pick_device
    from .pairs import PairBank
    from .qat import QATSettings, run_qat

    model, state = load_weights(args.c3_ckpt)
    quantizer = model.in_channels > 1
    if quantizer and args.degradation != "codec":
        raise UsageError(f"{args.c3_ckpt} is a two-input (quantizer-conditioned) network: it needs --degradation "
                         "codec and a pair set that records the quantizer")
    device = pick_device(args.device)
    seed = int(state.get("seed", 42))
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    data = load_training_data(DataSpec(args.degradation, args.images, args.videos, pairs=args.pairs, crop=args.crop,
                                       val_packages=args.val_packages, seed=seed, quiet=args.quiet,
                                       quantizer=quantizer))
    bank = PairBank(data.train, device, args.crop, align=8 if args.degradation == "card" else 1,
                    augment=args.degradation == "codec", unknown_share=args.unknown_share if quantizer else 0.0)
    args.output.mkdir(parents=True, exist_ok=True)
    result = run_qat(model.to(device), bank, data.val, device, args.output / "last.ckpt",
                     QATSettings(args.steps, args.lr, args.batch_size, seed, args.loss))
    manifest = {"tool": "training.qat_finetune", "args": {k: str(v) for k, v in vars(args).items()},
                "from_checkpoint": str(args.c3_ckpt), **result}
    atomic_write_text(args.output / "qat.manifest.json", json.dumps(manifest, indent=2))
    if not args.quiet:
        gain = result["final_fp32_weights"]["psnr_gain_db"]
        print(f"QAT checkpoint {args.output / 'last.ckpt'}; its fp32 PSNR gain on held-out: {gain:+.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
