"""Train the C3 filter (learned_filter_v1, or learned_filter_codec_v1) on degraded -> clean luma pairs.

    python -m training.train_konvid --model c3 --output-c3 runs/c3 --seed 42 \\
        [--images DIR | --videos DIR] [--degradation card|codec --pairs DIR] [--val-packages P ...] \\
        [--steps N | --time-budget SECONDS | --epochs-c3 N] [--batch-size 64] [--crop 128] [--reparam] \\
        [--device auto|cpu|cuda] [--qat-steps N] [--resume] [--force]

Degradations: ``card`` is the model card's recipe (Gaussian blur sigma 1.2, then JPEG q35, Pillow),
applied to whole photos in each of their 8 flips/rotations before cropping (so the JPEG grid sits where
it does at test time); ``codec`` reads the real encode/decode pairs of ``training.codec_pairs``, with
``--quantizer`` each frame's quantizer plane too (a two-input network), with ``--neighbours`` also the
previous and next decoded frame and their planes (a temporal network, ``vsfilter.models.INPUT_LAYOUTS``).
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
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_write_text

from .cli import UsageError, check_fraction, run_main, step_parser
from .datasets import DataSpec, TrainingData, load_training_data
from .evaluation import codec_breakdown
from .loop import LOSSES, Schedule, Trainer, evaluate_full, pick_device, use_bf16
from .pairs import UNKNOWN_SHARE, input_planes
from .qat import QATSettings, run_qat

__all__ = ["main"]

MODEL_IDS = {"card": "learned_filter_v1", "codec": "learned_filter_codec_v1"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--model", choices=["c2", "c3", "both"], default="c3",
                    help="c3 = the filter (this package); c2 is the NR metric, not part of vsfilter")
    ap.add_argument("--output-c3", type=Path, default=Path("runs/c3_konvid"))
    ap.add_argument("--output-c2", type=Path, help=argparse.SUPPRESS)  # the card's C2 flags: refused below
    ap.add_argument("--epochs-c2", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--epochs-c3", type=int, default=200, help="length in epochs when --steps is not given")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--degradation", choices=["card", "codec"], default="card")
    ap.add_argument("--pairs", type=Path, nargs="+", default=[Path("data/codec_pairs")],
                    help="with --degradation codec: the pair set(s) of training.codec_pairs (several are pooled)")
    ap.add_argument("--pair-weights", type=float, nargs="+", metavar="W",
                    help="with several --pairs sets: one weight each; a set's crops are drawn in proportion to its "
                         "weight times its crop positions (default: 1 each)")
    ap.add_argument("--quantizer", action="store_true",
                    help="with --degradation codec: a two-input network [luma, quantizer plane] fed each pair's "
                         "quantizer map (learned_filter_codec_v3); --init of a one-input model is widened")
    ap.add_argument("--unknown-share", type=float, default=UNKNOWN_SHARE, metavar="FRACTION",
                    help="with --quantizer: crops whose quantizer plane is 'unknown' (blind-safe training)")
    ap.add_argument("--estimated-quantizer", dest="estimator", type=Path, metavar="ESTIMATOR.onnx",
                    help="with --quantizer: pairs whose decoder exports no quantizer (HEVC, AV1) are told this "
                         "estimator's estimate, as vmaf_pre tells them, instead of the encoder's QP")
    ap.add_argument("--neighbours", action="store_true",
                    help="with --quantizer: a temporal network [luma, quantizer, previous luma, its quantizer, next "
                         "luma, its quantizer] (pairs built with training.codec_pairs --neighbours); --init of a "
                         "one- or two-input model is widened")
    ap.add_argument("--still-share", type=float, default=0.15, metavar="FRACTION",
                    help="with --neighbours: crops whose neighbours are the frame itself (a clip's ends)")
    ap.add_argument("--cut-share", type=float, default=0.05, metavar="FRACTION",
                    help="with --neighbours: crops whose neighbours are another crop's (a scene cut)")
    ap.add_argument("--videos", type=Path, help="folder of videos: the middle frame of each is a sample")
    ap.add_argument("--images", type=Path, help="folder of images")
    ap.add_argument("--konvid-dir", type=Path, default=Path("data/konvid_1k"),
                    help="KoNViD-1k as fetched by training.fetch_konvid_1k (used when no --videos/--images)")
    ap.add_argument("--val-packages", nargs="*", default=None,
                    help="source packages held out for validation (default: opencv-doc and tuxpaint-data when "
                         "present, else a seeded split by file)")
    ap.add_argument("--train-crf", nargs="*", default=[], metavar="ENCODER=LOW:HIGH",
                    help="with --degradation codec: train only on round trips of these encoders and CRF ranges "
                         "(a quality-band specialist; identity pairs are left out); validation keeps every pair")
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
                    help="start from these weights (fine-tuning): a checkpoint, or a shipped .onnx model; a smaller "
                         "network is grown to --channels/--num-blocks computing the same output (a wider variant)")
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
    ap.add_argument("--stop-after", type=float, metavar="SECONDS",
                    help="stop at the first chunk end after SECONDS (the state is saved; continue with --resume): "
                         "a long run in session-sized parts")
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
    if args.quantizer and args.degradation != "codec":
        raise UsageError("--quantizer needs codec pairs (--degradation codec): only they record the quantizer")
    check_fraction(args.unknown_share, "--unknown-share")
    check_fraction(args.still_share, "--still-share")
    check_fraction(args.cut_share, "--cut-share")
    if args.neighbours and (not args.quantizer or args.estimator is not None):
        raise UsageError("--neighbours " + ("needs --quantizer (a temporal network is told each frame's quantizer)"
                                            if not args.quantizer else "cannot take --estimated-quantizer yet: "
                                            "drop one of them"))
    if args.estimator is not None and (not args.quantizer or not args.estimator.is_file()):
        raise UsageError(f"--estimated-quantizer {args.estimator}: " + (
            "needs --quantizer (a two-input network)" if not args.quantizer else
            "no such file; give a quantizer estimator .onnx (model/tiny/learned_filter_codec_v3.qp.onnx)"))
    if args.stop_after is not None and args.stop_after < 0:
        raise UsageError("--stop-after must be >= 0 seconds")
    if args.time_budget is not None and args.time_budget <= 0:
        raise UsageError("--time-budget must be > 0 seconds")


# ------------------------------------------------------------------------------------------ main


@run_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _check_args(args)
    paths = _paths(args)
    resumed, started_from = _load_states(args, paths["ckpt"])  # a bad checkpoint fails before the data
    device, amp = _setup_device(args)
    data = load_training_data(_data_spec(args))
    run = _Run(args, device, amp, data, started_from)
    trainer = run.trainer(resumed)
    paths["out"].mkdir(parents=True, exist_ok=True)
    manifest = run.manifest()

    def save(t: Trainer, row: dict) -> None:
        run.save(t, paths["ckpt"])
        manifest["epochs"] = t.history
        atomic_write_text(paths["manifest"], json.dumps(manifest, indent=2))
        if not args.quiet:
            print(f"step {t.step}/{run.schedule.steps} loss {row['train_l1']:.5f} val_l1 {row['val_l1']:.5f} "
                  f"(input {row['val_l1_degraded_input']:.5f}) {row['seconds']:.1f}s", flush=True)

    started = time.monotonic()
    deadline = None if args.stop_after is None else started + args.stop_after
    trainer.run(on_chunk=save, validate=run.validate, deadline=deadline)
    if trainer.step < run.schedule.steps:
        if not args.quiet:
            print(f"stopped at step {trainer.step}/{run.schedule.steps} (--stop-after); continue with --resume: "
                  f"{paths['ckpt']}", flush=True)
        return 0
    manifest["train_seconds"] = round(time.monotonic() - started, 1)
    manifest["epochs"] = trainer.history
    final = run.averaged(trainer)
    manifest["final"] = {"val_l1": trainer.history[-1]["val_l1"], **evaluate_full(final, data.val, device)}
    if args.degradation == "codec":
        manifest["final"] |= codec_breakdown(final, data.val, data.val_labels, device)
        if args.quantizer:
            manifest["final"]["blind"] = codec_breakdown(final, data.val, data.val_labels, device, blind=True)
    if args.qat_steps:
        manifest["qat"] = run_qat(final, run.bank, data.val, device, paths["out"] / "qat.ckpt",
                                  QATSettings(args.qat_steps, args.qat_lr, args.batch_size, args.seed, args.loss))
    atomic_write_text(paths["manifest"], json.dumps(manifest, indent=2))
    if not args.quiet:
        f = manifest["final"]
        print(f"val L1 {f['val_l1']:.4f}; PSNR-Y on {f['images']} held-out image(s): "
              f"{f['psnr_degraded_db']:.2f} -> {f['psnr_filtered_db']:.2f} dB ({f['psnr_gain_db']:+.3f} dB)")
        print(f"checkpoint: {paths['ckpt']}\nmanifest: {paths['manifest']}", flush=True)
    return 0


def _paths(args: argparse.Namespace) -> dict[str, Path]:
    out_dir: Path = args.output_c3
    paths = {"out": out_dir, "ckpt": out_dir / "last.ckpt",
             "manifest": args.manifest_out or out_dir / "train_konvid.manifest.json"}
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--output-c3 {out_dir} is a file; give a folder")
    if paths["ckpt"].exists() and not (args.resume or args.force):
        raise UsageError(f"{paths['ckpt']} exists; pass --resume to continue it or --force to start over")
    if args.resume and not paths["ckpt"].exists():
        raise UsageError(f"--resume: {paths['ckpt']} does not exist")
    return paths


def _load_states(args: argparse.Namespace, ckpt: Path):
    """(the checkpoint to resume or None, the network to start from or None)."""
    from .checkpoint import load_model, load_weights

    resumed = load_model(ckpt)[1] if args.resume else None
    if resumed is not None and "train_state" not in resumed:
        raise UsageError(f"--resume: {ckpt} holds exported weights only, not a training state to continue")
    started_from = load_weights(args.init)[0] if args.init is not None else None
    if started_from is not None and args.reparam:
        raise UsageError("--init loads a plain network; drop --reparam to fine-tune it")
    if started_from is not None:
        _check_init_sizes(args, started_from)
    return resumed, started_from


def _check_init_sizes(args: argparse.Namespace, init) -> None:
    """--init is grown to the run's network, never cut: refused here, before the data loads."""
    planes = input_planes(args.quantizer, args.neighbours)
    if init.in_channels > planes:
        raise UsageError(f"--init {args.init} takes {init.in_channels} input planes; this run trains a {planes}-input "
                         "network" + ("" if args.quantizer else " (add --quantizer?)"))
    if init.channels > args.channels or init.num_blocks > args.num_blocks:
        raise UsageError(f"--init {args.init} has {init.channels} channels and {init.num_blocks} blocks, more than "
                         f"this run's --channels {args.channels} --num-blocks {args.num_blocks}; give at least the "
                         "init's sizes (it is grown, never cut)")


def _setup_device(args: argparse.Namespace):
    """(device, bf16 autocast?), seeded and configured for determinism where the device allows it."""
    import torch

    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False  # evaluation and QAT in true fp32; training is bf16 autocast
    if args.threads:
        torch.set_num_threads(args.threads)
    amp, note = use_bf16(args.amp, device)
    if not args.quiet:
        print(f"training on {device}: {note}", flush=True)
    return device, amp


def _data_spec(args: argparse.Namespace) -> DataSpec:
    return DataSpec(args.degradation, args.images, args.videos, args.konvid_dir, tuple(args.pairs), args.crop,
                    args.val_packages, args.val_fraction, args.seed, args.quiet, tuple(args.train_crf),
                    quantizer=args.quantizer, estimator=args.estimator, neighbours=args.neighbours,
                    pair_weights=tuple(args.pair_weights or ()))


class _Run:
    """One training run's network, crops, schedule and what it records."""

    def __init__(self, args: argparse.Namespace, device, amp: bool, data: TrainingData, started_from) -> None:
        import torch

        from .model import LearnedFilter
        from .pairs import PairBank, center_crops

        self.args, self.device, self.amp, self.data = args, device, amp, data
        card = args.degradation == "card"
        self.bank = PairBank(data.train, device, args.crop, align=8 if card else 1, augment=not card,
                             weights=data.train_weights,
                             unknown_share=args.unknown_share if args.quantizer else 0.0,
                             still_share=args.still_share if args.neighbours else 0.0,
                             cut_share=args.cut_share if args.neighbours else 0.0)
        val_crop = min(256, args.crop * 2, *(min(p[0].shape) for p in data.val))
        self.val_x, self.val_y = (torch.from_numpy(a).to(device) for a in center_crops(data.val, val_crop, limit=64))
        self.in_channels = self.bank.in_channels
        self.model = LearnedFilter(args.num_blocks, args.channels, reparam=args.reparam,
                                   in_channels=self.in_channels).to(device)
        self.model = self.model.to(memory_format=torch.channels_last)
        if started_from is not None:
            from .model import grow  # the --init network at this run's planes, channels and blocks

            grown = grow(started_from, self.in_channels, args.channels, args.num_blocks)
            self.model.load_state_dict(grown.state_dict())
        images = len(data.train) // (8 if card else 1)
        self.per_epoch = max(1, math.ceil(images * args.crops_per_image / args.batch_size))
        steps = args.steps or args.epochs_c3 * self.per_epoch
        chunk = args.chunk or (1000 if args.steps or args.time_budget else self.per_epoch)
        self.schedule = Schedule(steps, args.batch_size, args.lr, chunk=min(chunk, steps), ema=args.ema or None,
                                 amp=amp, seed=args.seed, loss=args.loss,
                                 warmup=0.03 if args.init is None else 0.0, harm_weight=args.harm_weight)
        self.chunk = chunk
        self.model_id = args.model_id or MODEL_IDS[args.degradation]
        self.loss_fn = torch.nn.L1Loss()

    def trainer(self, resumed: dict | None) -> Trainer:
        """The trainer: a timed run measures its speed first; a resumed one continues its state."""
        args, schedule = self.args, self.schedule
        if args.time_budget is not None and not args.resume:
            from .pairs import steps_for

            rate = Trainer(self.model, self.bank, schedule).measure_rate()
            schedule.steps = steps_for(args.time_budget, rate)
            schedule.chunk = min(self.chunk, schedule.steps)
            if not args.quiet:
                print(f"{rate:.1f} steps/s on {self.device}: {schedule.steps} steps fit {args.time_budget:.0f} s",
                      flush=True)
        if resumed is None:
            return Trainer(self.model, self.bank, schedule)
        state = resumed["train_state"]
        saved = {k: state["arch"].get(k, 1 if k == "in_channels" else None)
                 for k in ("num_blocks", "channels", "reparam", "in_channels")}
        if saved != self.model.arch:
            raise UsageError(f"--resume: {args.output_c3 / 'last.ckpt'} is a {saved} model, not this run's "
                             f"{self.model.arch}")
        if args.time_budget is not None:  # a timed run resumes to the step count it measured
            schedule.steps = int(state["steps_total"])
        schedule.warmup = float(state.get("warmup", schedule.warmup))  # the LR curve the run started with
        trainer = Trainer(self.model, self.bank, schedule)
        trainer.load_state(state)
        return trainer

    def averaged(self, trainer: Trainer):
        """The EMA weights as a plain (folded) network in eval mode."""
        from .model import LearnedFilter, fold

        avg = LearnedFilter(self.args.num_blocks, self.args.channels, reparam=self.args.reparam,
                            in_channels=self.in_channels).to(self.device)
        avg.load_state_dict(trainer.averaged_state())
        return fold(avg).eval()

    def validate(self, trainer: Trainer) -> dict:
        import torch

        epoch = trainer.step / self.per_epoch
        with torch.inference_mode():
            return {"epoch": int(epoch) if epoch.is_integer() else round(epoch, 3),
                    "val_l1": float(self.loss_fn(self.averaged(trainer)(self.val_x), self.val_y)),
                    "val_l1_degraded_input": float(self.loss_fn(self.val_x[:, :1], self.val_y))}

    def save(self, trainer: Trainer, path: Path) -> None:
        from .checkpoint import save_checkpoint

        args = self.args
        plain = self.averaged(trainer)
        save_checkpoint(path, {
            "model": {k: v.cpu() for k, v in plain.state_dict().items()},
            "arch": {"num_blocks": args.num_blocks, "channels": args.channels, "in_channels": self.in_channels},
            "seed": args.seed,
            "model_id": self.model_id, "epoch": trainer.step, "history": trainer.history,
            "train_state": {**trainer.state(), "arch": self.model.arch, "steps_total": self.schedule.steps,
                            "warmup": self.schedule.warmup}})

    def manifest(self) -> dict:
        """The provenance sidecar: data, settings, versions."""
        from .model import count_params, fold

        args, schedule = self.args, self.schedule
        manifest = {
            "tool": "training.train_konvid", "model_id": self.model_id,
            "args": {k: (str(v) if isinstance(v, Path) else [str(p) for p in v] if k == "pairs" else v)
                     for k, v in vars(args).items()},
            "architecture": {"num_blocks": args.num_blocks, "channels": args.channels,
                             "params": count_params(fold(self.model)),
                             "receptive_radius": self.model.receptive_radius, "reparam_training": args.reparam},
            "degradation": self.data.record["degradation"], "data": self.data.record,
            "schedule": {"steps": schedule.steps, "batch": schedule.batch, "crop": args.crop, "lr": schedule.lr,
                         "ema": schedule.ema, "amp_bf16": self.amp, "chunk": schedule.chunk, "loss": schedule.loss,
                         "harm_weight": schedule.harm_weight},
            "determinism": "deterministic given the seed (CPU, torch.use_deterministic_algorithms)"
            if self.device.type == "cpu" else "not bit-reproducible: cuDNN convolution backward and bf16 autocast",
            "versions": _versions(self.device), "git_commit": _git_commit(),
        }
        if args.init is not None:
            from .cli import sha256_file

            manifest["init"] = {"checkpoint": str(args.init), "sha256": sha256_file(args.init)}
        return manifest


if __name__ == "__main__":
    sys.exit(main())
