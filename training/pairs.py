"""Training pairs held on the training device and cropped there: fresh random crops every step.

All (clean, degraded) images are packed into two flat tensors on the device (CUDA or CPU): uint8 when
every pair is 8-bit, int16 when some are 10-bit (each image keeps its own peak code, 255 or 1023, so a
crop is normalised exactly as ``vmaf_pre`` feeds the model); a batch of crops is one gather, so the
data pipeline never waits on Python or on host-to-device copies.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PairBank", "UNKNOWN_SHARE", "input_planes", "center_crops", "peak_of", "model_input", "told_nothing"]

#: A stored quantizer plane code: H.264-equivalent QP x 4 (0..252); this code means "unknown".
_QP_UNKNOWN_CODE = 255
#: The share of crops a quantizer-conditioned network sees with the plane "unknown" (train_konvid's and
#: qat_finetune's default): enough to be blind-safe, few enough to learn to use the quantizer.
UNKNOWN_SHARE = 0.3


def peak_of(image: np.ndarray) -> int:
    """The peak code of a stored frame: 255 for uint8, 1023 for uint16 (10-bit codes)."""
    return 255 if image.dtype == np.uint8 else 1023


def input_planes(quantizer: bool, neighbours: bool = False) -> int:
    """The input planes of a network trained on pairs with (``quantizer``) or without their quantizer map,
    and with their ``neighbours``: the luma, its quantizer plane, and the previous and next frame's luma
    and quantizer plane (``vsfilter.models.INPUT_LAYOUTS``)."""
    return 6 if neighbours else 2 if quantizer else 1


class PairBank:
    """(clean, degraded) uint8 image pairs of any sizes, cropped on ``device``.

    Args:
        pairs: (clean, degraded) H x W arrays, equal shapes per pair: uint8, or uint16 10-bit codes;
            or ``(clean, degraded, qp)`` quantizer triples; or temporal septuples ``(clean, degraded, qp,
            previous, qp_previous, next, qp_next)`` (``load_pairs(neighbours=True)``): the input planes
            follow the clean frame in the network's channel order, a decoded luma then its quantizer map.
        device: the torch device the crops are made on.
        crop: crop side; pairs smaller than it are left out.
        align: crop corners on multiples of this (8 keeps a whole-image JPEG grid where it was).
        augment: apply a random flip/rotation to each crop (for degradations that were not applied
            per flip/rotation already).
        unknown_share: with quantizer maps (``qp`` the H.264-equivalent QP per 16x16 block, NaN =
            unknown), the share of crops whose quantizer planes are all replaced by
            ``vsfilter.quantizer.UNKNOWN`` at every draw: one network learns to use the quantizer where
            it is told and to stay blind-safe where it is not.
        still_share: temporal pairs: the share of crops whose neighbours are the frame itself (a clip's
            first and last frame, as ``vmaf_pre`` feeds them), drawn anew every time.
        cut_share: temporal pairs: the share of crops whose neighbours come from another crop of the batch
            (a scene cut: the network must not copy an unrelated picture).
        weights: per pair, a factor on how often its crops are drawn (None: every crop position equally
            likely).
    """

    def __init__(self, pairs, device, crop: int, align: int = 1, augment: bool = False,
                 unknown_share: float = 0.0, still_share: float = 0.0, cut_share: float = 0.0,
                 weights: list[float] | None = None) -> None:
        import torch

        big = [min(p[0].shape) >= crop for p in pairs]
        kept = [p for p, ok in zip(pairs, big) if ok]
        factor = np.array([w for w, ok in zip(weights, big) if ok] if weights is not None else [1.0] * len(kept))
        if not kept:
            raise ValueError(f"no training image is at least {crop} px on both sides")
        self.crop, self.align, self.augment, self.device = crop, align, augment, device
        self.unknown_share, self.still_share, self.cut_share = unknown_share, still_share, cut_share
        self.count = len(kept)
        shapes = np.array([p[0].shape for p in kept], np.int64)
        sizes = shapes[:, 0] * shapes[:, 1]
        wide = any(p[0].dtype != np.uint8 for p in kept)
        store = np.int16 if wide else np.uint8
        self.clean = torch.from_numpy(np.concatenate([p[0].ravel().astype(store) for p in kept])).to(device)
        self.in_channels = len(kept[0]) - 1
        # The input planes in channel order: a decoded luma (stored codes) or a quantizer map (QP codes).
        self.inputs = []
        for c in range(self.in_channels):
            if _is_quantizer(c):
                flat = np.concatenate([_qp_codes(p[1 + c], p[0].shape).ravel() for p in kept])
            else:
                flat = np.concatenate([p[1 + c].ravel().astype(store) for p in kept])
            self.inputs.append(torch.from_numpy(flat).to(device))
        self.peak = torch.tensor([float(peak_of(p[0])) for p in kept], dtype=torch.float32, device=device)
        self.offset = torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)[:-1]])).to(device)
        self.height = torch.from_numpy(shapes[:, 0]).to(device)
        self.width = torch.from_numpy(shapes[:, 1]).to(device)
        # Every crop position equally likely: an image is drawn in proportion to its positions.
        positions = (shapes[:, 0] - crop + 1) * (shapes[:, 1] - crop + 1)
        self.weight = torch.from_numpy(positions.astype(np.float64) * factor).to(device)
        self._ramp = torch.arange(crop, device=device)

    def sample(self, batch: int, generator) -> tuple:
        """(degraded, clean) float32 ``[batch, 1, crop, crop]`` in [0, 1] on the device; with quantizer
        planes (and neighbours) the degraded crops are ``[batch, C, crop, crop]`` in the pairs' plane order."""
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
        crops = [flat[index].unsqueeze(1) for flat in self.inputs]
        planes = [_qp_plane(a) if _is_quantizer(c) else a.float().div_(peak) for c, a in enumerate(crops)]
        y = self.clean[index].unsqueeze(1).float().div_(peak)
        if self.in_channels > 1:
            blind = torch.rand((batch, 1, 1, 1), device=dev, generator=generator) < self.unknown_share
            for c in range(1, self.in_channels, 2):
                planes[c] = torch.where(blind, torch.full_like(planes[c], _unknown()), planes[c])
        if self.in_channels > 2:
            planes = _neighbours_drawn(planes, batch, self.still_share, self.cut_share, generator)
        x = torch.cat(planes, 1)
        if self.augment:
            x, y = _dihedral_batch(x, y, torch.randint(0, 8, (1,), device=dev, generator=generator))
        return x, y


def _is_quantizer(channel: int) -> bool:
    """Input channel ``channel`` is a quantizer plane (the channels alternate: luma, quantizer, ...)."""
    return channel % 2 == 1


def _neighbours_drawn(planes: list, batch: int, still_share: float, cut_share: float, generator) -> list:
    """Temporal crops: ``still_share`` of them with the frame itself as both neighbours, ``cut_share``
    with the neighbours of another crop of the batch (a scene cut)."""
    import torch

    dev = planes[0].device
    draw = torch.rand((2, batch, 1, 1, 1), device=dev, generator=generator)
    still, cut = draw[0] < still_share, draw[1] < cut_share
    other = torch.roll(torch.arange(batch, device=dev), 1)
    out = planes[:2]
    for c in range(2, len(planes)):
        own = planes[c % 2]  # the frame's own luma or quantizer plane
        out.append(torch.where(still, own, torch.where(cut, planes[c][other], planes[c])))
    return out


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


def _unknown() -> float:
    from vsfilter.quantizer import UNKNOWN

    return UNKNOWN


def _qp_codes(qp_blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A per-pixel uint8 code plane of a 16 px block map: round(QP x 4), 255 where unknown."""
    qp = np.repeat(np.repeat(np.asarray(qp_blocks, np.float32), 16, 0), 16, 1)[: shape[0], : shape[1]]
    return np.where(np.isnan(qp), _QP_UNKNOWN_CODE, np.clip(np.rint(qp * 4), 0, 252)).astype(np.uint8)


def _qp_plane(codes):
    """The model's quantizer plane (``vsfilter.quantizer``: QP / 51, UNKNOWN) of uint8 codes (a tensor)."""
    import torch

    from vsfilter.quantizer import PLANE_SCALE

    return torch.where(codes == _QP_UNKNOWN_CODE, torch.full(codes.shape, _unknown(), device=codes.device),
                       codes.float() / (4 * PLANE_SCALE))


def model_input(pair, blind: bool = False) -> np.ndarray:
    """The model's input ``[1, C, H, W]`` float32 for a stored pair's degraded frame: the luma / peak, for
    a triple the quantizer plane, for a temporal pair the neighbours' lumas and planes too (quantizer
    planes all :data:`~vsfilter.quantizer.UNKNOWN` when ``blind``)."""
    from vsfilter.quantizer import block_plane

    clean = pair[0]
    peak = np.float32(peak_of(clean))
    items = (told_nothing(pair) if blind else pair)[1:]
    planes = [block_plane(item, *clean.shape) if _is_quantizer(c) else item.astype(np.float32) / peak
              for c, item in enumerate(items)]
    return np.stack(planes)[None]


def told_nothing(pair: tuple) -> tuple:
    """``pair`` with every quantizer map "unknown" (NaN), its frames as they are: what a network with
    quantizer planes is fed where nothing tells the quantizer."""
    return (pair[0], *(np.full_like(item, np.nan) if _is_quantizer(c) else item for c, item in enumerate(pair[1:])))


def center_crops(pairs, crop: int, limit: int | None = None):
    """Fixed validation batch: the centre ``crop`` x ``crop`` of each pair (degraded, clean), float32 [0, 1]."""
    xs, ys = [], []
    for pair in pairs[:limit]:
        clean = pair[0]
        if min(clean.shape) < crop:
            continue
        y, x = (clean.shape[0] - crop) // 2, (clean.shape[1] - crop) // 2
        peak = np.float32(peak_of(clean))
        xs.append(model_input(pair)[0, :, y:y + crop, x:x + crop])
        ys.append(clean[y:y + crop, x:x + crop].astype(np.float32) / peak)
    if not xs:
        raise ValueError(f"no validation image is at least {crop} px on both sides")
    return np.stack(xs), np.stack(ys)[:, None]


def steps_for(seconds: float, rate: float) -> int:
    """Optimiser steps that fit ``seconds`` at ``rate`` steps per second (rounded down to 100s)."""
    return max(100, int(math.floor(seconds * rate / 100.0)) * 100)
