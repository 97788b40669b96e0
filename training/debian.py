"""Files inside Debian packages, fetched without installing anything: ``apt-get download`` + ``dpkg -x``, and
the licence a package's DEP-5 copyright file gives one of its files (the offline photo and footage
corpora)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

from .cli import UsageError


def last_line(text: str) -> str:
    """The last non-blank line of a tool's output (for a one-line error)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def fetch_deb(package: str, tmp: Path, otherwise: str) -> tuple[Path, str]:
    """``apt-get download`` + ``dpkg -x`` into ``tmp``: (unpacked root, version). ``otherwise`` ends the
    error when the download fails (what the user can leave out instead)."""
    got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
    debs = sorted(tmp.glob(f"{package}_*.deb"))
    if got.returncode != 0 or not debs:
        raise UsageError(f"apt-get download {package} failed ({last_line(got.stderr)}); run apt-get update, "
                         f"{otherwise}")
    version = debs[0].name.split("_")[1].replace("%3a", ":")
    root = tmp / package
    subprocess.run(["dpkg", "-x", str(debs[0]), str(root)], check=True)
    debs[0].unlink()  # a package can be large (enlightenment-data: 400 MB)
    return root, version


def dep5_license(copyright_file: Path, installed: str) -> str | None:
    """The licence a Debian (DEP-5) copyright file gives a file (the last matching stanza wins), or None."""
    if not copyright_file.is_file():
        return None
    license = None
    for stanza in copyright_file.read_text(errors="replace").split("\n\n"):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", stanza, re.M)
        lic = re.search(r"^License:\s*(\S+)", stanza, re.M)
        if not files or not lic:
            continue
        for pattern in files.group(1).split():
            base = pattern.rsplit("/", 1)[-1]
            if pattern == "*" or fnmatch.fnmatch(installed, f"*{pattern}") or (
                    base != "*" and fnmatch.fnmatch(installed.rsplit("/", 1)[-1], base)):
                license = lic.group(1)
    return license
