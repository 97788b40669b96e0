"""Assemble the offline photo corpus learned_filter_v1 is trained on (KoNViD-1k needs a network).

    python -m training.offline_corpus --output data/offline_photos [--no-debian] [--force]

Photographs that ship inside packages, fetched without installing anything: Debian packages with
``apt-get download`` + ``dpkg -x``, Python wheels with ``pip download``, and scikit-image's bundled
data. Only photographs (no icons, logos, renders or abstract art: the lists below were picked by
looking at every image). Each photo becomes one 8-bit luma PNG (Pillow's ``convert("L")``):

- lossy (JPEG) sources are downscaled 2-4x with area averaging, so their own compression is averaged
  away and does not become the "clean" target; lossless ones only when larger than ``MAX_SIDE``;
- near-duplicates (perceptual hash, Hamming distance <= 6) are dropped, keeping the first;
- ``corpus.json`` records, per photo, the package, its version, the path inside it, the licence (from
  the package's Debian copyright file, the wheel's README, or scikit-image's data docstrings), the
  downscale factor, and the sha256 of both the source and the written PNG.

The package is the unit of the train/validation split (``train_konvid --val-packages``): whole
packages are held out, so validation photos are as unfamiliar as real test photos.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_write_text

from .cli import UsageError, fresh_output_dir, run_main, sha256_file, step_parser
from .corpus import LISTING
from .debian import dep5_license, fetch_deb, last_line

#: Longest side of a written photo; larger ones are area-downscaled by an integer factor.
MAX_SIDE = 1600
#: Near-duplicate threshold on 64-bit perceptual hashes.
DUPLICATE_BITS = 6


@dataclass(frozen=True)
class Package:
    """Photos inside one package.

    Attributes:
        name: Debian package, ``wheel:<dist>``, or ``scikit-image``.
        files: paths inside the package (globs allowed); for ``largest_in_dir`` folders, the largest
            image file under each folder is taken (one picture shipped at many sizes).
        license: the licence when the package has no machine-readable copyright file.
        largest_in_dir: ``files`` are folders holding one picture at several sizes.
        edj: ``files`` are Enlightenment ``.edj`` archives; the largest embedded JPEG is the photo.
    """

    name: str
    files: tuple[str, ...]
    license: str | None = None
    largest_in_dir: bool = False
    edj: bool = False


_ENL = "usr/share/enlightenment/data/backgrounds/"
_LOMIRI = "usr/share/backgrounds/"
_PLASMA = "usr/share/wallpapers/"
_LXQT = "usr/share/lxqt/wallpapers/"
_TUX = "usr/share/tuxpaint/templates/"
_OPENCV = "usr/share/doc/opencv-doc/examples/data/"

DEBIAN: tuple[Package, ...] = (
    Package("enlightenment-data", tuple(f"{_ENL}{n}.edj" for n in (
        "Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain", "Peaks", "Red-Maple",
        "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles", "Sunset-Clouds", "White-Flower", "Yellow-Flower")),
        edj=True),
    Package("lomiri-wallpapers-16.04", tuple(f"{_LOMIRI}{n}.jpg" for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi"))),
    Package("lomiri-wallpapers-20.04", (f"{_LOMIRI}Kleiber_by_Lukas_Baubkus.jpg",)),
    Package("mate-backgrounds", ("usr/share/backgrounds/mate/nature/*.jpg",)),
    Package("plasma-workspace-wallpapers", tuple(f"{_PLASMA}{n}/contents/images" for n in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
        "OneStandsOut", "Path", "Volna", "summer_1am")), largest_in_dir=True),
    Package("lxqt-themes", tuple(f"{_LXQT}{n}" for n in (
        "Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
        "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg"))),
    Package("tuxpaint-data", (f"{_TUX}*.jpg",)),
    Package("palapeli-data", ("usr/share/palapeli/collection/*.jpg",)),
    Package("sddm-theme-maldives", ("usr/share/sddm/themes/maldives/background.jpg",)),
    Package("digikam-data", ("usr/share/digikam/about/images/body-background.jpg",),
            license="GPL-2+ (package copyright: almost all of digiKam is GPL)"),
    Package("opencv-doc", tuple(f"{_OPENCV}{n}" for n in (
        "aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg", "building.jpg",
        "butterfly.jpg", "chicky_512.png", "fruits.jpg", "graf1.png", "home.jpg", "leuvenA.jpg", "messi5.jpg",
        "orange.jpg", "rubberwhale1.png", "squirrel_cls.jpg"))),
)

#: scikit-image's bundled photographs and their licences (from the ``skimage.data`` docstrings).
SKIMAGE: dict[str, str] = {
    "astronaut.png": "public-domain (NASA)", "camera.png": "CC0 (Lav Varshney)", "chelsea.png": "CC0",
    "coffee.png": "CC0 (Rachel Michetti)", "rocket.jpg": "public-domain (SpaceX)",
    "motorcycle_left.png": "research use (Middlebury stereo)", "brick.png": "CC0 (CC0Textures)",
    "grass.png": "CC0", "gravel.png": "CC0 (CC0Textures)", "moon.png": "public-domain",
    "coins.png": "public-domain (Brooklyn Museum)", "retina.jpg": "CC0 (Andreas Maier)",
    "hubble_deep_field.jpg": "public-domain (NASA)", "ihc.png": "CC0",
}
#: Photographs inside the scikit-learn wheel, with the licence its README gives.
SKLEARN: dict[str, str] = {"sklearn/datasets/images/china.jpg": "CC-BY-2.0 (danielbuechele, Flickr)",
                           "sklearn/datasets/images/flower.jpg": "CC-BY-2.0 (vultilion, Flickr)"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class Photo:
    """One written photo and where it came from."""

    file: str
    package: str
    version: str
    source: str
    license: str
    source_sha256: str
    source_size: list[int]
    downscale: int
    sha256: str = ""
    size: list[int] = field(default_factory=list)


# ----------------------------------------------------------------------------------------- writing


def luma_of(data: bytes) -> tuple[np.ndarray, bool]:
    """(Pillow ``convert("L")`` of an encoded image, whether it was lossy JPEG)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        lossy = image.format == "JPEG"
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGB")
        return np.asarray(image.convert("L")), lossy


def downscale_factor(shape: tuple[int, ...], lossy: bool) -> int:
    """2-4x for lossy sources (at least 2), 1-4x for lossless ones, so the long side fits MAX_SIDE."""
    need = math.ceil(max(shape) / MAX_SIDE)
    return min(4, max(2 if lossy else 1, need))


def area_downscale(luma: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (Pillow's ``reduce``: area resampling), rounded to 8 bits."""
    from PIL import Image

    if factor == 1:
        return luma
    return np.asarray(Image.fromarray(luma, mode="L").reduce(factor))


def photo_stem(source: str) -> str:
    """The file stem of a photo: its name, or for a wallpaper shipped at many sizes
    (``.../<Name>/contents/images/2560x1600.jpg``) the wallpaper's name."""
    parts = Path(source).parts
    if len(parts) >= 4 and parts[-3] == "contents":
        return parts[-4]
    return Path(source).stem


def perceptual_hash(luma: np.ndarray) -> np.ndarray:
    """64-bit pHash (imagehash) as a boolean array."""
    import imagehash
    from PIL import Image

    return imagehash.phash(Image.fromarray(luma, mode="L")).hash.ravel()


class Writer:
    """Writes photos as luma PNGs, dropping near-duplicates of photos already written."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.photos: list[Photo] = []
        self.duplicates: list[dict] = []
        self._hashes: list[tuple[str, np.ndarray]] = []

    def add(self, data: bytes, package: str, version: str, source: str, license: str) -> None:
        from PIL import Image

        luma, lossy = luma_of(data)
        factor = downscale_factor(luma.shape, lossy)
        small = area_downscale(luma, factor)
        digest = perceptual_hash(small)
        for kept, other in self._hashes:
            if int(np.count_nonzero(digest != other)) <= DUPLICATE_BITS:
                self.duplicates.append({"package": package, "source": source, "duplicate_of": kept})
                return
        name = f"{package.replace(':', '-')}__{photo_stem(source)}.png"
        if any(p.file == name for p in self.photos):
            raise UsageError(f"two photos of {package} would both be written as {name}; this is a bug")
        target = self.out / name
        Image.fromarray(small, mode="L").save(target, optimize=True)
        photo = Photo(name, package, version, source, license, hashlib.sha256(data).hexdigest(),
                      list(luma.shape), factor, sha256_file(target), list(small.shape))
        self.photos.append(photo)
        self._hashes.append((name, digest))


# ----------------------------------------------------------------------------------------- sources


def _skimage(writer: Writer) -> None:
    try:
        import skimage
    except ImportError:
        raise UsageError("scikit-image is not installed (pip install 'vsfilter[train]')") from None
    data = Path(skimage.__file__).parent / "data"
    for name, license in SKIMAGE.items():
        if (data / name).is_file():
            writer.add((data / name).read_bytes(), "scikit-image", skimage.__version__, f"skimage/data/{name}", license)


def _sklearn(writer: Writer, tmp: Path) -> None:
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                          "scikit-learn", "-d", str(tmp)], capture_output=True, text=True)
    wheels = sorted(tmp.glob("scikit_learn-*.whl"))
    if got.returncode != 0 or not wheels:
        raise UsageError(f"pip download scikit-learn failed ({last_line(got.stderr)}); check the network to PyPI, "
                         "or leave out the Debian and wheel photos")
    version = wheels[0].name.split("-")[1]
    with zipfile.ZipFile(wheels[0]) as zf:
        for member, license in SKLEARN.items():
            writer.add(zf.read(member), "wheel:scikit-learn", version, member, license)


def _debian_files(root: Path, package: Package) -> list[Path]:
    found: list[Path] = []
    for pattern in package.files:
        if package.largest_in_dir:
            images = [p for p in (root / pattern).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
            found += [max(images, key=lambda p: p.stat().st_size)] if images else []
        else:
            found += sorted(root.glob(pattern))
    return found


def edj_largest_jpeg(data: bytes) -> bytes:
    """The largest JPEG embedded in an Enlightenment ``.edj`` archive (several sizes of one picture)."""
    from PIL import Image

    best, best_area = None, 0
    for match in re.finditer(b"\xff\xd8\xff", data):
        try:
            with Image.open(io.BytesIO(data[match.start():])) as image:
                image.load()
                area = image.size[0] * image.size[1]
                end = match.start() + _jpeg_length(data, match.start())
        except Exception:  # not a JPEG that starts here
            continue
        if area > best_area:
            best, best_area = data[match.start():end], area
    if best is None:
        raise UsageError("no JPEG found inside an .edj background")
    return best


def _jpeg_length(data: bytes, start: int) -> int:
    end = data.find(b"\xff\xd9", start)
    while end != -1:
        try:
            from PIL import Image

            Image.open(io.BytesIO(data[start:end + 2])).load()
            return end + 2 - start
        except Exception:
            end = data.find(b"\xff\xd9", end + 2)
    return len(data) - start


def _debian(writer: Writer, tmp: Path) -> None:
    for package in DEBIAN:
        root, version = fetch_deb(package.name, tmp, "or leave out the Debian photos")
        copyright_file = root / "usr/share/doc" / package.name / "copyright"
        files = _debian_files(root, package)
        if not files:
            raise UsageError(f"{package.name} {version} holds none of the expected photos; its layout changed")
        for path in files:
            rel = path.relative_to(root).as_posix()
            data = edj_largest_jpeg(path.read_bytes()) if package.edj else path.read_bytes()
            license = package.license or dep5_license(copyright_file, rel) or "see the package's copyright file"
            writer.add(data, f"debian:{package.name}", version, rel, license)
        shutil.rmtree(root)


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=Path("data/offline_photos"))
    ap.add_argument("--no-debian", action="store_true", help="only the photos inside Python packages")
    ap.add_argument("--force", action="store_true", help="replace an existing corpus folder")
    args = ap.parse_args(argv)
    fresh_output_dir(args.output, args.force)
    writer = Writer(args.output)
    with tempfile.TemporaryDirectory() as tmp:
        _skimage(writer)
        if not args.no_debian:
            _sklearn(writer, Path(tmp))
            _debian(writer, Path(tmp))
    rows = [vars(p) for p in writer.photos]
    atomic_write_text(args.output / LISTING, json.dumps({"files": rows, "duplicates": writer.duplicates,
                                                               "max_side": MAX_SIDE}, indent=2) + "\n")
    by_package: dict[str, int] = {}
    for p in writer.photos:
        by_package[p.package] = by_package.get(p.package, 0) + 1
    print(f"{len(rows)} photos in {args.output} ({len(writer.duplicates)} near-duplicates dropped): "
          + ", ".join(f"{k} {v}" for k, v in by_package.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
