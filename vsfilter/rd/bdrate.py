"""BD-rate and BD-quality of two rate-distortion curves, on the ``bjontegaard`` package (piecewise cubic
Hermite interpolation: ``method="pchip"``, which reproduces Netflix's JCTVC-E137-validated calculator).

A curve is a list of ``(rate, quality)`` points. Curves Netflix's calculator rejects are refused here
with a :class:`~vsfilter.errors.RdError` naming the curve and the reason, never turned into a number:
fewer than 4 distinct points, a rate that is not positive, quality that does not rise with rate, or
two curves whose qualities (BD-rate) or rates (BD-quality) do not overlap.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from ..errors import RdError

__all__ = ["bd_rate", "bd_quality", "check_curve", "MIN_POINTS"]

#: Fewest points of a curve (the cubic integral needs 4).
MIN_POINTS = 4

Point = tuple[float, float]


def check_curve(points: Sequence[Point], name: str = "curve") -> list[Point]:
    """The points of a curve, deduplicated and ordered by rate, after Netflix's calculator's checks.

    Args:
        points: ``(rate, quality)`` pairs.
        name: how messages name the curve (the ladder).

    Raises:
        RdError: fewer than :data:`MIN_POINTS` distinct points, a rate <= 0, rates repeated with another
            quality, or quality not strictly rising with rate.
    """
    ordered = sorted({(float(r), float(q)) for r, q in points})
    if len(ordered) < MIN_POINTS:
        raise RdError(f"{name}: {len(ordered)} rate-quality point(s); BD-rate needs at least {MIN_POINTS} encodes")
    if ordered[0][0] <= 0:
        raise RdError(f"{name}: a rate of {ordered[0][0]:g} kbps; every encode needs a positive bitrate")
    for (r0, q0), (r1, q1) in zip(ordered, ordered[1:]):
        if r1 == r0:
            raise RdError(f"{name}: two encodes at the same rate {r0:g} kbps with different quality")
        if q1 <= q0:
            raise RdError(f"{name}: quality does not rise with rate ({q0:.4f} at {r0:.1f} kbps, {q1:.4f} at "
                          f"{r1:.1f} kbps); BD-rate needs a monotonic curve: drop or redo the encode that breaks it")
    return ordered


def _overlap(a: list[float], b: list[float], what: str, names: tuple[str, str]) -> None:
    lo, hi = max(min(a), min(b)), min(max(a), max(b))
    if lo >= hi:
        raise RdError(f"{names[1]} and {names[0]} do not overlap in {what} ({min(b):.4g}-{max(b):.4g} vs "
                      f"{min(a):.4g}-{max(a):.4g}); BD figures compare curves over their common range")


def _bd(kind: str, anchor: Sequence[Point], test: Sequence[Point], names: tuple[str, str]) -> float:
    """bjontegaard's ``bd_rate`` (``kind="rate"``: the curves must overlap in quality) or ``bd_psnr``
    (``kind="quality"``: they must overlap in rate), pchip, after Netflix's calculator's checks."""
    import bjontegaard

    a, t = check_curve(anchor, names[0]), check_curve(test, names[1])
    (ra, qa), (rt, qt) = ([r for r, _ in a], [q for _, q in a]), ([r for r, _ in t], [q for _, q in t])
    if kind == "rate":
        _overlap(qa, qt, "quality", names)
    else:
        _overlap(ra, rt, "rate", names)
    fn = bjontegaard.bd_rate if kind == "rate" else bjontegaard.bd_psnr
    with warnings.catch_warnings():  # its low-overlap warning: the range used is stated by the caller
        warnings.simplefilter("ignore")
        return float(fn(ra, qa, rt, qt, method="pchip", require_matching_points=False))


def bd_rate(anchor: Sequence[Point], test: Sequence[Point], names: tuple[str, str] = ("anchor", "test")) -> float:
    """Bjøntegaard-delta rate of ``test`` against ``anchor``, in percent: the average bitrate difference at
    equal quality over the qualities both curves reach (negative: ``test`` needs fewer bits).

    Args:
        anchor, test: ``(rate, quality)`` points (rates in any unit, the same for both).
        names: how messages name (anchor, test).

    Raises:
        RdError: a curve Netflix's calculator rejects, or qualities that do not overlap.
    """
    return _bd("rate", anchor, test, names)


def bd_quality(anchor: Sequence[Point], test: Sequence[Point], names: tuple[str, str] = ("anchor", "test")) -> float:
    """Bjøntegaard-delta quality of ``test`` against ``anchor``: the average quality difference at equal
    rate over the (log) rates both curves span (positive: ``test`` is better), in the metric's units.

    Args:
        anchor, test: ``(rate, quality)`` points.
        names: how messages name (anchor, test).

    Raises:
        RdError: a curve Netflix's calculator rejects, or rates that do not overlap.
    """
    return _bd("quality", anchor, test, names)
