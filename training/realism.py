"""What makes a clean clip look like camera or film video: sensor noise, film grain, low-key exposure,
limited range and 10-bit samples. Applied to the *source* of a round trip, so the target keeps them:
encoders remove noise, and noise that survives a good encode is content, not an artefact.

Every function takes and returns float32 luma on the 8-bit code scale (0..255, fractional values
allowed) so 10-bit sources keep their sub-8-bit detail until :func:`quantize`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Look", "draw_look", "apply_look", "quantize", "PEAKS"]

#: The peak code of each stored bit depth (vmaf_pre feeds samples / peak).
PEAKS = {8: 255, 10: 1023}


@dataclass(frozen=True)
class Look:
    """How one source clip is made to look real (all drawn per clip, see :func:`draw_look`).

    Attributes:
        noise: ``none``, ``sensor`` (signal-dependent Gaussian, new every frame) or ``grain`` (spatially
            correlated film grain, new every frame).
        noise_sigma: noise standard deviation at mid grey, in 8-bit codes.
        grain_size: film grain's Gaussian correlation radius in pixels (``grain`` only).
        exposure: ``normal``, ``dark`` (scaled down: a night or indoor scene) or ``low-key`` (a gamma
            that sinks the shadows, highlights kept).
        exposure_gain: the factor (``dark``) or gamma (``low-key``).
        range: ``full`` (0-255) or ``limited`` (16-235).
        bits: 8 or 10: the stored and encoded bit depth.
    """

    noise: str = "none"
    noise_sigma: float = 0.0
    grain_size: float = 0.0
    exposure: str = "normal"
    exposure_gain: float = 1.0
    range: str = "full"
    bits: int = 8

    def record(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def draw_look(rng: np.random.Generator, noise: float, dark: float, ten_bit: float, limited: float = 0.5) -> Look:
    """A random :class:`Look`: noise on a ``noise`` fraction of clips (half sensor, half grain), a dark
    or low-key exposure on ``dark``, 10 bits on ``ten_bit``, limited range on ``limited``."""
    kind, sigma, size = "none", 0.0, 0.0
    if rng.random() < noise:
        kind = str(rng.choice(["sensor", "grain"]))
        sigma = float(rng.uniform(0.8, 4.0))
        size = float(rng.uniform(0.5, 1.3)) if kind == "grain" else 0.0
    exposure, gain = "normal", 1.0
    if rng.random() < dark:
        exposure = str(rng.choice(["dark", "low-key"]))
        gain = float(rng.uniform(0.15, 0.5)) if exposure == "dark" else float(rng.uniform(1.6, 2.6))
    return Look(kind, sigma, size, exposure, gain, "limited" if rng.random() < limited else "full",
                10 if rng.random() < ten_bit else 8)


def _blur(field: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of each frame (N x H x W), reflect borders."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = field
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        out = sum(taps[i] * np.take(padded, range(i, i + out.shape[axis]), axis=axis) for i in range(len(taps)))
    return out.astype(np.float32)


def apply_look(clip: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """``clip`` (N x H x W, 8-bit codes, full range) as ``look`` says: float32 codes on the 8-bit scale."""
    x = clip.astype(np.float32) / 255.0
    if look.exposure == "dark":
        x = x * look.exposure_gain
    elif look.exposure == "low-key":
        x = np.power(x, look.exposure_gain)
    x = x * 255.0
    if look.noise != "none":
        white = rng.standard_normal(x.shape).astype(np.float32)
        if look.noise == "grain":
            white = _blur(white, look.grain_size)
            white /= max(1e-6, float(white.std()))
        # Photon + read noise: variance grows with the signal; sigma is the level at mid grey.
        level = np.sqrt(0.35 + 0.65 * np.clip(x, 0, 255) / 128.0)
        x = x + look.noise_sigma * level * white
    x = np.clip(x, 0, 255)
    if look.range == "limited":
        x = 16 + x * (219 / 255)
    return x


def quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """Float codes on the 8-bit scale -> uint8 (8 bits) or uint16 holding 10-bit codes."""
    if bits == 8:
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if bits == 10:
        return np.clip(np.rint(x * 4.0), 0, 1023).astype(np.uint16)
    raise ValueError(f"bits must be 8 or 10, got {bits}")
