"""Loading a training corpus as 8-bit luma: the middle frame of each video, or each image.

Unreadable files are skipped and counted; a corpus with nothing readable is an error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cli import UsageError, sha256_file

#: The listing a corpus folder holds (``training.offline_corpus``, ``training.footage_corpus``): its files,
#: each with its package and licence.
LISTING = "corpus.json"

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "Sample", "Corpus", "find_files", "load_corpus", "split", "split_by_package",
           "DEFAULT_VAL_PACKAGES"]

#: Packages held out for validation by default: unfamiliar content, including classic test photos.
DEFAULT_VAL_PACKAGES = ("debian:opencv-doc", "debian:tuxpaint-data")

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".y4m", ".mpg"}


@dataclass
class Sample:
    """One clean luma image and where it came from (``package``: its source package, the split unit)."""

    path: Path
    sha256: str
    luma: np.ndarray
    package: str = "unknown"


@dataclass
class Corpus:
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def find_files(directory: Path, exts: set[str]) -> list[Path]:
    """Files under ``directory`` (recursive) with one of ``exts``, sorted for a stable order."""
    if not directory.exists():
        raise UsageError(f"corpus directory {directory} does not exist")
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def load_image_luma(path: Path) -> np.ndarray:
    """Pillow's ``convert("L")`` (ITU-R 601 luma) of an image file, uint8."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGB")
        return np.asarray(image.convert("L"))


def load_video_middle_luma(path: Path) -> np.ndarray:
    """The coded Y plane (8-bit) of the middle frame of the first video stream, decoded with PyAV."""
    import av

    from vsfilter.reader.planes import luma_u8

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        count = sum(1 for packet in container.demux(stream) if packet.size)
        if count == 0:
            raise ValueError("no video packets")
        container.seek(0)
        target = count // 2
        for index, frame in enumerate(container.decode(stream)):
            if index == target:
                return luma_u8(frame)
    raise ValueError("fewer frames decoded than demuxed")


def load_corpus(images: Path | None, videos: Path | None, min_size: int) -> Corpus:
    """Load every readable image/video under the given folders.

    Args:
        images: folder of images (or None).
        videos: folder of videos (or None); the middle frame of each is used.
        min_size: files whose luma is smaller than this on either side are skipped.
    """
    jobs: list[tuple[Path, object]] = []
    if images is not None:
        jobs += [(p, load_image_luma) for p in find_files(images, IMAGE_EXTS)]
    if videos is not None:
        jobs += [(p, load_video_middle_luma) for p in find_files(videos, VIDEO_EXTS)]
    if not jobs:
        where = " and ".join(str(d) for d in (images, videos) if d is not None)
        raise UsageError(f"no images or videos found in {where}")
    corpus = Corpus([])
    packages = _packages(images)
    for path, loader in jobs:
        try:
            luma = loader(path)
        except Exception as exc:  # unreadable: count it and go on
            corpus.skipped.append((str(path), f"{type(exc).__name__}: {exc}"))
            continue
        if min(luma.shape) < min_size:
            corpus.skipped.append((str(path), f"smaller than {min_size} px"))
            continue
        corpus.samples.append(Sample(path, sha256_file(path), luma, packages.get(path.name, path.parent.name)))
    if not corpus.samples:
        raise UsageError(f"none of the {len(jobs)} corpus files could be used ({corpus.skipped[0][1]}, ...)")
    return corpus


def split(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """A seeded train/validation split by file (at least one of each when there are two or more)."""
    order = list(samples)
    random.Random(seed).shuffle(order)
    if len(order) < 2:
        return order, order
    n_val = min(len(order) - 1, max(1, round(len(order) * val_fraction)))
    return order[n_val:], order[:n_val]


def _packages(images: Path | None) -> dict[str, str]:
    """File name -> source package, from the ``corpus.json`` that ``training.offline_corpus`` writes."""
    import json

    listing = images / LISTING if images is not None else None
    if listing is None or not listing.is_file():
        return {}
    try:
        return {row["file"]: row["package"] for row in json.loads(listing.read_text())["files"]}
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{listing} is damaged; rebuild the corpus with "
                         "python -m training.offline_corpus --force") from None


def split_by_package(samples: list[Sample], val_packages: list[str]) -> tuple[list[Sample], list[Sample]]:
    """Train on every package but ``val_packages``, validate on those (whole packages held out)."""
    known = sorted({s.package for s in samples})
    missing = [p for p in val_packages if p not in known]
    if missing:
        raise UsageError(f"validation package(s) {', '.join(missing)} are not in the corpus; it has {', '.join(known)}")
    val = [s for s in samples if s.package in val_packages]
    train = [s for s in samples if s.package not in val_packages]
    if not train:
        raise UsageError("holding out those packages leaves nothing to train on")
    return train, val
