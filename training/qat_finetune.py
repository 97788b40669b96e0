"""Quantization-aware fine-tuning: adapt a trained C3 checkpoint to the static INT8 (QDQ) graph.

    python -m training.qat_finetune --c3-ckpt runs/c3/last.ckpt --images data/offline_photos \\
        --output runs/c3_qat [--epochs 30] [--lr 1e-4]

Post-training quantisation alone loses ~0.09 dB of the fp32 PSNR gain (uint8 activations of the
16-channel residual stream). This step fine-tunes the fp32 weights with fake quantisation placed
exactly where ``training.ptq_static`` puts Q/DQ pairs (the input, every Conv+ReLU output, every conv2
output, every block's Add; the output conv and the global skip stay in float), straight-through
gradients, at a low learning rate. Its checkpoint feeds ``ptq_static --qat-ckpt``; the fp32 model
that ships is unchanged. Same corpus, split and degradation as ``train_konvid``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_write_text

from .cli import UsageError, run_main
from .corpus import load_corpus, split
from .degrade import degrade
from .train_konvid import _warmup_cosine, evaluate_full, train_epoch


def _fake_quant_modules():
    import torch
    from torch import nn

    class ActFQ(nn.Module):
        """uint8 asymmetric per-tensor fake quantisation with an EMA min/max observer (frozen later)."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("lo", torch.tensor(float("inf")))
            self.register_buffer("hi", torch.tensor(float("-inf")))
            self.observe = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.observe:
                lo, hi = x.detach().min(), x.detach().max()
                if torch.isinf(self.lo):
                    self.lo.copy_(lo)
                    self.hi.copy_(hi)
                else:
                    self.lo.mul_(0.9).add_(0.1 * lo)
                    self.hi.mul_(0.9).add_(0.1 * hi)
            lo, hi = torch.clamp(self.lo, max=0.0), torch.clamp(self.hi, min=1e-6)
            scale = float((hi - lo) / 255.0)
            zero = int(torch.clamp(torch.round(-lo / scale), 0, 255))
            return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)

    def weight_fq(w: torch.Tensor) -> torch.Tensor:
        """int8 symmetric per-output-channel fake quantisation of a conv weight."""
        scale = (w.detach().abs().amax(dim=(1, 2, 3)) / 127.0).clamp(min=1e-8)
        zero = torch.zeros(w.shape[0], dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -128, 127)

    class QATFilter(nn.Module):
        """LearnedFilter's forward with fake quantisation where the QDQ graph quantises."""

        def __init__(self, model) -> None:
            super().__init__()
            self.model = model
            self.fq = nn.ModuleList(ActFQ() for _ in range(2 + 3 * model.num_blocks))

        def conv(self, layer, x):
            return nn.functional.conv2d(x, weight_fq(layer.weight), layer.bias, padding=1)

        def forward(self, x):
            m, fq = self.model, iter(self.fq)
            h = next(fq)(x)
            h = next(fq)(torch.relu(self.conv(m.head[0], h)))
            for block in m.body:
                a = next(fq)(torch.relu(self.conv(block.conv1, h)))
                b = next(fq)(self.conv(block.conv2, a))
                h = next(fq)(h + b)
            return x + m.tail(h)

        def freeze_observers(self) -> None:
            for module in self.fq:
                module.observe = False

    return QATFilter


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.qat_finetune", description=__doc__.splitlines()[0])
    ap.add_argument("--c3-ckpt", type=Path, required=True)
    ap.add_argument("--images", type=Path, help="the training corpus (as train_konvid --images)")
    ap.add_argument("--videos", type=Path)
    ap.add_argument("--output", type=Path, required=True, help="folder for last.ckpt and qat.manifest.json")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--freeze-after", type=int, default=3, help="epochs before the observers freeze")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--crops-per-image", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if not args.c3_ckpt.is_file():
        raise UsageError(f"checkpoint {args.c3_ckpt} does not exist")
    if (args.output / "last.ckpt").exists() and not args.force:
        raise UsageError(f"{args.output / 'last.ckpt'} exists; pass --force to replace it")
    import torch
    from tqdm import tqdm

    from .model import LearnedFilter

    state = torch.load(args.c3_ckpt, map_location="cpu", weights_only=False)
    try:
        model = LearnedFilter(**state["arch"])
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise UsageError(f"{args.c3_ckpt} is not a learned_filter_v1 checkpoint ({type(exc).__name__})") from None
    seed = state.get("seed", 42)
    torch.manual_seed(seed)
    corpus = load_corpus(args.images, args.videos, min_size=args.crop)
    train_s, val_s = split(corpus.samples, args.val_fraction, seed)
    train_pairs = [(s.luma, degrade(s.luma)) for s in train_s]
    val_pairs = [(s.luma, degrade(s.luma)) for s in val_s]
    qat = _fake_quant_modules()(model)
    steps = max(1, math.ceil(len(train_pairs) * args.crops_per_image / args.batch_size))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(steps * args.epochs))
    history = []
    for epoch in tqdm(range(args.epochs), desc="qat", unit="epoch", disable=args.quiet or None):
        if epoch == args.freeze_after:
            qat.freeze_observers()
        rng = np.random.default_rng([seed, 1000 + epoch])
        loss = train_epoch(qat, opt, sched, rng, train_pairs, args.crop, args.batch_size, steps)
        history.append({"epoch": epoch + 1, "train_l1_fake_quant": loss})
    args.output.mkdir(parents=True, exist_ok=True)
    model.eval()
    tmp = args.output / "last.ckpt.tmp"
    torch.save({"model": model.state_dict(), "arch": state["arch"], "epoch": args.epochs, "seed": seed,
                "history": history, "qat_from": str(args.c3_ckpt)}, tmp)
    tmp.replace(args.output / "last.ckpt")
    final = evaluate_full(model, val_pairs)
    manifest = {"tool": "training.qat_finetune", "args": {k: str(v) for k, v in vars(args).items()},
                "from_checkpoint": str(args.c3_ckpt), "epochs": history, "final_fp32_weights": final}
    atomic_write_text(args.output / "qat.manifest.json", json.dumps(manifest, indent=2))
    if not args.quiet:
        print(f"QAT checkpoint {args.output / 'last.ckpt'}; its fp32 PSNR gain on held-out: {final['psnr_gain_db']:+.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
