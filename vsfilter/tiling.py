"""Splitting a plane into overlapping tiles and stitching the model's output back.

Tile sizes follow vs-mlrt: ``tilesize`` is the model input per tile *including* ``overlap`` pixels of
context on each inner side, so each tile contributes ``tilesize - 2*overlap`` pixels of output (more at
the frame borders). With ``overlap`` at least the model's receptive radius, every output pixel sees
exactly the context it would see in the whole frame, and the stitched result equals the untiled one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Span", "plan_axis", "even_tile", "normalize_pair", "filter_tiled"]


@dataclass(frozen=True)
class Span:
    """One tile along an axis: model input ``[start, start+size)`` and the output it owns ``[own0, own1)``."""

    start: int
    size: int
    own0: int
    own1: int


def normalize_pair(value: int | Sequence[int] | None, what: str) -> tuple[int, int] | None:
    """An int or ``[width, height]`` as ``(width, height)``; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{what} must be an int or [width, height], not {value!r}")


def plan_axis(length: int, tile: int, overlap: int) -> list[Span]:
    """Tiles covering ``[0, length)``; the last one is shifted back to end at ``length``.

    Args:
        length: the plane's width or height.
        tile: tile size including context; must exceed ``2 * overlap``.
        overlap: context pixels on each inner side of a tile.
    """
    if tile >= length:
        return [Span(0, length, 0, length)]
    step = tile - 2 * overlap
    starts: list[int] = []
    pos = 0
    while pos + tile < length:
        starts.append(pos)
        pos += step
    starts.append(length - tile)
    spans: list[Span] = []
    owned = 0
    for i, start in enumerate(starts):
        end = length if i == len(starts) - 1 else start + tile - overlap
        spans.append(Span(start, tile, owned, end))
        owned = end
    return spans


def even_tile(length: int, max_tile: int, overlap: int) -> int:
    """The smallest tile size, at most ``max_tile``, that covers ``[0, length)`` with as few tiles as
    ``max_tile`` needs: the tiles split the axis evenly, so no tile is mostly recomputed context.

    Args:
        length: the plane's width or height.
        max_tile: the largest tile allowed, context included; must exceed ``2 * overlap``.
        overlap: context pixels on each inner side of a tile.
    """
    if length <= max_tile:
        return length
    count = -(-(length - 2 * overlap) // (max_tile - 2 * overlap))
    return -(-(length + 2 * overlap * (count - 1)) // count)


def _same(x: np.ndarray) -> np.ndarray:
    return x


def filter_tiled(plane: np.ndarray, run: Callable[[np.ndarray], np.ndarray],
                 tile: tuple[int, int], overlap: tuple[int, int], batch: int = 1,
                 to_model: Callable[[np.ndarray], np.ndarray] = _same,
                 from_model: Callable[[np.ndarray], np.ndarray] = _same, out_dtype=np.float32,
                 extra: np.ndarray | None = None) -> np.ndarray:
    """Run ``run`` over ``plane`` (H x W) tile by tile and return the stitched output.

    Samples are converted to and from the model's scale per tile, so no whole-frame float copy of
    the plane exists: an 8K frame costs its integer input and output plus a few tiles.

    Args:
        plane: the input plane, in its own sample type.
        run: maps a float32 ``[N,1,h,w]`` batch to an output of the same shape.
        tile: ``(width, height)`` of a tile including context.
        overlap: ``(x, y)`` context on each inner side.
        batch: tiles of equal size sent to ``run`` together (more is faster, costs memory).
        to_model: elementwise samples -> float32 model input (identity for float planes).
        from_model: elementwise model output -> output samples.
        out_dtype: the output's dtype.
        extra: float32 planes (``C x H x W``) fed to the model after the converted plane, cut with it
            (a two-input model's quantizer plane): ``run`` then gets ``[N,1+C,h,w]``.
    """
    height, width = plane.shape
    rows = plan_axis(height, tile[1], overlap[1])
    cols = plan_axis(width, tile[0], overlap[0])
    out = np.empty(plane.shape, dtype=out_dtype)
    pending: list[tuple[Span, Span]] = []

    def flush() -> None:
        stack = np.stack([plane[r.start:r.start + r.size, c.start:c.start + c.size] for r, c in pending])
        batch = to_model(stack)[:, None]
        if extra is not None:
            more = np.stack([extra[:, r.start:r.start + r.size, c.start:c.start + c.size] for r, c in pending])
            batch = np.concatenate([batch, more.astype(np.float32, copy=False)], axis=1)
        result = run(batch)
        for (r, c), tile_out in zip(pending, result[:, 0]):
            out[r.own0:r.own1, c.own0:c.own1] = from_model(tile_out[r.own0 - r.start:r.own1 - r.start,
                                                                    c.own0 - c.start:c.own1 - c.start])
        pending.clear()

    for r in rows:
        for c in cols:
            pending.append((r, c))
            if len(pending) >= batch:
                flush()
    if pending:
        flush()
    return out
