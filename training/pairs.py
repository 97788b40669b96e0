"""Training pairs held on the training device and cropped there: fresh random crops every step.

All (clean, degraded) images are packed into two flat tensors on the device (CUDA or CPU): uint8 when
every pair is 8-bit, int16 when some are 10-bit (each image keeps its own peak code, 255 or 1023, so a
crop is normalised exactly as ``vmaf_pre`` feeds the model); a batch of crops is one gather, so the
data pipeline never waits on Python or on host-to-device copies.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PairBank", "center_crops", "peak_of"]


def peak_of(image: np.ndarray) -> int:
    """The peak code of a stored frame: 255 for uint8, 1023 for uint16 (10-bit codes)."""
    return 255 if image.dtype == np.uint8 else 1023


class PairBank:
    """(clean, degraded) uint8 image pairs of any sizes, cropped on ``device``.

    Args:
        pairs: (clean, degraded) H x W arrays, equal shapes per pair: uint8, or uint16 10-bit codes.
        device: the torch device the crops are made on.
        crop: crop side; pairs smaller than it are left out.
        align: crop corners on multiples of this (8 keeps a whole-image JPEG grid where it was).
        augment: apply a random flip/rotation to each crop (for degradations that were not applied
            per flip/rotation already).
    """

    def __init__(self, pairs, device, crop: int, align: int = 1, augment: bool = False) -> None:
        import torch

        kept = [(c, d) for c, d in pairs if min(c.shape) >= crop]
        if not kept:
            raise ValueError(f"no training image is at least {crop} px on both sides")
        self.crop, self.align, self.augment, self.device = crop, align, augment, device
        self.count = len(kept)
        shapes = np.array([c.shape for c, _ in kept], np.int64)
        sizes = shapes[:, 0] * shapes[:, 1]
        wide = any(c.dtype != np.uint8 for c, _ in kept)
        store = np.int16 if wide else np.uint8
        self.clean = torch.from_numpy(np.concatenate([c.ravel().astype(store) for c, _ in kept])).to(device)
        self.degraded = torch.from_numpy(np.concatenate([d.ravel().astype(store) for _, d in kept])).to(device)
        self.peak = torch.tensor([float(peak_of(c)) for c, _ in kept], dtype=torch.float32, device=device)
        self.offset = torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)[:-1]])).to(device)
        self.height = torch.from_numpy(shapes[:, 0]).to(device)
        self.width = torch.from_numpy(shapes[:, 1]).to(device)
        # Every crop position equally likely: an image is drawn in proportion to its positions.
        positions = (shapes[:, 0] - crop + 1) * (shapes[:, 1] - crop + 1)
        self.weight = torch.from_numpy(positions.astype(np.float64)).to(device)
        self._ramp = torch.arange(crop, device=device)

    def sample(self, batch: int, generator) -> tuple:
        """(degraded, clean) float32 ``[batch, 1, crop, crop]`` in [0, 1] on the device."""
        import torch

        crop, dev = self.crop, self.device
        image = torch.multinomial(self.weight, batch, replacement=True, generator=generator)
        h, w = self.height[image], self.width[image]
        u = torch.rand((2, batch), device=dev, generator=generator, dtype=torch.float64)
        y0 = torch.floor(u[0] * ((h - crop) // self.align + 1)).long() * self.align
        x0 = torch.floor(u[1] * ((w - crop) // self.align + 1)).long() * self.align
        rows = (y0[:, None] + self._ramp[None, :]) * w[:, None] + self.offset[image][:, None]
        index = rows[:, :, None] + (x0[:, None] + self._ramp[None, :])[:, None, :]
        peak = self.peak[image].view(-1, 1, 1, 1)
        x = self.degraded[index].unsqueeze(1).float().div_(peak)
        y = self.clean[index].unsqueeze(1).float().div_(peak)
        if self.augment:
            x, y = _dihedral_batch(x, y, torch.randint(0, 8, (1,), device=dev, generator=generator))
        return x, y


def _dihedral_batch(x, y, k):
    """The same random flip/rotation of each half of the batch pair (two transforms per batch)."""
    import torch

    half = x.shape[0] // 2
    k = int(k.item())
    out = []
    for part, kk in ((slice(0, half), k), (slice(half, None), (k + 3) % 8)):
        a, b = x[part], y[part]
        a, b = torch.rot90(a, kk % 4, (2, 3)), torch.rot90(b, kk % 4, (2, 3))
        if kk >= 4:
            a, b = a.flip(3), b.flip(3)
        out.append((a, b))
    return torch.cat([out[0][0], out[1][0]]), torch.cat([out[0][1], out[1][1]])


def center_crops(pairs, crop: int, limit: int | None = None):
    """Fixed validation batch: the centre ``crop`` x ``crop`` of each pair (degraded, clean), float32 [0, 1]."""
    xs, ys = [], []
    for clean, degraded in pairs[:limit]:
        if min(clean.shape) < crop:
            continue
        y, x = (clean.shape[0] - crop) // 2, (clean.shape[1] - crop) // 2
        peak = np.float32(peak_of(clean))
        xs.append(degraded[y:y + crop, x:x + crop].astype(np.float32) / peak)
        ys.append(clean[y:y + crop, x:x + crop].astype(np.float32) / peak)
    if not xs:
        raise ValueError(f"no validation image is at least {crop} px on both sides")
    return np.stack(xs)[:, None], np.stack(ys)[:, None]


def steps_for(seconds: float, rate: float) -> int:
    """Optimiser steps that fit ``seconds`` at ``rate`` steps per second (rounded down to 100s)."""
    return max(100, int(math.floor(seconds * rate / 100.0)) * 100)
