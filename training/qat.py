"""Fake quantisation placed exactly where ``training.ptq_static`` puts Q/DQ pairs (for QAT).

The QDQ graph quantises the input, every Conv+ReLU output, every conv2 output and every block's Add
(uint8 per-tensor activations) and every conv weight (int8, symmetric, per output channel); the
output conv and the global skip stay in float. :class:`QATFilter` runs a plain
:class:`~training.model.LearnedFilter` that way, with straight-through gradients, so fine-tuning the
fp32 weights under it adapts them to the INT8 graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .model import LearnedFilter

__all__ = ["ActivationFakeQuant", "QATFilter", "weight_fake_quant", "QATSettings", "run_qat"]


class ActivationFakeQuant(nn.Module):
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


def weight_fake_quant(w: torch.Tensor) -> torch.Tensor:
    """int8 symmetric per-output-channel fake quantisation of a conv weight."""
    scale = (w.detach().abs().amax(dim=(1, 2, 3)) / 127.0).clamp(min=1e-8)
    zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -128, 127)


class QATFilter(nn.Module):
    """A plain LearnedFilter's forward with fake quantisation where the QDQ graph quantises."""

    def __init__(self, model: LearnedFilter) -> None:
        super().__init__()
        if model.reparam:
            raise ValueError("fold() the re-parameterised network before QAT")
        self.model = model
        self.fq = nn.ModuleList(ActivationFakeQuant() for _ in range(2 + 3 * model.num_blocks))

    @staticmethod
    def conv(layer: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, weight_fake_quant(layer.weight), layer.bias, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, fq = self.model, iter(self.fq)
        h = next(fq)(x)
        h = next(fq)(torch.relu(self.conv(m.head[0], h)))
        for block in m.body:
            a = next(fq)(torch.relu(self.conv(block.conv1, h)))
            b = next(fq)(self.conv(block.conv2, a))
            h = next(fq)(h + b)
        return (m.skip(x) if m.in_channels > 1 else x) + m.tail(h)  # the skip (a frozen 1x1 Conv) stays float

    def freeze_observers(self) -> None:
        for module in self.fq:
            module.observe = False


@dataclass(frozen=True)
class QATSettings:
    """Quantisation-aware fine-tuning: ``steps`` at ``lr`` in batches of ``batch`` crops."""

    steps: int
    lr: float = 1e-4
    batch: int = 16
    seed: int = 42
    loss: str = "l1"


def run_qat(model, bank, val: list, device, path: Path, settings: QATSettings) -> dict:
    """Quantisation-aware fine-tuning of a copy of ``model`` (fp32 on the device); writes the checkpoint
    ``path`` (for ``ptq_static --qat-ckpt``) and returns what the manifest records."""
    import copy

    from .checkpoint import save_checkpoint
    from .loop import Schedule, Trainer, evaluate_full

    student = copy.deepcopy(model).train()
    qat = QATFilter(student).to(device)
    freeze_at = max(1, settings.steps // 10)
    schedule = Schedule(settings.steps, settings.batch, settings.lr, chunk=freeze_at, ema=None, amp=False,
                        seed=settings.seed + 1000, loss=settings.loss)
    trainer = Trainer(student, bank, schedule, forward=qat)

    def freeze(t: Trainer, row: dict) -> None:
        if t.step >= freeze_at:
            qat.freeze_observers()

    trainer.run(on_chunk=freeze)
    student.eval()
    save_checkpoint(path, {"model": {k: v.cpu() for k, v in student.state_dict().items()},
                           "arch": {"num_blocks": student.num_blocks, "channels": student.channels,
                                    "in_channels": student.in_channels},
                           "seed": settings.seed, "qat_steps": settings.steps, "history": trainer.history})
    return {"steps": settings.steps, "lr": settings.lr, "freeze_observers_at": freeze_at,
            "final_fp32_weights": {k: v for k, v in evaluate_full(student, val, device).items() if k != "per_image"}}
