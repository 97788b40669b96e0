"""The quantizer estimate on real video it never saw: how close to the encoder's QP, how often too high,
and what it costs a frame.

    .venv/bin/python bench/qp_estimate.py [--estimator model/tiny/learned_filter_codec_v3.qp.onnx]
        [--frames 24] [--clips Megamind vtest ...] [--filter learned_filter_codec_v3 [--every 2]]

Each real clip (``bench/real_clips.py``, 8-bit luma) is round-tripped through x265 and SVT-AV1 over a
CRF ladder by ``training.encoding.round_trip``, which records the truth (x265's per-frame QP from its
log, SVT-AV1's CRF as qindex; H.264-equivalent, ``vsfilter.quantizer``) and each frame's coded rate
exactly as ``vsfilter.source`` computes its ``CodedBitsPerPixel`` prop. Per encoder and CRF: the mean
true QP, the mean estimate, the mean error and the worst over-estimate of a clip (clip means).
``--filter`` (a two-input model, id or path) judges the estimate by what it does to the filter: its
PSNR-Y gain over the decode fed the true QP, the estimate and "unknown", next to codec_v2's (every
``--every``-th frame, mean and worst clip). Then the time of one estimate of a 1920x1080 frame against
codec_v2's filter on the same frame (ONNX Runtime, one thread). A benchmark: it prints and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("SVT_LOG", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from real_clips import read_luma, real_clips  # noqa: E402

import vsfilter  # noqa: E402,F401

LADDERS = {"libx265": ("hevc", "medium", "bframes", (20, 24, 28, 32, 36, 40)),
           "libsvtav1": ("av1", "8", "random-access", (25, 30, 40, 50, 58))}


class _FilterJudge:
    """A two-input filter's PSNR-Y gain fed each plane, and codec_v2's, on a round trip's frames."""

    FED = ("true QP", "estimate", "unknown", "codec_v2")

    def __init__(self, model: str, every: int) -> None:
        from vsfilter.plan import plan_filter

        self.every = every
        self.filter = plan_filter(model, device="cpu").create_runner()
        self.v2 = plan_filter("learned_filter_codec_v2", device="cpu").create_runner()

    def gains(self, clean: np.ndarray, trip, estimates: list) -> list[float]:
        from training.loop import psnr
        from vsfilter.quantizer import UNKNOWN, plane_value

        out = []
        for i in range(0, len(clean), self.every):
            decoded = trip.frames[i]
            y = decoded.astype(np.float32) / 255
            row = []
            for value in (plane_value(float(np.nanmean(trip.qp[i]))), plane_value(estimates[i]), UNKNOWN):
                x = np.stack([y, np.full_like(y, value)])[None]
                filtered = np.clip(np.rint(self.filter(x)[0, 0] * 255), 0, 255)
                row.append(psnr(filtered, clean[i]) - psnr(decoded, clean[i]))
            row.append(psnr(self.v2.filter_plane(decoded, 255), clean[i]) - psnr(decoded, clean[i]))
            out.append(row)
        return list(np.mean(out, axis=0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--estimator", type=Path, default=None,
                    help="the estimator .onnx (default: learned_filter_codec_v3's, from the registry)")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--clips", nargs="*", help="real clips by name (default: all)")
    ap.add_argument("--filter", help="a two-input model to judge the estimate with (registry id or .onnx)")
    ap.add_argument("--every", type=int, default=2, help="with --filter: every N-th frame")
    args = ap.parse_args()
    from training.encoding import Encode, round_trip
    from vsfilter.models import resolve_model
    from vsfilter.qp_estimator import PROP_CODEC, PROP_RATE, QuantizerEstimator

    from bench_env import describe_machine

    print(describe_machine())
    path = args.estimator or resolve_model("learned_filter_codec_v3").qp_estimator
    if path is None:
        print("learned_filter_codec_v3 has no quantizer estimator; pass --estimator")
        return 2
    estimator = QuantizerEstimator(path)
    clips = {c.name: read_luma(c.path, args.frames, 0 if c.name == "carphone" else 30) for c in real_clips(args.clips)}
    print(f"{path.name} on {len(clips)} real clips of {args.frames} frames; H.264-equivalent QP, clip means\n")
    judge = _FilterJudge(args.filter, args.every) if args.filter else None
    print(f"  {'encode':18s} {'true':>6s} {'estimate':>9s} {'error':>7s}   worst over-estimate"
          + ("   filter gain (dB, mean / worst clip): " + " | ".join(_FilterJudge.FED) if judge else ""))
    for encoder, (codec, preset, gop, crfs) in LADDERS.items():
        for crf in crfs:
            rows, gains = {}, {}
            for name, luma in clips.items():
                trip = round_trip(luma, Encode(encoder, crf, preset, gop))
                rate = trip.bits_per_pixel
                estimates = [estimator(frame, 255, {PROP_CODEC: codec, PROP_RATE: float(r)})
                             for frame, r in zip(trip.frames, rate)]
                rows[name] = (float(np.nanmean(trip.qp)), float(np.mean(estimates)))
                if judge:
                    gains[name] = judge.gains(luma, trip, estimates)
            true = np.array([v[0] for v in rows.values()])
            est = np.array([v[1] for v in rows.values()])
            worst = max(rows, key=lambda k: rows[k][1] - rows[k][0])
            line = (f"  {encoder[3:]} CRF {crf:<9d} {true.mean():6.1f} {est.mean():9.1f} {np.mean(est - true):+7.1f}"
                    f"   {worst} {rows[worst][1] - rows[worst][0]:+.1f}")
            if judge:
                table = np.array(list(gains.values()))
                line += "   " + " | ".join(f"{table[:, i].mean():+.3f} / {table[:, i].min():+.3f}"
                                            for i in range(table.shape[1]))
            print(line, flush=True)
    frame = np.random.default_rng(0).integers(16, 235, (1080, 1920), dtype=np.uint8)
    props = {PROP_CODEC: estimator.codecs[0], PROP_RATE: 0.05}
    from vsfilter.plan import plan_filter

    runner = plan_filter("learned_filter_codec_v2", device="cpu", threads=1).create_runner()
    timings = {}
    for label, fn in (("estimate", lambda: estimator(frame, 255, props)),
                      ("codec_v2 filter", lambda: runner.filter_plane(frame, 255))):
        fn()
        started = time.perf_counter()
        for _ in range(3):
            fn()
        timings[label] = (time.perf_counter() - started) / 3
    print(f"\n1920x1080, one thread: estimate {1000 * timings['estimate']:.1f} ms, codec_v2's filter "
          f"{1000 * timings['codec_v2 filter']:.0f} ms ({100 * timings['estimate'] / timings['codec_v2 filter']:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
