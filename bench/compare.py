"""Benchmark ``python -m vsfilter.compare`` against the stock tools run one after the other on a 1080p pair.

    .venv/bin/python bench/compare.py [--frames 60] [--device auto] [--precision fp32]

Stock tools: (1) the imageio-ffmpeg CLI's libvmaf on the raw pair, then (2) ``vspipe`` rendering
vmaf_pre(dist) into that ffmpeg's libvmaf (examples/vmaf_pipeline.sh's command). Both use libvmaf with
the machine's core count as ``n_threads``, and the same vmaf_pre device and precision as compare.
Prints both wall times and the ratio compare / stock (goal <= 0.8), compare scoring what the stock
tools score (no CAMBI); then what CAMBI on both streams (compare's default) costs: the time with it
over the time without, in the same run; then what VMAF v1 costs (``--vmaf-model v1``: measured at 10
bits, CAMBI inside the model) and both generations side by side (``vmaf_v0.6.1,v1``), over the
default v0.6.1, in the same run. ``--skip-stock`` leaves the stock tools out. The pair is generated once.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

import vsfilter  # noqa: E402,F401  (imports OpenVINO before vs.core)
from vsfilter.backends import openvino_runtime_library  # noqa: E402
from vsfilter.cache import cache_dir  # noqa: E402
from vsfilter.compare import compare  # noqa: E402

from media import encode_pan  # noqa: E402


def make_pair(frames: int) -> tuple[Path, Path]:
    root = cache_dir("bench")
    ref, dist = root / f"pair1080_{frames}_ref.mkv", root / f"pair1080_{frames}_dist.mp4"
    if ref.exists() and dist.exists():
        return ref, dist
    rng = np.random.default_rng(3)
    base = np.kron(rng.random((200, 340)), np.ones((6, 6)))
    k = np.array([1, 4, 6, 4, 1.0]) / 16
    base = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, base)
    base = (base * 180 + 30).astype(np.uint8)
    for path, codec, options in ((ref, "ffv1", {}), (dist, "libx264", {"crf": "36", "preset": "veryfast"})):
        encode_pan(path, base, frames, codec, options, lambda n: (2 * n, n))
    return ref, dist


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--skip-stock", action="store_true", help="time compare's own variants only")
    args = ap.parse_args()
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    ref, dist = make_pair(args.frames)
    cores = len(os.sched_getaffinity(0))
    vspipe = Path(sys.executable).with_name("vspipe")
    log = cache_dir("bench") / "stock.json"
    retime = "settb=AVTB,setpts=N/FRAME_RATE/TB"
    # In an ffmpeg filtergraph the nested ':' needs two levels of escaping ('\\:' reaches libvmaf as ':').
    vmaf = (f"libvmaf=model=version=vmaf_v0.6.1\\\\:name=vmaf|version=vmaf_v0.6.1neg\\\\:name=vmaf_neg:"
            f"feature=name=psnr|name=float_ssim:n_threads={cores}:log_fmt=json:log_path={log}:shortest=1")
    raw = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(dist), "-i", str(ref), "-lavfi",
           f"[0:v]{retime}[d];[1:v]{retime}[r];[d][r]{vmaf}", "-f", "null", "-"]
    render = [str(vspipe), "-c", "y4m", "-a", f"src={dist}", "-a", f"device={args.device}", "-a",
              f"precision={args.precision}", str(ROOT / "examples" / "prefilter.vpy"), "-"]
    score = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", "-", "-i", str(ref), "-lavfi",
             f"[0:v]{retime}[d];[1:v]{retime}[r];[d][r]{vmaf}", "-f", "null", "-"]
    pipe = f"{shlex.join(render)} 2>{shlex.quote(str(log.with_suffix('.vspipe.log')))} | {shlex.join(score)}"

    # As examples/vmaf_pipeline.sh: vspipe needs the openvino runtime preloaded to use device=openvino
    # next to vapoursynth-mlrt-ov (it loads plugins before the script runs).
    env = dict(os.environ)
    if openvino_runtime_library():
        env["LD_PRELOAD"] = openvino_runtime_library()
    start = time.perf_counter()
    if not args.skip_stock:
        subprocess.run(raw, check=True)
        subprocess.run(pipe, shell=True, check=True, env=env)
    stock = time.perf_counter() - start

    start = time.perf_counter()
    result = compare(ref, dist, device=args.device, precision=args.precision, cambi=False)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    compare(ref, dist, device=args.device, precision=args.precision, cambi=True)
    with_cambi = time.perf_counter() - start
    v1_times = {}
    for spec in ("v1", "vmaf_v0.6.1,v1"):
        start = time.perf_counter()
        compare(ref, dist, device=args.device, precision=args.precision, cambi=True, vmaf_model=spec)
        v1_times[spec] = time.perf_counter() - start
    from bench_env import describe_machine

    print(describe_machine())
    print(f"1920x1080, {result.frames} frames, vmaf_pre {result.model['backend']} {result.model['precision']}, "
          f"{cores} cores")
    if not args.skip_stock:
        print(f"  stock tools, one after the other (ffmpeg libvmaf raw; vspipe | ffmpeg libvmaf): {stock:6.2f} s")
    print(f"  python -m vsfilter.compare (both scores, pipelined):                          {ours:6.2f} s")
    if not args.skip_stock:
        print(f"  ratio compare / stock: {ours / stock:.2f} (goal <= 0.8)")
    print(f"  compare with CAMBI on both streams (the default): {with_cambi:6.2f} s = {with_cambi / ours:.2f}x "
          "without")
    for spec, seconds in v1_times.items():
        print(f"  --vmaf-model {spec} (with CAMBI): {seconds:6.2f} s = {seconds / with_cambi:.2f}x the default "
              "vmaf_v0.6.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
