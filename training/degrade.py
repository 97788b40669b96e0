"""The card's degradation recipe: Gaussian blur (sigma 1.2), then JPEG at quality 35, with Pillow."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["BLUR_SIGMA", "JPEG_QUALITY", "degrade", "dihedral", "degraded_variants"]

BLUR_SIGMA = 1.2
JPEG_QUALITY = 35


def degrade(luma: np.ndarray, sigma: float = BLUR_SIGMA, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Blur then JPEG-compress an 8-bit luma image (H x W uint8); returns uint8 of the same shape.

    Args:
        luma: the clean image.
        sigma: Gaussian standard deviation (Pillow's ``GaussianBlur(radius)`` takes the std. deviation).
        quality: JPEG quality passed to ``Image.save(..., quality=)``.
    """
    image = Image.fromarray(luma, mode="L").filter(ImageFilter.GaussianBlur(radius=sigma))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("L"))


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations of ``image``: ``k % 4`` quarter turns, mirrored when ``k >= 4``."""
    out = np.rot90(image, k % 4)
    return np.ascontiguousarray(out[:, ::-1] if k >= 4 else out)


def degraded_variants(luma: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, degraded) for each of the 8 flips/rotations, each degraded whole (as at test time)."""
    out = []
    for k in range(8):
        clean = dihedral(luma, k)
        out.append((clean, degrade(clean)))
    return out
