"""Train the C3 filter (learned_filter_v1, or learned_filter_codec_v1) on degraded -> clean luma pairs.

    python -m training.train_konvid --model c3 --output-c3 runs/c3 --seed 42 \\
        [--images DIR | --videos DIR] [--degradation card|codec --pairs DIR] [--val-packages P ...] \\
        [--steps N | --time-budget SECONDS | --epochs-c3 N] [--batch-size 64] [--crop 128] [--reparam] \\
        [--device auto|cpu|cuda] [--qat-steps N] [--resume] [--force]

Degradations: ``card`` is the model card's recipe (Gaussian blur sigma 1.2, then JPEG q35, Pillow),
applied to whole photos in each of their 8 flips/rotations before cropping (so the JPEG grid sits where
it does at test time); ``codec`` reads the real encode/decode pairs of ``training.codec_pairs``.
Validation holds out whole source packages (``--val-packages``; default opencv-doc and tuxpaint-data
when the corpus has them), so it measures generalisation to unfamiliar photos, not look-alikes.

Training: L1 on fresh random crops every step, Adam with warm-up and cosine decay, a weight EMA
(the exported weights), optional re-parameterised branches folded at the end, bf16 autocast on CUDA.
Without ``--steps`` the length is ``--epochs-c3`` x (crops per image x images / batch); with
``--time-budget`` the step count that fits is measured on the device first and recorded.
``--qat-steps`` continues with quantisation-aware fine-tuning (``qat.ckpt`` for ``ptq_static``).
Deterministic given the seed on the CPU; on CUDA, cuDNN's convolution backward is not (recorded).

Writes ``last.ckpt`` at every chunk (resumable) and the provenance sidecar
``train_konvid.manifest.json`` (data with per-file sha256 and package, settings, versions, metrics).
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
from .corpus import DEFAULT_VAL_PACKAGES, Sample, load_corpus, split, split_by_package
from .degrade import BLUR_SIGMA, JPEG_QUALITY, degrade, degraded_variants
from .loop import LOSSES, Schedule, Trainer, evaluate_full, pick_device, psnr, use_bf16

__all__ = ["main", "psnr", "evaluate_full"]

MODEL_IDS = {"card": "learned_filter_v1", "codec": "learned_filter_codec_v1"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.train_konvid", description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["c2", "c3", "both"], default="c3",
                    help="c3 = the filter (this package); c2 is the NR metric, not part of vsfilter")
    ap.add_argument("--output-c3", type=Path, default=Path("runs/c3_konvid"))
    ap.add_argument("--output-c2", type=Path, help=argparse.SUPPRESS)  # the card's C2 flags: refused below
    ap.add_argument("--epochs-c2", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--epochs-c3", type=int, default=200, help="length in epochs when --steps is not given")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--degradation", choices=["card", "codec"], default="card")
    ap.add_argument("--pairs", type=Path, default=Path("data/codec_pairs"),
                    help="with --degradation codec: the pair set of training.codec_pairs")
    ap.add_argument("--videos", type=Path, help="folder of videos: the middle frame of each is a sample")
    ap.add_argument("--images", type=Path, help="folder of images")
    ap.add_argument("--konvid-dir", type=Path, default=Path("data/konvid_1k"),
                    help="KoNViD-1k as fetched by training.fetch_konvid_1k (used when no --videos/--images)")
    ap.add_argument("--val-packages", nargs="*", default=None,
                    help="source packages held out for validation (default: opencv-doc and tuxpaint-data when "
                         "present, else a seeded split by file)")
    ap.add_argument("--val-fraction", type=float, default=0.15, help="split by file when there are no packages")
    ap.add_argument("--num-blocks", type=int, default=4, help="residual blocks (4 = the card's ~19K params)")
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--reparam", action="store_true", help="train with re-parameterised branches (folded at export)")
    ap.add_argument("--crop", type=int, default=128, help="training crop size")
    ap.add_argument("--crops-per-image", type=int, default=4, help="defines an epoch: crops per image")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, help="optimiser steps (overrides --epochs-c3)")
    ap.add_argument("--time-budget", type=float, help="seconds of training: measure the speed, fit the steps")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--loss", choices=list(LOSSES), default="l1",
                    help="l2 (MSE) optimises PSNR directly: useful to fine-tune an L1-trained model; psnr-harm: "
                         "per-crop PSNR change with crops made worse weighted up; l1-harm: L1 with crops made worse "
                         "weighted up (both: do no harm)")
    ap.add_argument("--harm-weight", type=float, default=2.0,
                    help="with --loss l1-harm or psnr-harm: extra weight of a crop the filter makes worse")
    ap.add_argument("--init", type=Path,
                    help="start from these weights (fine-tuning): a checkpoint, or a shipped .onnx model")
    ap.add_argument("--model-id", help="the registry id the run trains (default: learned_filter_v1 for the card's "
                                       "degradation, learned_filter_codec_v1 for codec pairs)")
    ap.add_argument("--ema", type=float, default=0.999, help="weight EMA decay (0 = none)")
    ap.add_argument("--chunk", type=int, default=None,
                    help="steps between validation and checkpoints (default: an epoch, or 1000 with --steps)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--amp", choices=["auto", "bf16", "none"], default="auto",
                    help="auto = bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX), else fp32")
    ap.add_argument("--qat-steps", type=int, default=0, help="then quantisation-aware fine-tuning steps")
    ap.add_argument("--qat-lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = all cores")
    ap.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.ckpt")
    ap.add_argument("--force", action="store_true", help="overwrite an existing run in --output-c3")
    ap.add_argument("--manifest-out", type=Path, help="default: OUTPUT/train_konvid.manifest.json")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions(device) -> dict:
    import PIL
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
           "pillow": PIL.__version__, "platform": platform.platform(), "device": str(device)}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["cudnn"] = torch.backends.cudnn.version()
    return out


def _check_args(args: argparse.Namespace) -> None:
    if args.model in ("c2", "both") or args.output_c2 is not None or args.epochs_c2 is not None:
        raise UsageError("C2 (the NR quality metric) is not part of this package; train the filter with --model c3")
    if args.epochs_c3 < 1 or args.crop < 16 or args.batch_size < 1 or args.num_blocks < 1:
        raise UsageError("--epochs-c3 and --batch-size must be >= 1, --crop >= 16, --num-blocks >= 1")
    if (args.steps is not None and args.steps < 1) or args.qat_steps < 0 or (args.chunk is not None and args.chunk < 1):
        raise UsageError("--steps and --chunk must be >= 1, --qat-steps >= 0")
    if args.time_budget is not None and args.time_budget <= 0:
        raise UsageError("--time-budget must be > 0 seconds")


# ------------------------------------------------------------------------------------------ data


def card_data(args) -> tuple[list, list, dict]:
    """(train pairs, val pairs, data record) for the card's blur + JPEG degradation."""
    images, videos = args.images, args.videos
    if images is None and videos is None:
        videos = args.konvid_dir / "KoNViD_1k_videos"
        if not videos.is_dir():
            raise UsageError(f"no corpus: {videos} is missing; run python -m training.fetch_konvid_1k, "
                             "or pass --videos DIR / --images DIR")
    corpus = load_corpus(images, videos, min_size=args.crop)
    if corpus.skipped and not args.quiet:
        print(f"skipped {len(corpus.skipped)} unreadable or too small file(s)", file=sys.stderr)
    packages = sorted({s.package for s in corpus.samples})
    val_packages = args.val_packages
    if val_packages is None:
        val_packages = [p for p in DEFAULT_VAL_PACKAGES if p in packages]
    if val_packages:
        train_s, val_s = split_by_package(corpus.samples, val_packages)
    else:
        train_s, val_s = split(corpus.samples, args.val_fraction, args.seed)
    from concurrent.futures import ProcessPoolExecutor

    workers = min(len(os.sched_getaffinity(0)), 16)
    with ProcessPoolExecutor(workers) as pool:
        train = [pair for variants in pool.map(degraded_variants, [s.luma for s in train_s]) for pair in variants]
        val = [(s.luma, d) for s, d in zip(val_s, pool.map(degrade, [s.luma for s in val_s]))]

    def rows(samples: list[Sample]) -> list[dict]:
        return [{"path": str(s.path), "sha256": s.sha256, "shape": list(s.luma.shape), "package": s.package}
                for s in samples]

    record = {"train": rows(train_s), "val": rows(val_s), "val_packages": list(val_packages),
              "skipped": [{"path": p, "reason": r} for p, r in corpus.skipped],
              "degradation": {"kind": "card", "gaussian_blur_sigma": BLUR_SIGMA, "jpeg_quality": JPEG_QUALITY,
                              "library": "Pillow", "flips_rotations": 8, "applied_to": "whole images"}}
    return train, val, record


def codec_data(args) -> tuple[list, list, dict]:
    """(train pairs, val pairs, data record) from a codec pair set, split by source package."""
    from .codec_pairs import load_pairs

    manifest_file = args.pairs / "manifest.json"
    listing = json.loads(manifest_file.read_text()) if manifest_file.is_file() else None
    if listing is None:
        raise UsageError(f"{args.pairs} is not a codec pair set (no manifest.json); build it with "
                         "python -m training.codec_pairs")
    packages = sorted({c["package"] for c in listing["clips"]})
    val_packages = args.val_packages if args.val_packages is not None else [
        p for p in DEFAULT_VAL_PACKAGES if p in packages]
    missing = [p for p in val_packages if p not in packages]
    if missing:
        raise UsageError(f"validation package(s) {', '.join(missing)} are not in the pair set; "
                         f"it has {', '.join(packages)}")
    train, train_labels = load_pairs(args.pairs, exclude=set(val_packages), identity=True)
    val, val_labels = load_pairs(args.pairs, packages=set(val_packages))
    if not train or not val:
        raise UsageError("the pair set splits into an empty training or validation part; check --val-packages")
    record = {"pairs": str(args.pairs), "pair_set_key": listing["key"], "settings": listing["settings"],
              "val_packages": list(val_packages), "train_clips": len({lb["clip"] for lb in train_labels}),
              "val_clips": len({lb["clip"] for lb in val_labels}), "train_pairs": len(train), "val_pairs": len(val),
              "train_identity_pairs": sum(lb["encoder"] == "identity" for lb in train_labels),
              "train_sources": sorted({lb["source"] for lb in train_labels}),
              "val_sources": sorted({lb["source"] for lb in val_labels}),
              "degradation": {"kind": "codec", "tool": "training.codec_pairs"}}
    args._val_labels = val_labels
    return train, val, record


def crf_band(crf: int) -> str:
    lo = (crf // 10) * 10
    return f"crf {lo}-{lo + 9}"


def codec_breakdown(model, val_pairs: list, labels: list[dict], device) -> dict:
    """PSNR gain per encoder and CRF band, per bit depth, and of the worst clip, on the validation frames.

    ``labels[i]`` describes ``val_pairs[i]`` (as :func:`training.codec_pairs.load_pairs` returns them).
    """
    if len(labels) != len(val_pairs):
        raise ValueError(f"{len(labels)} labels for {len(val_pairs)} pairs")
    result = evaluate_full(model, val_pairs, device)
    groups: dict[str, dict[str, list[float]]] = {"per_codec": {}, "per_bit_depth": {}, "per_clip": {}}
    for label, (before, after) in zip(labels, result["per_image"]):
        gain = after - before
        groups["per_codec"].setdefault(f"{label['encoder']} {crf_band(label['crf'])}", []).append(gain)
        groups["per_bit_depth"].setdefault(f"{label['bits']}-bit", []).append(gain)
        groups["per_clip"].setdefault(str(label["clip"]), []).append(gain)
    out = {name: {k: {"frames": len(v), "psnr_gain_db": round(float(np.mean(v)), 4)} for k, v in sorted(g.items())}
           for name, g in groups.items() if name != "per_clip"}
    clip_means = {k: float(np.mean(v)) for k, v in groups["per_clip"].items()}
    worst = min(clip_means, key=clip_means.__getitem__)
    out["worst_clip"] = {"clip": int(worst), "psnr_gain_db": round(clip_means[worst], 4)}
    return out


# ------------------------------------------------------------------------------------------ main


@run_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _check_args(args)
    out_dir: Path = args.output_c3
    ckpt_path = out_dir / "last.ckpt"
    manifest_path = args.manifest_out or out_dir / "train_konvid.manifest.json"
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--output-c3 {out_dir} is a file; give a folder")
    if ckpt_path.exists() and not (args.resume or args.force):
        raise UsageError(f"{ckpt_path} exists; pass --resume to continue it or --force to start over")
    if args.resume and not ckpt_path.exists():
        raise UsageError(f"--resume: {ckpt_path} does not exist")

    import torch

    from .checkpoint import load_model, load_weights, save_checkpoint
    from .model import LearnedFilter, count_params, fold
    from .pairs import PairBank, center_crops, steps_for

    resumed = load_model(ckpt_path)[1] if args.resume else None  # a bad checkpoint fails before the data
    if resumed is not None and "train_state" not in resumed:
        raise UsageError(f"--resume: {ckpt_path} holds exported weights only, not a training state to continue")
    started_from = load_weights(args.init)[0] if args.init is not None else None

    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False  # evaluation and QAT in true fp32; training is bf16 autocast
    if args.threads:
        torch.set_num_threads(args.threads)
    amp, precision_note = use_bf16(args.amp, device)
    if not args.quiet:
        print(f"training on {device}: {precision_note}", flush=True)

    train, val, data = (codec_data if args.degradation == "codec" else card_data)(args)
    bank = PairBank(train, device, args.crop, align=8 if args.degradation == "card" else 1,
                    augment=args.degradation == "codec")
    val_crop = min(256, args.crop * 2, *(min(c.shape) for c, _ in val))
    val_x, val_y = (torch.from_numpy(a).to(device) for a in center_crops(val, val_crop, limit=64))

    model = LearnedFilter(args.num_blocks, args.channels, reparam=args.reparam).to(device)
    model = model.to(memory_format=torch.channels_last)
    images = len(train) // (8 if args.degradation == "card" else 1)
    per_epoch = max(1, math.ceil(images * args.crops_per_image / args.batch_size))
    steps = args.steps or args.epochs_c3 * per_epoch
    chunk = args.chunk or (1000 if args.steps or args.time_budget else per_epoch)
    if started_from is not None:
        if args.reparam:
            raise UsageError("--init loads a plain network; drop --reparam to fine-tune it")
        model.load_state_dict(started_from.state_dict())
    schedule = Schedule(steps, args.batch_size, args.lr, chunk=min(chunk, steps), ema=args.ema or None, amp=amp,
                        seed=args.seed, loss=args.loss, warmup=0.03 if args.init is None else 0.0,
                        harm_weight=args.harm_weight)
    if args.time_budget is not None and not args.resume:
        probe = Trainer(model, bank, schedule)
        rate = probe.measure_rate()
        schedule.steps = steps_for(args.time_budget, rate)
        schedule.chunk = min(chunk, schedule.steps)
        if not args.quiet:
            print(f"{rate:.1f} steps/s on {device}: {schedule.steps} steps fit {args.time_budget:.0f} s", flush=True)
    trainer = Trainer(model, bank, schedule)
    if resumed is not None:
        state = resumed
        saved_arch = {k: state["train_state"]["arch"].get(k) for k in ("num_blocks", "channels", "reparam")}
        if saved_arch != model.arch:
            raise UsageError(f"--resume: {ckpt_path} is a {saved_arch} model, not this run's {model.arch}")
        if args.time_budget is not None:  # a timed run resumes to the step count it measured
            schedule.steps = int(state["train_state"]["steps_total"])
        trainer = Trainer(model, bank, schedule)
        trainer.load_state(state["train_state"])
    out_dir.mkdir(parents=True, exist_ok=True)
    loss_fn = torch.nn.L1Loss()
    model_id = args.model_id or MODEL_IDS[args.degradation]

    def averaged() -> LearnedFilter:
        avg = LearnedFilter(args.num_blocks, args.channels, reparam=args.reparam).to(device)
        avg.load_state_dict(trainer.averaged_state())
        return fold(avg).eval()

    def validate(t: Trainer) -> dict:
        epoch = t.step / per_epoch
        with torch.inference_mode():
            return {"epoch": int(epoch) if epoch.is_integer() else round(epoch, 3),
                    "val_l1": float(loss_fn(averaged()(val_x), val_y)),
                    "val_l1_degraded_input": float(loss_fn(val_x, val_y))}

    manifest = {
        "tool": "training.train_konvid", "model_id": model_id,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")},
        "architecture": {"num_blocks": args.num_blocks, "channels": args.channels, "params": count_params(fold(model)),
                         "receptive_radius": model.receptive_radius, "reparam_training": args.reparam},
        "degradation": data["degradation"], "data": data,
        "schedule": {"steps": schedule.steps, "batch": schedule.batch, "crop": args.crop, "lr": schedule.lr,
                     "ema": schedule.ema, "amp_bf16": amp, "chunk": schedule.chunk},
        "determinism": "deterministic given the seed (CPU, torch.use_deterministic_algorithms)" if device.type == "cpu"
        else "not bit-reproducible: cuDNN convolution backward and bf16 autocast on CUDA",
        "versions": _versions(device), "git_commit": _git_commit(),
    }
    if args.init is not None:
        from .cli import sha256_file

        manifest["init"] = {"checkpoint": str(args.init), "sha256": sha256_file(args.init)}

    def save(t: Trainer, row: dict) -> None:
        plain = averaged()
        save_checkpoint(ckpt_path, {
            "model": {k: v.cpu() for k, v in plain.state_dict().items()},
            "arch": {"num_blocks": args.num_blocks, "channels": args.channels}, "seed": args.seed,
            "model_id": model_id, "epoch": t.step, "history": t.history,
            "train_state": {**t.state(), "arch": model.arch, "steps_total": schedule.steps}})
        manifest["epochs"] = t.history
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2))
        if not args.quiet:
            print(f"step {t.step}/{schedule.steps} train_l1 {row['train_l1']:.5f} val_l1 {row['val_l1']:.5f} "
                  f"(input {row['val_l1_degraded_input']:.5f}) {row['seconds']:.1f}s", flush=True)

    started = time.monotonic()
    trainer.run(on_chunk=save, validate=validate)
    final = averaged()
    manifest["train_seconds"] = round(time.monotonic() - started, 1)
    manifest["epochs"] = trainer.history
    manifest["final"] = {"val_l1": trainer.history[-1]["val_l1"], **evaluate_full(final, val, device)}
    if args.degradation == "codec":
        manifest["final"] |= codec_breakdown(final, val, args._val_labels, device)
    if args.qat_steps:
        manifest["qat"] = run_qat(args, final, bank, val, device, out_dir)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2))
    if not args.quiet:
        f = manifest["final"]
        print(f"val L1 {f['val_l1']:.4f}; PSNR-Y on {f['images']} held-out image(s): "
              f"{f['psnr_degraded_db']:.2f} -> {f['psnr_filtered_db']:.2f} dB ({f['psnr_gain_db']:+.3f} dB)")
        print(f"checkpoint: {ckpt_path}\nmanifest: {manifest_path}", flush=True)
    return 0


def run_qat(args, model, bank, val, device, out_dir: Path, name: str = "qat.ckpt") -> dict:
    """Quantisation-aware fine-tuning of a copy of ``model`` (fp32 on the device); writes ``out_dir/name``."""
    import copy

    from .checkpoint import save_checkpoint
    from .qat import QATFilter

    student = copy.deepcopy(model).train()
    qat = QATFilter(student).to(device)
    freeze_at = max(1, args.qat_steps // 10)
    schedule = Schedule(args.qat_steps, args.batch_size, args.qat_lr, chunk=freeze_at, ema=None, amp=False,
                        seed=args.seed + 1000, loss=args.loss)
    trainer = Trainer(student, bank, schedule, forward=qat)

    def freeze(t: Trainer, row: dict) -> None:
        if t.step >= freeze_at:
            qat.freeze_observers()

    trainer.run(on_chunk=freeze)
    student.eval()
    save_checkpoint(out_dir / name, {"model": {k: v.cpu() for k, v in student.state_dict().items()},
                                           "arch": {"num_blocks": args.num_blocks, "channels": args.channels},
                                           "seed": args.seed, "qat_steps": args.qat_steps, "history": trainer.history})
    return {"steps": args.qat_steps, "lr": args.qat_lr, "freeze_observers_at": freeze_at,
            "final_fp32_weights": {k: v for k, v in evaluate_full(student, val, device).items() if k != "per_image"}}


if __name__ == "__main__":
    sys.exit(main())
