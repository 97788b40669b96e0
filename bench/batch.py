"""Benchmark ``python -m vsfilter.batch``: scale-out over workers, and the engine's overhead.

    .venv/bin/python bench/batch.py [--pairs 8] [--frames 60] [--size 640x360] [--device cpu]

1. The same 8 pairs on a local Dask cluster of 1 worker and of 2 single-threaded workers: throughput
   ratio (goal >= 1.8 on 2 cores: near-linear scale-out).
2. The engine's overhead: batch with one worker against ``vsfilter.compare`` on the same pairs one
   after another in this process, with the same threads (1: what a single-threaded worker gets);
   goal <= 5% slower. compare with all cores is printed too, for scale.
A benchmark: it prints and asserts nothing. The pairs are generated once into the user cache dir.
"""

from __future__ import annotations

import argparse
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


def make_pairs(count: int, frames: int, width: int, height: int) -> list[tuple[Path, Path]]:
    root = cache_dir("bench", f"batch_{width}x{height}_{frames}")
    rng = np.random.default_rng(5)
    pairs = []
    for i in range(count):
        ref, dist = root / f"ref{i}.mkv", root / f"dist{i}.mp4"
        if not (ref.exists() and dist.exists()):
            base = np.kron(rng.random((height // 4 + 40, width // 4 + 40)), np.ones((4, 4)))
            base = (base * 180 + 30).astype(np.uint8)
            x264 = {"crf": str(30 + i), "preset": "veryfast"}
            for path, codec, options in ((ref, "ffv1", {}), (dist, "libx264", x264)):
                encode_pan(path, base, frames, codec, options, lambda n: (n, n // 2), width, height)
        pairs.append((ref, dist))
    return pairs


def run_batch_cli(manifest: Path, out: Path, workers: int, device: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vsfilter.batch", str(manifest), "--out", str(out), "--workers",
                    str(workers), "--device", device, "--quiet"], check=True)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    pairs = make_pairs(args.pairs, args.frames, width, height)
    print(describe_machine())
    from vsfilter.compare import compare

    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "pairs.csv"
        manifest.write_text("reference,distorted\n" + "".join(f"{r},{d}\n" for r, d in pairs))
        one = run_batch_cli(manifest, Path(tmp) / "w1", 1, args.device)
        two = run_batch_cli(manifest, Path(tmp) / "w2", 2, args.device)
    start = time.perf_counter()
    for ref, dist in pairs:
        compare(ref, dist, device=args.device, threads=1)
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    for ref, dist in pairs:
        compare(ref, dist, device=args.device)
    all_cores = time.perf_counter() - start
    print(f"{args.pairs} pairs of {width}x{height}, {args.frames} frames, vmaf_pre on {args.device}")
    print(f"  batch, 1 worker (1 thread):                     {one:7.2f} s")
    print(f"  batch, 2 workers (1 thread each):               {two:7.2f} s   throughput ratio {one / two:.2f} "
          "(goal >= 1.8)")
    print(f"  compare one after another, threads=1:           {sequential:7.2f} s   batch 1 worker / compare "
          f"{one / sequential:.3f} (goal <= 1.05)")
    print(f"  compare one after another, all cores:           {all_cores:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
