"""Benchmark ``python -m vsfilter.rd``: 8 encodes (an x264 and an x265 ladder of 4) scored on a local Dask
cluster of 1 worker and of 2 single-threaded workers, in one run.

    .venv/bin/python bench/rd.py [--frames 60] [--size 640x360] [--device cpu]

Prints the machine, both wall times and the throughput ratio (goal >= 1.8 on 2 cores). Each run gets a
fresh cache folder, so nothing is resumed; the reference and its ladders are made once (not timed).
A benchmark: it prints and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

import vsfilter  # noqa: E402,F401  (imports OpenVINO before vs.core)
from vsfilter.cache import cache_dir  # noqa: E402

from bench_env import describe_machine  # noqa: E402
from media import encode_pan  # noqa: E402

LADDERS = ("libx264:24,30,36,42", "libx265:24,30,36,42")


def make_reference(frames: int, width: int, height: int) -> Path:
    ref = cache_dir("bench", f"rd_{width}x{height}_{frames}") / "ref.mkv"
    if not ref.exists():
        rng = np.random.default_rng(9)
        base = (np.kron(rng.random((height // 4 + 40, width // 4 + 40)), np.ones((4, 4))) * 180 + 30).astype(np.uint8)
        encode_pan(ref, base, frames, "ffv1", {}, lambda n: (n, n // 2), width, height)
    return ref


def run(ref: Path, encodes: list[str], workers: int, device: str) -> float:
    """Wall seconds of rd on ``encodes`` (the x264 four, then --against the x265 four), in a fresh cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "VSFILTER_CACHE_DIR": cache}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vsfilter.rd", str(ref), *encodes[:4], "--against", *encodes[4:],
                        "--workers", str(workers), "--device", device, "--model", "learned_filter_codec_v2",
                        "--quiet"], check=True, env=env)
        return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    ref = make_reference(args.frames, width, height)
    from vsfilter.rd.ladder import encode_one, encode_paths, parse_ladder

    encodes = []
    for text in LADDERS:
        ladder = parse_ladder(text)
        for crf, path in zip(ladder.crfs, encode_paths(ref, ladder)):
            encodes.append(encode_one(str(ref), ladder.encoder, crf, str(path)))
    run(ref, encodes, 1, args.device)  # warm: indexes, models, page cache
    one = run(ref, encodes, 1, args.device)
    two = run(ref, encodes, 2, args.device)
    print(describe_machine())
    print(f"rd: 8 encodes ({', '.join(LADDERS)}) of a {args.size} reference, {args.frames} frames, "
          f"vmaf_pre {args.device}")
    print(f"  1 worker : {one:6.1f} s")
    print(f"  2 workers: {two:6.1f} s   throughput ratio {one / two:.2f} (goal >= 1.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
