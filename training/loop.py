"""The optimisation loop every training step shares: L1 on fresh random crops, warm-up + cosine
learning rate, a weight EMA, optional bf16 autocast, and metrics on whole images.

Crops come from a :class:`~training.pairs.PairBank` on the training device. The crop generator is
re-seeded from ``(seed, chunk)`` at each chunk of ``chunk`` steps and checkpoints are written at
chunk ends, so a resumed run draws exactly the crops an uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["cpu_bf16_feature", "use_bf16", "Schedule", "Trainer", "psnr", "evaluate_full", "pick_device",
           "warmup_cosine", "harm_aware_loss", "harm_weighted_l1", "LOSSES"]

#: The training losses: ``l1``, ``l2`` (MSE), ``l1-harm`` (:func:`harm_weighted_l1`) and ``psnr-harm``
#: (:func:`harm_aware_loss`).
LOSSES = ("l1", "l2", "l1-harm", "psnr-harm")
#: Rounding noise of one 8-bit code (variance of a uniform quantisation error): the floor of the per-crop MSE.
ROUNDING_MSE = 1.0 / (12 * 255.0**2)


def harm_weighted_l1(out, target, degraded, harm_weight: float):
    """L1 per crop, with the crops the network currently makes worse than its input (a larger L1 than
    the degraded crop's; any change of an identity crop) weighted ``1 + harm_weight``: doing no harm is
    learned rather than averaged away, and restoration keeps L1's steady gradient."""
    import torch

    dims = tuple(range(1, out.dim()))
    l1_out = (out - target).abs().mean(dim=dims)
    with torch.no_grad():
        l1_in = (degraded - target).abs().mean(dim=dims)
        weight = 1.0 + harm_weight * (l1_out > l1_in).float()
    return (weight * l1_out).sum() / weight.sum()


def harm_aware_loss(out, target, degraded, harm_weight: float):
    """Per-crop log-MSE ratio (filtered vs degraded: the crop's PSNR change, in nepers), averaged, plus
    ``harm_weight`` times its positive part: crops the network makes worse cost ``1 + harm_weight``
    times more than crops it improves earn, so doing no harm is learned and not averaged away. An
    identity crop (degraded == target) has only rounding noise as its floor, so any change is harm.
    """
    import torch

    dims = tuple(range(1, out.dim()))
    mse_out = (out - target).pow(2).mean(dim=dims)
    mse_in = (degraded - target).pow(2).mean(dim=dims)
    ratio = torch.log(mse_out + ROUNDING_MSE) - torch.log(mse_in + ROUNDING_MSE)
    return ratio.mean() + harm_weight * torch.relu(ratio).mean()


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two images on the same scale."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(peak * peak / mse)


def warmup_cosine(total_steps: int, warmup_fraction: float = 0.03, floor: float = 0.01) -> Callable[[int], float]:
    """LR factor: linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to ``floor``."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def cpu_bf16_feature() -> str | None:
    """The CPU's native bf16 instructions (``AMX-BF16`` or ``AVX512-BF16``), or None (Linux cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return None
    return "AMX-BF16" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else None


def use_bf16(amp: str, device) -> tuple[bool, str]:
    """(bf16 autocast?, why) for ``--amp auto|bf16|none`` on ``device``: auto = CUDA or a CPU with native bf16."""
    if amp == "none":
        return False, "fp32 (--amp none)"
    if amp == "bf16":
        return True, "bf16 autocast (--amp bf16)"
    if device.type == "cuda":
        return True, "bf16 autocast (CUDA)"
    feature = cpu_bf16_feature()
    return (True, f"bf16 autocast + channels_last ({feature})") if feature else \
        (False, "fp32 channels_last (this CPU has no AVX512-BF16 or AMX)")


def pick_device(name: str):
    """``auto`` = CUDA when torch sees a GPU, else the CPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from .cli import UsageError

        raise UsageError("--device cuda: torch sees no CUDA GPU here; use --device cpu")
    return torch.device(name)


def evaluate_full(model, pairs, device=None, blind: bool = False) -> dict:
    """PSNR-Y of degraded and filtered (rounded to the pair's bit depth, as vmaf_pre outputs) vs clean,
    whole images (8-bit pairs on the 255 scale, 10-bit pairs on the 1023 scale). Quantizer triples
    feed their quantizer plane (all unknown when ``blind``).

    Per-image values are returned too (``per_image``: degraded and filtered dB), in ``pairs`` order.
    """
    import torch

    from .pairs import model_input, peak_of

    device = device or next(model.parameters()).device
    before, after = [], []
    with torch.inference_mode():
        for pair in pairs:
            clean, degraded = pair[0], pair[1]
            peak = peak_of(clean)
            x = torch.from_numpy(model_input(pair, blind)).to(device)
            y = model(x)[0, 0].float().cpu().numpy()
            out = np.clip(np.rint(y * peak), 0, peak)
            before.append(psnr(degraded, clean, peak))
            after.append(psnr(out, clean, peak))
    gains = np.subtract(after, before)
    return {"psnr_degraded_db": float(np.mean(before)), "psnr_filtered_db": float(np.mean(after)),
            "psnr_gain_db": float(np.mean(gains)), "psnr_gain_min_db": float(np.min(gains)), "images": len(pairs),
            "per_image": [[round(b, 4), round(a, 4)] for b, a in zip(before, after)]}


@dataclass
class Schedule:
    """How long and how fast: ``steps`` of ``batch`` crops at peak ``lr``, chunked for checkpoints."""

    steps: int
    batch: int
    lr: float
    chunk: int = 1000
    ema: float | None = 0.999
    amp: bool = False
    weight_decay: float = 0.0
    seed: int = 42
    loss: str = "l1"
    warmup: float = 0.03
    harm_weight: float = 2.0


@dataclass
class Trainer:
    """Runs a :class:`Schedule` on ``model`` (any module; ``forward`` may wrap it, e.g. fake quantisation)."""

    model: object
    bank: object
    schedule: Schedule
    forward: Callable | None = None
    history: list[dict] = field(default_factory=list)
    step: int = 0

    def __post_init__(self) -> None:
        import torch

        s = self.schedule
        self.device = self.bank.device
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay) if s.weight_decay \
            else torch.optim.Adam(params, lr=s.lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, warmup_cosine(s.steps, s.warmup))
        self.ema = None
        if s.ema:
            self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.generator = torch.Generator(device=self.device)
        if s.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {s.loss!r}")
        self.loss_fn = torch.nn.MSELoss() if s.loss == "l2" else torch.nn.L1Loss()
        self.forward = self.forward or self.model

    def loss(self, out, target, degraded):
        """The schedule's loss of ``out`` for ``target`` (``degraded`` is the input, for ``psnr-harm``)."""
        if self.schedule.loss == "psnr-harm":
            return harm_aware_loss(out.float(), target, degraded, self.schedule.harm_weight)
        if self.schedule.loss == "l1-harm":
            return harm_weighted_l1(out.float(), target, degraded, self.schedule.harm_weight)
        return self.loss_fn(out.float(), target)

    # ------------------------------------------------------------------------------ state

    def state(self) -> dict:
        """Everything :meth:`load_state` needs to continue exactly."""
        return {"model": self.model.state_dict(), "ema": self.ema, "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "step": self.step, "history": self.history}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema = {k: v.to(self.device) for k, v in state["ema"].items()}
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.step, self.history = int(state["step"]), list(state["history"])

    def averaged_state(self) -> dict:
        """The EMA weights (or the live ones without an EMA)."""
        return {k: v.clone() for k, v in (self.ema or self.model.state_dict()).items()}

    # ------------------------------------------------------------------------------ running

    def _update_ema(self) -> None:
        import torch

        if self.ema is None:
            return
        decay = min(self.schedule.ema, (1 + self.step) / (10 + self.step))
        live = self.model.state_dict()
        keys = [k for k, v in live.items() if v.dtype.is_floating_point]
        with torch.no_grad():
            torch._foreach_lerp_([self.ema[k] for k in keys], [live[k] for k in keys], 1 - decay)

    def run_chunk(self) -> float:
        """Steps up to the end of the current chunk; returns their mean training L1."""
        import torch

        s = self.schedule
        chunk_index = self.step // s.chunk
        self.generator.manual_seed(int(np.random.SeedSequence([s.seed, chunk_index]).generate_state(1)[0]))
        end = min(s.steps, (chunk_index + 1) * s.chunk)
        total = torch.zeros((), device=self.device)
        count = 0
        self.model.train()
        while self.step < end:
            x, y = self.bank.sample(s.batch, self.generator)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=s.amp):
                out = self.forward(x)
            loss = self.loss(out, y, x)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            self.step += 1
            self._update_ema()
            total += loss.detach()
            count += 1
        return float(total / max(1, count))

    def run(self, on_chunk: Callable[[Trainer, dict], None] | None = None, validate: Callable | None = None,
            deadline: float | None = None) -> None:
        """Chunks until ``schedule.steps`` (or ``deadline``, a ``time.monotonic()`` value)."""
        while self.step < self.schedule.steps:
            t0 = time.monotonic()
            train_l1 = self.run_chunk()
            row = {"step": self.step, "train_l1": train_l1, "lr": self.opt.param_groups[0]["lr"],
                   "seconds": round(time.monotonic() - t0, 2)}
            if validate is not None:
                row |= validate(self)
            self.history.append(row)
            if on_chunk is not None:
                on_chunk(self, row)
            if deadline is not None and time.monotonic() > deadline:
                break

    def measure_rate(self, steps: int = 50) -> float:
        """Optimiser steps per second on this device (the steps are real: they count)."""
        import torch

        s = self.schedule
        self.model.train()
        for i in range(steps + 5):
            if i == 5:
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.monotonic()
            x, y = self.bank.sample(s.batch, self.generator)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=s.amp):
                loss = self.loss(self.forward(x), y, x)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.opt.zero_grad(set_to_none=True)
        return steps / (time.monotonic() - t0)
