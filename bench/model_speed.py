"""What a bigger network costs: vmaf_pre frames per second of several models at each precision, one process.

    .venv/bin/python bench/model_speed.py [--models learned_filter_codec_v2 learned_filter_codec_v3 ...]
        [--precisions fp32 int8] [--sizes 1920x1080] [--frames 12] [--quantizer 38]

Each model runs through ``vsfilter.vmaf_pre`` on the same textured YUV420P8 clip: fp32 on ONNX Runtime
(``device="cpu"``), bf16 and int8 on OpenVINO (int8 needs the model's registered INT8 sidecar). Ratios
are against the first model at the same precision, measured in this run. A two-input model is told
``--quantizer`` (the network's own cost, as for an H.264 stream with QP props); ``--quantizer estimate``
makes it run its learned QP estimator on every frame as for HEVC/AV1. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import vapoursynth as vs  # noqa: E402
from filter import content_clip, fps_of  # noqa: E402

import vsfilter  # noqa: E402  (imports OpenVINO before vs.core loads vs-mlrt-ov's copy)

from bench_env import describe_machine  # noqa: E402

DEVICE = {"fp32": "cpu", "bf16": "openvino", "int8": "openvino"}


def model_fps(clip: vs.VideoNode, model: str, precision: str, quantizer: str) -> float | str:
    """Frames per second, or why the combination did not run."""
    spec = vsfilter.resolve_model(model)
    told = None if quantizer == "estimate" or spec.planes == 1 else float(quantizer)
    try:
        return fps_of(vsfilter.vmaf_pre(clip, model=spec, device=DEVICE[precision], precision=precision,
                                        quantizer=told))
    except vs.Error as exc:
        return str(exc).strip().splitlines()[-1][:100]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["learned_filter_codec_v2", "learned_filter_codec_v3"])
    ap.add_argument("--precisions", nargs="+", choices=list(DEVICE), default=["fp32", "int8"])
    ap.add_argument("--sizes", nargs="+", default=["1920x1080"])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--quantizer", default="38", help="what a two-input model is told, or 'estimate'")
    args = ap.parse_args()
    print(f"{describe_machine()}, VapourSynth threads {vs.core.num_threads}")
    for size in args.sizes:
        width, height = map(int, size.split("x"))
        clip = content_clip(width, height, args.frames)
        print(f"\n{width}x{height}, {args.frames} frames (2 warm-up), two-input models told {args.quantizer}")
        for precision in args.precisions:
            base: tuple[str, float] | None = None
            for model in args.models:
                fps = model_fps(clip, model, precision, args.quantizer)
                if isinstance(fps, str):
                    print(f"  {precision:5s} {model:34s} skipped: {fps}")
                    continue
                base = base or (model, fps)
                print(f"  {precision:5s} {model:34s} {fps:7.2f} fps  {fps / base[1]:5.2f}x {base[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
