"""Download KoNViD-1k (videos + metadata) resumably, verify the zips, and extract them.

    python -m training.fetch_konvid_1k [--output data/konvid_1k] [--from-dir LOCAL_COPY]

The clips are CC BY 4.0 and are not redistributed in-tree. ``--from-dir`` takes a folder that already
holds the two zips (or the extracted folders). Offline, it fails with one line and exit code 2.
"""

from __future__ import annotations

import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .cli import UsageError, run_main, step_parser

BASE_URL = "https://datasets.vqa.mmsp-kn.de/archives/"
ARCHIVES = {"KoNViD_1k_videos.zip": "KoNViD_1k_videos", "KoNViD_1k_metadata.zip": "KoNViD_1k_metadata"}


def download(url: str, dest: Path, timeout: float) -> None:
    """Fetch ``url`` into ``dest``, resuming a partial ``dest.part`` with an HTTP Range request."""
    from tqdm import tqdm

    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:
            have = 0  # server ignored the range: start over
        total = int(response.headers.get("Content-Length", 0)) + have
        with open(part, "ab" if have else "wb") as fh, tqdm(total=total or None, initial=have, unit="B",
                                                            unit_scale=True, desc=dest.name) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                fh.write(chunk)
                bar.update(len(chunk))
    part.replace(dest)


def verify_and_extract(archive: Path, output: Path, folder: str) -> None:
    """Check every member's CRC (``testzip``), then extract into ``output``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise UsageError(f"{archive.name}: member {bad} is corrupt; delete it and fetch again")
            if not (output / folder).is_dir():
                zf.extractall(output)
    except zipfile.BadZipFile:
        raise UsageError(f"{archive} is not a valid zip; delete it and fetch again") from None


@run_main
def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__name__, __doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=Path("data/konvid_1k"))
    ap.add_argument("--from-dir", type=Path, help="a local copy holding the zips or the extracted folders")
    ap.add_argument("--base-url", default=BASE_URL)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args(argv)
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"--output {args.output} is a file; give a folder")
    if args.from_dir is not None and not args.from_dir.is_dir():
        raise UsageError(f"--from-dir {args.from_dir} does not exist or is not a folder")
    args.output.mkdir(parents=True, exist_ok=True)
    for name, folder in ARCHIVES.items():
        dest = args.output / name
        if (args.output / folder).is_dir():
            continue
        if args.from_dir is not None:
            if (args.from_dir / folder).is_dir():
                shutil.copytree(args.from_dir / folder, args.output / folder)
                continue
            if not (args.from_dir / name).is_file():
                raise UsageError(f"--from-dir {args.from_dir} holds neither {name} nor {folder}/")
            shutil.copyfile(args.from_dir / name, dest)
        elif not dest.exists():
            try:
                download(args.base_url + name, dest, args.timeout)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise UsageError(f"cannot download {args.base_url + name} ({reason}); this machine may be offline: "
                                 "fetch the zips elsewhere and pass --from-dir, or train on "
                                 "--images/--videos") from None
        verify_and_extract(dest, args.output, folder)
    print(f"KoNViD-1k ready in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
