"""Peak memory of ``python -m vsfilter.compare`` on large frames: automatic tiling vs whole frames.

    .venv/bin/python bench/memory.py [--sizes 3840x2160 7680x4320] [--frames 6] [--device cpu]

Each run is a child process; its peak RSS is the kernel's VmHWM (read by GNU time's %M). The pairs
(a pan over noise, FFV1 reference, x264 distorted) are generated once into the user cache dir.
Prints peak RSS and wall time of compare with the default (automatic tiling) and with --tilesize 0.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from vsfilter.cache import cache_dir  # noqa: E402

from bench_env import describe_machine  # noqa: E402
from media import encode_pan  # noqa: E402


def make_pair(width: int, height: int, frames: int) -> tuple[Path, Path]:
    root = cache_dir("bench", f"memory_{width}x{height}_{frames}")
    ref, dist = root / "ref.mkv", root / "dist.mp4"
    if not (ref.exists() and dist.exists()):
        base = (np.random.default_rng(1).random((height + 16, width + 16)) * 200 + 20).astype(np.uint8)
        for path, codec, options in ((ref, "ffv1", {}), (dist, "libx264", {"crf": "34", "preset": "ultrafast"})):
            encode_pan(path, base, frames, codec, options, lambda n: (n, n), width, height)
    return ref, dist


def peak(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``python -m vsfilter.compare ARGS``."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", sys.executable, "-m", "vsfilter.compare", *args,
                           "--quiet"], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    kib = int(re.search(r"MAXRSS (\d+)", proc.stderr).group(1))
    return kib / 1024, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["3840x2160", "7680x4320"])
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vmaf-model", default=None, help="also measure the default tiling with this VMAF model (v1)")
    ap.add_argument("--skip-whole", action="store_true", help="leave the whole-frame runs out")
    args = ap.parse_args()
    print(describe_machine())
    for size in args.sizes:
        w, h = map(int, size.split("x"))
        ref, dist = make_pair(w, h, args.frames)
        common = [str(ref), str(dist), "--device", args.device]
        auto_mib, auto_s = peak(common)
        line = f"{size}, {args.frames} frames, vmaf_pre on {args.device}: automatic tiling {auto_mib:,.0f} MiB " \
               f"({auto_s:.1f} s)"
        if not args.skip_whole:
            whole_mib, whole_s = peak([*common, "--tilesize", "0"])
            line += f"; whole frames {whole_mib:,.0f} MiB ({whole_s:.1f} s)"
        if args.vmaf_model:
            v1_mib, v1_s = peak([*common, "--vmaf-model", args.vmaf_model])
            line += f"; --vmaf-model {args.vmaf_model} {v1_mib:,.0f} MiB ({v1_s:.1f} s)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
