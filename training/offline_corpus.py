"""Assemble the offline photo corpus the shipped model was trained on (KoNViD-1k needs a network).

    python -m training.offline_corpus --output data/offline_photos [--no-debian]

Photos come from packages, named with their versions in ``corpus.json`` next to the copies:
scikit-image's bundled test photos, and the Debian packages palapeli-data, mate-backgrounds and
lomiri-wallpapers-16.04 (fetched with ``apt-get download`` and unpacked with ``dpkg -x``; nothing is
installed). Icons, synthetic/abstract wallpapers and textures are left out: only photographs.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from vsfilter.atomic import atomic_write_text

from .cli import UsageError, run_main, sha256_file

SKIMAGE_PHOTOS = ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "brick.png", "grass.png", "gravel.png", "moon.png", "coins.png",
                  "retina.jpg", "hubble_deep_field.jpg", "ihc.png", "page.png"]

#: Debian package -> globs (inside the package) of the photographs it ships.
DEBIAN_PHOTOS = {
    "palapeli-data": ["usr/share/palapeli/collection/*.jpg"],
    "mate-backgrounds": ["usr/share/backgrounds/mate/nature/*.jpg"],
    "lomiri-wallpapers-16.04": ["usr/share/backgrounds/*.jpg"],
}


def _skimage(out: Path) -> list[dict]:
    try:
        import skimage
    except ImportError:
        raise UsageError("scikit-image is not installed (pip install 'vsfilter[train]')") from None
    data = Path(skimage.__file__).parent / "data"
    rows = []
    for name in SKIMAGE_PHOTOS:
        src = data / name
        if src.is_file():
            dst = out / f"skimage__{name}"
            shutil.copyfile(src, dst)
            rows.append({"file": dst.name, "package": "scikit-image", "version": skimage.__version__,
                         "source": f"skimage/data/{name}", "sha256": sha256_file(dst)})
    return rows


def _debian(out: Path) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, globs in DEBIAN_PHOTOS.items():
            got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
            debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
            if got.returncode != 0 or not debs:
                raise UsageError(f"apt-get download {package} failed: {got.stderr.strip().splitlines()[-1:]} "
                                 "(run apt-get update, or pass --no-debian)")
            version = debs[0].name.split("_")[1].replace("%3a", ":")
            root = Path(tmp) / package
            subprocess.run(["dpkg", "-x", str(debs[0]), str(root)], check=True)
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root).as_posix()
                if path.is_file() and any(fnmatch.fnmatch(rel, g) for g in globs):
                    dst = out / f"{package}__{path.name}"
                    shutil.copyfile(path, dst)
                    rows.append({"file": dst.name, "package": f"debian:{package}", "version": version,
                                 "source": rel, "sha256": sha256_file(dst)})
    return rows


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.offline_corpus", description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=Path("data/offline_photos"))
    ap.add_argument("--no-debian", action="store_true", help="only scikit-image's photos")
    ap.add_argument("--force", action="store_true", help="replace an existing corpus folder")
    args = ap.parse_args(argv)
    if args.output.exists() and any(args.output.iterdir()):
        if not args.force:
            raise UsageError(f"{args.output} exists and is not empty; pass --force to replace it")
        shutil.rmtree(args.output)
    args.output.mkdir(parents=True, exist_ok=True)
    rows = _skimage(args.output) + ([] if args.no_debian else _debian(args.output))
    atomic_write_text(args.output / "corpus.json", json.dumps({"files": rows}, indent=2))
    print(f"{len(rows)} photos in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
