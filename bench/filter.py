"""Benchmark vmaf_pre against vs-mlrt's ort.Model / ov.Model and a bare ONNX Runtime loop.

    .venv/bin/python bench/filter.py [--sizes 1280x720 1920x1080] [--frames 24] [--model learned_filter_v1]
                                     [--device cuda]

Everything runs in one process on the same model and the same clip, so the printed ratios compare
like with like. Peers (ort.Model, ov.Model) take float input, so their clip is the same YUV420P8 clip's
luma turned to GRAYS with std.Expr (the step a user of those plugins needs); vmaf_pre takes the 8-bit
clip as it is. A benchmark, not a test: it asserts nothing.

With ``--device cuda`` the peer is PyTorch itself on the same weights: a plain inference loop in fp16
(and fp32 with TF32 off), cuDNN, channels_last, the frame already on the GPU and never leaving it --
the figure the GPU issue asks vmaf_pre to beat end to end, from a VapourSynth clip of 8-bit frames in
host memory to filtered frames back in host memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import vapoursynth as vs  # noqa: E402

import vsfilter  # noqa: E402  (imports OpenVINO before vs.core loads vs-mlrt-ov's copy)

from bench_env import describe_machine  # noqa: E402

core = vs.core


def content_clip(width: int, height: int, frames: int) -> vs.VideoNode:
    """A YUV420P8 clip of textured content (speed does not depend on content, realism does not hurt)."""
    blank = core.std.BlankClip(format=vs.YUV420P8, width=width, height=height, length=1)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    luma = np.clip((np.sin(x / 37) + np.cos(y / 23)) * 50 + 128 + rng.normal(0, 12, (height, width)), 0, 255)

    def fill(n, f):
        out = f.copy()
        np.copyto(np.asarray(out[0]), luma.astype(np.uint8))
        return out

    return blank.std.ModifyFrame(blank, fill).std.Loop(frames)


def fps_of(clip: vs.VideoNode, warmup: int = 2) -> float:
    for _ in clip[:warmup].frames(close=True):  # in parallel: every stream/session gets built
        pass
    start = time.perf_counter()
    for _ in clip[warmup:].frames(close=True):
        pass
    return (clip.num_frames - warmup) / (time.perf_counter() - start)


def bare_ort_fps(model_path: str, width: int, height: int, frames: int) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = len(os.sched_getaffinity(0))
    session = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 1, height, width), dtype=np.float32)
    session.run(None, {name: x})
    start = time.perf_counter()
    for _ in range(frames - 2):
        session.run(None, {name: x})
    return (frames - 2) / (time.perf_counter() - start)


def torch_peer_fps(spec, width: int, height: int, frames: int, half: bool) -> float:
    """PyTorch on the same weights: channels_last, cuDNN (benchmark), input resident on the GPU."""
    import torch

    from vsfilter.backends.torch_cuda import build_module

    dtype = torch.float16 if half else torch.float32
    module = build_module(spec.path, spec.input_name, spec.output_name).to("cuda", dtype)
    x = torch.rand(1, 1, height, width, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False,
                                                            allow_tf32=False):
        for _ in range(5):
            module(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(frames):
            module(x)
        torch.cuda.synchronize()
    return frames / (time.perf_counter() - start)


def cuda_rows(rows: dict, run, clip, spec, width: int, height: int, frames: int) -> None:
    from vsfilter.backends import ORT_CUDA, TORCH_CUDA, cuda_available, torch_cuda_available

    if torch_cuda_available():
        rows["PyTorch fp16 (GPU-resident loop)"] = torch_peer_fps(spec, width, height, max(frames, 100), True)
        rows["PyTorch fp32 (GPU-resident loop)"] = torch_peer_fps(spec, width, height, max(frames, 100), False)
        for precision in ("fp32", "fp16"):
            for streams in (2, 4):
                run(f"vmaf_pre TORCH_CUDA {precision} streams={streams}",
                    partial(vsfilter.vmaf_pre, clip, model=spec, backend=TORCH_CUDA(num_streams=streams),
                            precision=precision))
    if cuda_available():
        for precision in ("fp32", "fp16"):
            run(f"vmaf_pre ORT_CUDA {precision}",
                partial(vsfilter.vmaf_pre, clip, model=spec, backend=ORT_CUDA(num_streams=2), precision=precision))


def print_cuda(rows: dict, width: int, height: int, frames: int) -> None:
    import torch

    peer = rows.get("PyTorch fp16 (GPU-resident loop)")
    print(f"\n{width}x{height}, {frames} frames, {torch.cuda.get_device_name(0)}")
    for label, fps in rows.items():
        ratio = f"{fps / peer:5.2f}x PyTorch fp16 loop" if peer else ""
        print(f"  {label:40s} {fps:8.2f} fps   {ratio}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1280x720", "1920x1080"])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--model", default="learned_filter_v1")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: ORT CUDA fp32/fp16 rows instead of the CPU peers")
    args = ap.parse_args()
    spec = vsfilter.resolve_model(args.model)
    path = str(spec.path)
    print(f"model {spec.id} ({spec.sha256[:12]}), {describe_machine()}, VapourSynth threads {core.num_threads}")
    for size in args.sizes:
        width, height = map(int, size.split("x"))
        clip = content_clip(width, height, args.frames)
        grays = core.std.Expr(clip.std.ShufflePlanes(0, vs.GRAY), "x 255 /", format=vs.GRAYS)
        rows: dict[str, float] = {}

        def run(label: str, make, rows=rows) -> None:
            try:
                rows[label] = fps_of(make(), warmup=2 if args.device == "cpu" else 24)
            except (vs.Error, AttributeError) as exc:
                print(f"  {label}: skipped ({str(exc).strip().splitlines()[-1][:120]})")

        if args.device == "cuda":
            cuda_rows(rows, run, clip, spec, width, height, args.frames)
            print_cuda(rows, width, height, args.frames)
            continue
        else:
            run("ort.Model fp32 (vs-mlrt)", partial(lambda g: core.ort.Model(g, network_path=path), grays))
            for streams in (1, 2):
                run(f"ov.Model num_streams={streams} (vs-mlrt)",
                    partial(lambda g, s: core.ov.Model(g, network_path=path, num_streams=s), grays, streams))
            rows["bare ORT session.run loop"] = bare_ort_fps(path, width, height, args.frames)
            run("vmaf_pre ORT fp32", partial(vsfilter.vmaf_pre, clip, model=path, device="cpu"))
            for precision in ("fp32", "bf16", "int8"):
                run(f"vmaf_pre OpenVINO {precision}",
                    partial(vsfilter.vmaf_pre, clip, model=args.model, device="openvino", precision=precision))
        print(f"\n{width}x{height}, {args.frames} frames")
        ort_peer = rows.get("ort.Model fp32 (vs-mlrt)")
        ov_peers = [v for k, v in rows.items() if k.startswith("ov.Model")]
        ov_best = max(ov_peers) if ov_peers else None
        bare = rows.get("bare ORT session.run loop")
        for label, fps in rows.items():
            ratios = []
            if ort_peer:
                ratios.append(f"{fps / ort_peer:5.2f}x ort.Model")
            if ov_best:
                ratios.append(f"{fps / ov_best:5.2f}x best ov.Model")
            if bare and label == "vmaf_pre ORT fp32":
                ratios.append(f"{fps / bare:5.2f}x bare ORT loop")
            print(f"  {label:34s} {fps:7.2f} fps   " + "   ".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
