"""Train the C3 filter (learned_filter_v1) on degraded -> clean luma pairs with an L1 loss.

    python -m training.train_konvid --model c3 --output-c3 runs/c3_konvid --epochs-c3 200 --seed 42 \\
        [--videos DIR | --images DIR] [--num-blocks 4] [--crop 224] [--resume] [--force]

Without ``--videos``/``--images`` it reads KoNViD-1k as ``training.fetch_konvid_1k`` lays it out.
Writes ``last.ckpt`` every epoch and the run-provenance sidecar ``train_konvid.manifest.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_write_text

from .cli import UsageError, run_main
from .corpus import Sample, load_corpus, split
from .degrade import BLUR_SIGMA, JPEG_QUALITY, degrade

__all__ = ["main", "psnr", "evaluate_full", "train_epoch"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.train_konvid", description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["c2", "c3", "both"], default="c3",
                    help="c3 = learned_filter_v1 (this package); c2 is the NR metric, not part of vsfilter")
    ap.add_argument("--output-c3", type=Path, default=Path("runs/c3_konvid"))
    ap.add_argument("--output-c2", type=Path, default=None, help="accepted for the card's command; unused")
    ap.add_argument("--epochs-c3", type=int, default=200)
    ap.add_argument("--epochs-c2", type=int, default=None, help="accepted for the card's command; unused")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--videos", type=Path, help="folder of videos: the middle frame of each is a sample")
    ap.add_argument("--images", type=Path, help="folder of images")
    ap.add_argument("--konvid-dir", type=Path, default=Path("data/konvid_1k"),
                    help="KoNViD-1k as fetched by training.fetch_konvid_1k (used when no --videos/--images)")
    ap.add_argument("--num-blocks", type=int, default=4, help="residual blocks (4 = the card's ~19K params)")
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--crop", type=int, default=224, help="training crop size (the card: 224)")
    ap.add_argument("--crops-per-image", type=int, default=4, help="random crops per training image per epoch")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = all cores")
    ap.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.ckpt")
    ap.add_argument("--force", action="store_true", help="overwrite an existing run in --output-c3")
    ap.add_argument("--manifest-out", type=Path, help="default: OUTPUT/train_konvid.manifest.json")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two images on the same scale."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(peak * peak / mse)


def evaluate_full(model, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """PSNR-Y of degraded and filtered (rounded to 8 bits, as vmaf_pre outputs) vs clean, whole images."""
    import torch

    before, after = [], []
    with torch.inference_mode():
        for clean, degraded in pairs:
            x = torch.from_numpy(degraded.astype(np.float32) / 255.0)[None, None]
            y = model(x.contiguous(memory_format=torch.channels_last))[0, 0].numpy()
            out = np.clip(np.rint(y * 255.0), 0, 255)
            before.append(psnr(degraded, clean))
            after.append(psnr(out, clean))
    return {"psnr_degraded_db": float(np.mean(before)), "psnr_filtered_db": float(np.mean(after)),
            "psnr_gain_db": float(np.mean(np.subtract(after, before))), "images": len(pairs)}


def train_epoch(forward, opt, sched, rng: np.random.Generator, pairs, crop: int, batch: int, steps: int) -> float:
    """``steps`` L1 steps on random crops (channels_last), stepping the scheduler; the mean loss."""
    import torch

    loss_fn = torch.nn.L1Loss()
    losses = []
    for _ in range(steps):
        x, y = (torch.from_numpy(a).contiguous(memory_format=torch.channels_last)
                for a in _crop_batch(rng, pairs, crop, batch))
        loss = loss_fn(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def _crop_batch(rng: np.random.Generator, pairs, crop: int, count: int):
    clean_b = np.empty((count, 1, crop, crop), np.float32)
    deg_b = np.empty_like(clean_b)
    for i in range(count):
        clean, degraded = pairs[rng.integers(len(pairs))]
        y = rng.integers(clean.shape[0] - crop + 1)
        x = rng.integers(clean.shape[1] - crop + 1)
        clean_b[i, 0] = clean[y:y + crop, x:x + crop]
        deg_b[i, 0] = degraded[y:y + crop, x:x + crop]
    return deg_b / 255.0, clean_b / 255.0


def _center_crop(img: np.ndarray, crop: int) -> np.ndarray:
    y, x = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
    return img[y:y + crop, x:x + crop]


def _warmup_cosine(total_steps: int):
    """LR factor: linear warm-up over 3% of the steps, then cosine decay to 1% of the peak."""
    warmup = max(1, total_steps // 33)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict:
    import PIL
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "pillow": PIL.__version__, "platform": platform.platform()}


@run_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model in ("c2", "both"):
        raise UsageError("the C2 NR-metric model is not part of this package; use --model c3 (learned_filter_v1)")
    if args.epochs_c3 < 1 or args.crop < 16 or args.batch_size < 1 or args.num_blocks < 1:
        raise UsageError("--epochs-c3 and --batch-size must be >= 1, --crop >= 16, --num-blocks >= 1")
    out_dir: Path = args.output_c3
    ckpt_path = out_dir / "last.ckpt"
    manifest_path = args.manifest_out or out_dir / "train_konvid.manifest.json"
    if ckpt_path.exists() and not (args.resume or args.force):
        raise UsageError(f"{ckpt_path} exists; pass --resume to continue it or --force to start over")
    if args.resume and not ckpt_path.exists():
        raise UsageError(f"--resume: {ckpt_path} does not exist")

    import torch

    from .model import LearnedFilter, count_params

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    if args.threads:
        torch.set_num_threads(args.threads)

    images, videos = args.images, args.videos
    if images is None and videos is None:
        videos = args.konvid_dir / "KoNViD_1k_videos"
        if not videos.is_dir():
            raise UsageError(f"no corpus: {videos} is missing; run python -m training.fetch_konvid_1k, "
                             "or pass --videos DIR / --images DIR")
    corpus = load_corpus(images, videos, min_size=args.crop)
    if corpus.skipped and not args.quiet:
        print(f"skipped {len(corpus.skipped)} unreadable or too small file(s)", file=sys.stderr)
    train_s, val_s = split(corpus.samples, args.val_fraction, args.seed)

    def pairs(samples: list[Sample]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(s.luma, degrade(s.luma)) for s in samples]

    train_pairs, val_pairs = pairs(train_s), pairs(val_s)
    val_crops = [(_center_crop(c, args.crop), _center_crop(d, args.crop)) for c, d in val_pairs]
    val_x = torch.from_numpy(np.stack([d for _, d in val_crops])[:, None].astype(np.float32) / 255.0)
    val_y = torch.from_numpy(np.stack([c for c, _ in val_crops])[:, None].astype(np.float32) / 255.0)

    model = LearnedFilter(args.num_blocks, args.channels).to(memory_format=torch.channels_last)
    steps_per_epoch = max(1, math.ceil(len(train_pairs) * args.crops_per_image / args.batch_size))
    total_steps = steps_per_epoch * args.epochs_c3
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(total_steps))
    history: list[dict] = []
    start_epoch = 0
    if args.resume:
        state = torch.load(ckpt_path, weights_only=False)
        if state["arch"] != {"num_blocks": args.num_blocks, "channels": args.channels}:
            raise UsageError(f"--resume: {ckpt_path} is a {state['arch']} model, not this run's architecture")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"]
    out_dir.mkdir(parents=True, exist_ok=True)

    manifest = {
        "tool": "training.train_konvid",
        "model_id": "learned_filter_v1",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "architecture": {"num_blocks": args.num_blocks, "channels": args.channels, "params": count_params(model),
                         "receptive_radius": model.receptive_radius},
        "degradation": {"gaussian_blur_sigma": BLUR_SIGMA, "jpeg_quality": JPEG_QUALITY, "library": "Pillow"},
        "data": {
            "train": [{"path": str(s.path), "sha256": s.sha256, "shape": list(s.luma.shape)} for s in train_s],
            "val": [{"path": str(s.path), "sha256": s.sha256, "shape": list(s.luma.shape)} for s in val_s],
            "skipped": [{"path": p, "reason": r} for p, r in corpus.skipped],
        },
        "versions": _versions(),
        "git_commit": _git_commit(),
        "epochs": history,
    }

    from tqdm import tqdm

    rng = np.random.default_rng([args.seed, start_epoch])
    loss_fn = torch.nn.L1Loss()
    bar = tqdm(range(start_epoch, args.epochs_c3), desc="train", unit="epoch", disable=args.quiet or None,
               initial=start_epoch, total=args.epochs_c3)
    for epoch in bar:
        rng = np.random.default_rng([args.seed, epoch])  # resumable: an epoch's crops depend on its number
        model.train()
        t0 = time.time()
        train_l1 = train_epoch(model, opt, sched, rng, train_pairs, args.crop, args.batch_size, steps_per_epoch)
        model.eval()
        with torch.inference_mode():
            val_l1 = float(loss_fn(model(val_x.contiguous(memory_format=torch.channels_last)), val_y))
            input_l1 = float(loss_fn(val_x, val_y))
        history.append({"epoch": epoch + 1, "train_l1": train_l1, "val_l1": val_l1,
                        "val_l1_degraded_input": input_l1, "seconds": round(time.time() - t0, 2)})
        bar.set_postfix(train_l1=f"{train_l1:.4f}", val_l1=f"{val_l1:.4f}")
        _save(torch, ckpt_path, model, opt, sched, args, epoch + 1, history)
        manifest["epochs"] = history
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2))

    model.eval()
    manifest["final"] = {"val_l1": history[-1]["val_l1"], **evaluate_full(model, val_pairs)}
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2))
    if not args.quiet:
        f = manifest["final"]
        print(f"val L1 {f['val_l1']:.4f}; PSNR-Y on {f['images']} held-out image(s): "
              f"{f['psnr_degraded_db']:.2f} -> {f['psnr_filtered_db']:.2f} dB ({f['psnr_gain_db']:+.2f} dB)")
        print(f"checkpoint: {ckpt_path}\nmanifest: {manifest_path}")
    return 0


def _save(torch, path: Path, model, opt, sched, args, epoch: int, history: list) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "arch": {"num_blocks": args.num_blocks, "channels": args.channels}, "epoch": epoch,
                "history": history, "seed": args.seed}, tmp)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
