"""Benchmark vsfilter.source against BestSource (``bs.VideoSource``) on 1080p H.264.

    .venv/bin/python bench/source.py [--minutes 5] [--sequential 600] [--random 200]

Prints, for both sources in one run: time from open to the first frame (no cached index), sequential
decode fps, and random-access fps over a shuffled 200-frame order, with ratios. Then what the quantizer
props cost (vsfilter.source exports the decoder's QP side data on every frame: ``QPMean``, ``QPMap``,
...): PyAV decoding the same frames with and without ``export_side_data=venc_params``, and the props
built from it, in the same run. The test clip (1080p25 H.264 with B-frames, ``--minutes`` long) is
generated once into the user cache dir.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import vapoursynth as vs  # noqa: E402

import vsfilter  # noqa: E402
from vsfilter.cache import cache_dir  # noqa: E402

from media import encode_pan  # noqa: E402


def make_clip(minutes: float) -> Path:
    path = cache_dir("bench") / f"pan_1080p25_{minutes:g}min.mp4"
    if path.exists():
        return path
    frames = int(minutes * 60 * 25)
    rng = np.random.default_rng(1)
    base = np.kron(rng.random((300, 500)), np.ones((8, 8)))  # a large blocky landscape, panned across
    base = (base * 180 + 30).astype(np.uint8)
    print(f"encoding a {minutes:g}-minute 1080p test clip once ({frames} frames) ...", file=sys.stderr)
    encode_pan(path, base, frames, "libx264", {"preset": "ultrafast", "x264-params": "bframes=3:keyint=50"},
               lambda n: ((n * 3) % (base.shape[1] - 1920), (n // 7) % (base.shape[0] - 1080)))
    return path


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--sequential", type=int, default=600, help="frames decoded in order")
    ap.add_argument("--random", type=int, default=200, help="frames in the shuffled order")
    args = ap.parse_args()
    path = make_clip(args.minutes)
    core = vs.core
    if not hasattr(core, "bs"):
        print("vapoursynth-bestsource is not installed (pip install 'vsfilter[dev]')", file=sys.stderr)
        return 2
    openers = {
        "vsfilter.source": lambda: vsfilter.source(path, cache=False),
        "  quantizer=False": lambda: vsfilter.source(path, cache=False, quantizer=False),
        "bs.VideoSource": lambda: core.bs.VideoSource(str(path), cachemode=0),
    }
    rows = {}
    for name, open_clip in openers.items():
        def open_and_first(open_clip=open_clip):
            clip = open_clip()
            clip.get_frame(0)
            return clip

        clip, first = timed(open_and_first)
        n_seq = min(args.sequential, clip.num_frames)
        _, t_seq = timed(lambda c=clip, k=n_seq: [None for _ in c[:k].frames(close=True)])
        order = random.Random(5).sample(range(clip.num_frames), min(args.random, clip.num_frames))
        fresh = open_clip()
        _, t_rand = timed(lambda c=fresh, o=order: [c.get_frame(n) for n in o])
        rows[name] = {"first": first, "seq": n_seq / t_seq, "rand": len(order) / t_rand, "frames": clip.num_frames}
    ours, peer = rows["vsfilter.source"], rows["bs.VideoSource"]
    print(f"{path.name}: {ours['frames']} frames (BestSource: {peer['frames']})")
    print(f"{'':18s} {'open->frame 0':>14s} {'sequential':>12s} {'random':>10s}")
    for name, r in rows.items():
        print(f"{name:18s} {r['first']:12.2f} s {r['seq']:8.1f} fps {r['rand']:6.1f} fps")
    print(f"ratios (vsfilter / BestSource): first frame {peer['first'] / ours['first']:.1f}x sooner, "
          f"sequential {ours['seq'] / peer['seq']:.2f}x, random access {ours['rand'] / peer['rand']:.2f}x")
    bare = rows["  quantizer=False"]
    print(f"the QP props (the default) cost: sequential {ours['seq'] / bare['seq']:.2f}x, random access "
          f"{ours['rand'] / bare['rand']:.2f}x of source(quantizer=False)")
    side_data_cost(path, args.sequential)
    return 0


def side_data_cost(path: Path, frames: int) -> None:
    """Decode ``frames`` frames with PyAV with and without the quantizer side data (and build the props)."""
    import av
    from av.sidedata.sidedata import Type

    from vsfilter.quantizer import side_data_props

    def decode(export: bool, props: bool) -> float:
        start = time.perf_counter()
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_type = "AUTO"
            if export:
                stream.codec_context.options = {"export_side_data": "venc_params"}
            for n, frame in enumerate(container.decode(stream)):
                if props:
                    side_data_props(frame.side_data.get(Type.VIDEO_ENC_PARAMS), frame.width)
                if n + 1 >= frames:
                    break
        return frames / (time.perf_counter() - start)

    plain, exported, with_props = decode(False, False), decode(True, False), decode(True, True)
    print(f"quantizer side data, PyAV decoding {frames} frames: {plain:.1f} fps without, {exported:.1f} fps "
          f"exported ({exported / plain:.3f}x), {with_props:.1f} fps with the QP props built "
          f"({with_props / plain:.3f}x)")


if __name__ == "__main__":
    sys.exit(main())
