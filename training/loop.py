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

__all__ = ["Schedule", "Trainer", "psnr", "evaluate_full", "pick_device", "warmup_cosine"]


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


def pick_device(name: str):
    """``auto`` = CUDA when torch sees a GPU, else the CPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from .cli import UsageError

        raise UsageError("--device cuda: torch sees no CUDA GPU here; use --device cpu")
    return torch.device(name)


def evaluate_full(model, pairs, device=None) -> dict:
    """PSNR-Y of degraded and filtered (rounded to 8 bits, as vmaf_pre outputs) vs clean, whole images.

    Per-image values are returned too (``per_image``: degraded and filtered dB), in ``pairs`` order.
    """
    import torch

    device = device or next(model.parameters()).device
    before, after = [], []
    with torch.inference_mode():
        for clean, degraded in pairs:
            x = torch.from_numpy(degraded.astype(np.float32) / 255.0)[None, None].to(device)
            y = model(x)[0, 0].float().cpu().numpy()
            out = np.clip(np.rint(y * 255.0), 0, 255)
            before.append(psnr(degraded, clean))
            after.append(psnr(out, clean))
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
        self.loss_fn = torch.nn.MSELoss() if s.loss == "l2" else torch.nn.L1Loss()
        self.forward = self.forward or self.model

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
            loss = self.loss_fn(out.float(), y)
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
                loss = self.loss_fn(self.forward(x).float(), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.opt.zero_grad(set_to_none=True)
        return steps / (time.monotonic() - t0)
