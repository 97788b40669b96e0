"""The training data of ``train_konvid`` and ``qat_finetune``: the card's blur + JPEG pairs of a photo or
video corpus, or a codec pair set, split into training and validation by source package."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .cli import UsageError
from .corpus import DEFAULT_VAL_PACKAGES, Sample, load_corpus, split, split_by_package
from .degrade import BLUR_SIGMA, JPEG_QUALITY, degrade, degraded_variants
from .encoding import parse_crf_ranges

__all__ = ["DataSpec", "TrainingData", "card_data", "codec_data", "load_training_data"]


@dataclass(frozen=True)
class DataSpec:
    """Where the pairs come from and how they are split.

    Attributes:
        degradation: ``card`` (blur + JPEG of ``images``/``videos``/KoNViD-1k) or ``codec`` (``pairs``).
        images, videos: the corpus folders (card); ``konvid_dir`` when neither is given.
        pairs: the codec pair set (codec), or several whose pairs are pooled.
        pair_weights: with several ``pairs`` sets, one weight each: a set's crops are drawn in proportion
            to its weight times its crop positions (empty: 1 each).
        crop: the training crop (smaller images are skipped).
        val_packages: source packages held out (None: opencv-doc and tuxpaint-data when present).
        val_fraction, seed: a seeded split by file when there are no packages to hold out.
        quiet: no notes on stderr.
        train_crf: ``ENCODER=LOW:HIGH`` items: train on those round trips only (a quality-band specialist).
        quantizer: codec pairs as ``(clean, degraded, qp)`` triples with each frame's quantizer map.
        estimator: with ``quantizer``: the quantizer estimator whose estimate replaces the encoder's own QP
            of the pairs whose decoder exports none (``pair_sets.told_estimates``), as ``vmaf_pre`` tells them.
        neighbours: with ``quantizer``: temporal pairs, each with its previous and next decoded frame.
    """

    degradation: str = "card"
    images: Path | None = None
    videos: Path | None = None
    konvid_dir: Path = Path("data/konvid_1k")
    pairs: Path | tuple[Path, ...] = Path("data/codec_pairs")
    crop: int = 128
    val_packages: list[str] | None = None
    val_fraction: float = 0.15
    seed: int = 42
    quiet: bool = False
    train_crf: tuple[str, ...] = ()
    quantizer: bool = False
    estimator: Path | None = None
    neighbours: bool = False
    pair_weights: tuple[float, ...] = ()


@dataclass
class TrainingData:
    """Training and validation (clean, degraded) pairs, the record the manifest keeps, and (codec pairs)
    one label per validation pair."""

    train: list
    val: list
    record: dict
    val_labels: list[dict] = field(default_factory=list)
    train_weights: list[float] | None = None  # per training pair: how much more often its crops are drawn


def load_training_data(spec: DataSpec) -> TrainingData:
    """The pairs ``spec`` names."""
    return codec_data(spec) if spec.degradation == "codec" else card_data(spec)



def card_data(args: DataSpec) -> TrainingData:
    """(train pairs, val pairs, data record) for the card's blur + JPEG degradation."""
    images, videos = args.images, args.videos
    if images is None and videos is None:
        videos = args.konvid_dir / "KoNViD_1k_videos"
        if not videos.is_dir():
            raise UsageError(f"no corpus: {videos} is missing; run python -m training.fetch_konvid_1k, "
                             "or pass --videos DIR / --images DIR")
    corpus = load_corpus(images, videos, min_size=args.crop)
    if corpus.skipped and not args.quiet:
        print(f"skipped {len(corpus.skipped)} unreadable or too small file(s)", file=sys.stderr)
    packages = sorted({s.package for s in corpus.samples})
    val_packages = args.val_packages
    if val_packages is None:
        val_packages = [p for p in DEFAULT_VAL_PACKAGES if p in packages]
    if val_packages:
        train_s, val_s = split_by_package(corpus.samples, val_packages)
    else:
        train_s, val_s = split(corpus.samples, args.val_fraction, args.seed)
    from concurrent.futures import ProcessPoolExecutor

    workers = min(len(os.sched_getaffinity(0)), 16)
    with ProcessPoolExecutor(workers) as pool:
        train = [pair for variants in pool.map(degraded_variants, [s.luma for s in train_s]) for pair in variants]
        val = [(s.luma, d) for s, d in zip(val_s, pool.map(degrade, [s.luma for s in val_s]))]

    def rows(samples: list[Sample]) -> list[dict]:
        return [{"path": str(s.path), "sha256": s.sha256, "shape": list(s.luma.shape), "package": s.package}
                for s in samples]

    record = {"train": rows(train_s), "val": rows(val_s), "val_packages": list(val_packages),
              "skipped": [{"path": p, "reason": r} for p, r in corpus.skipped],
              "degradation": {"kind": "card", "gaussian_blur_sigma": BLUR_SIGMA, "jpeg_quality": JPEG_QUALITY,
                              "library": "Pillow", "flips_rotations": 8, "applied_to": "whole images"}}
    return TrainingData(train, val, record)


def _pair_set_listing(directory: Path) -> dict:
    manifest_file = directory / "manifest.json"
    listing = json.loads(manifest_file.read_text()) if manifest_file.is_file() else None
    if listing is None:
        raise UsageError(f"{directory} is not a codec pair set (no manifest.json); build it with "
                         "python -m training.codec_pairs")
    return listing


def codec_data(args: DataSpec) -> TrainingData:
    """(train pairs, val pairs, data record) from one or more codec pair sets (their pairs pooled), split by
    source package."""
    from .pair_sets import load_pairs

    sets = (args.pairs,) if isinstance(args.pairs, Path) else tuple(args.pairs)
    listings = [_pair_set_listing(directory) for directory in sets]
    packages = sorted({c["package"] for listing in listings for c in listing["clips"]})
    val_packages = args.val_packages if args.val_packages is not None else [
        p for p in DEFAULT_VAL_PACKAGES if p in packages]
    missing = [p for p in val_packages if p not in packages]
    if missing:
        raise UsageError(f"validation package(s) {', '.join(missing)} are not in the pair set; "
                         f"it has {', '.join(packages)}")
    set_weights = tuple(args.pair_weights) if args.pair_weights else (1.0,) * len(sets)
    if len(set_weights) != len(sets) or min(set_weights) <= 0:
        raise UsageError(f"--pair-weights needs one weight > 0 per --pairs set ({len(sets)}), got "
                         f"{' '.join(map(str, set_weights))}")
    train, train_labels, val, val_labels, weights = [], [], [], [], []
    for directory, set_weight in zip(sets, set_weights):
        pairs, labels = load_pairs(directory, exclude=set(val_packages), identity=not args.train_crf,
                                   quantizer=args.quantizer, neighbours=args.neighbours)
        train, train_labels = train + pairs, train_labels + labels
        weights += [set_weight] * len(pairs)
        pairs, labels = load_pairs(directory, packages=set(val_packages), quantizer=args.quantizer,
                                   neighbours=args.neighbours)
        val, val_labels = val + pairs, val_labels + labels
    if args.train_crf:
        bands = parse_crf_ranges(list(args.train_crf), "--train-crf")
        kept = [i for i, lb in enumerate(train_labels)
                if lb["encoder"] in bands and bands[lb["encoder"]][0] <= lb["crf"] <= bands[lb["encoder"]][1]]
        train, train_labels = [train[i] for i in kept], [train_labels[i] for i in kept]
        weights = [weights[i] for i in kept]
    if not train or not val:
        raise UsageError("the pair set splits into an empty training or validation part; check --val-packages")
    if args.estimator is not None:
        from .pair_sets import told_estimates

        train = told_estimates(train, train_labels, args.estimator)
        val = told_estimates(val, val_labels, args.estimator)
    one = len(sets) == 1  # a single set is recorded as before
    record = {"pairs": str(sets[0]) if one else [str(d) for d in sets],
              "pair_set_key": listings[0]["key"] if one else [listing["key"] for listing in listings],
              **({} if one else {"pair_weights": list(set_weights)}),
              "settings": listings[0]["settings"] if one else [listing["settings"] for listing in listings],
              "val_packages": list(val_packages), "train_clips": len({lb["clip"] for lb in train_labels}),
              "val_clips": len({lb["clip"] for lb in val_labels}), "train_pairs": len(train), "val_pairs": len(val),
              "train_identity_pairs": sum(lb["encoder"] == "identity" for lb in train_labels),
              "train_sources": sorted({lb["source"] for lb in train_labels}),
              "val_sources": sorted({lb["source"] for lb in val_labels}),
              "degradation": {"kind": "codec", "tool": "training.codec_pairs"},
              "quantizer_of_silent_codecs": "encoder" if args.estimator is None else f"estimate: {args.estimator}"}
    return TrainingData(train, val, record, val_labels, None if one else weights)
