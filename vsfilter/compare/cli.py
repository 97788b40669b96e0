"""``python -m vsfilter.compare REF DIST``: score the distorted and the prefiltered stream with libvmaf."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m vsfilter.compare",
        description="Score DIST and vmaf_pre(DIST) against REF with libvmaf (VMAF, VMAF NEG, PSNR-Y, SSIM).")
    ap.add_argument("reference", nargs="?", help="reference video")
    ap.add_argument("distorted", nargs="?", help="distorted video")
    ap.add_argument("--demo", action="store_true", help="run on the embedded demo pair (no files needed)")
    ap.add_argument("--model", default="learned_filter_v1", help="pre-filter: registry id or .onnx path")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "openvino"])
    ap.add_argument("--precision", default="fp32", choices=["auto", "fp32", "fp16", "bf16", "int8"])
    ap.add_argument("--vmaf-model", default="vmaf_v0.6.1",
                    help="vmaf_v0.6.1 (default), vmaf_4k_v0.6.1, ... or a path to a libvmaf model file")
    ap.add_argument("--subsample", type=int, default=1, help="score every N-th frame")
    ap.add_argument("--threads", type=int, default=0, help="libvmaf and filter threads (0 = automatic)")
    ap.add_argument("--frames", type=int, help="score at most N frames")
    ap.add_argument("--no-scale", action="store_true", help="error instead of scaling a distorted stream of another size")
    ap.add_argument("--force", action="store_true", help="compare frame by frame even if the frame rates differ")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the full result as JSON (docs/compare.md)")
    ap.add_argument("--csv", type=Path, metavar="OUT", help="write per-frame scores as CSV")
    ap.add_argument("--plot", type=Path, metavar="OUT.png", help="plot per-frame VMAF and VMAF NEG (matplotlib)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    return ap


def _fail(message: str) -> int:
    print(f"compare: error: {message}", file=sys.stderr)
    return 2


def _check_output(path: Path | None, flag: str) -> str | None:
    if path is None:
        return None
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return f"{flag} {path} is a directory"
    if not parent.is_dir():
        return f"{flag} {path}: folder {parent} does not exist"
    if not os.access(parent, os.W_OK):
        return f"{flag} {path}: folder {parent} is not writable"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import report  # imports vapoursynth; after argparse so --help stays instant
    from .core import CompareError, compare

    if args.demo:
        from .demo import demo_pair

        if args.reference or args.distorted:
            return _fail("--demo takes no input files")
        args.reference, args.distorted = demo_pair()
    elif not (args.reference and args.distorted):
        return _fail("give REF and DIST video files (or --demo)")
    for path, flag in ((args.json, "--json"), (args.csv, "--csv"), (args.plot, "--plot")):
        problem = _check_output(path, flag)
        if problem:
            return _fail(problem)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return _fail("--plot needs matplotlib: pip install 'vsfilter[plot]'")

    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="compare", unit="frame", file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        result = compare(args.reference, args.distorted, model=args.model, device=args.device,
                         precision=args.precision, vmaf_model=args.vmaf_model, subsample=args.subsample,
                         threads=args.threads, frames=args.frames, scale=not args.no_scale, force=args.force,
                         progress=progress)
    except CompareError as exc:
        return _fail(str(exc))
    finally:
        if bar is not None:
            bar.close()
    try:
        if args.json:
            report.write_json(result, args.json)
        if args.csv:
            report.write_csv(result, args.csv)
        if args.plot:
            report.write_plot(result, args.plot)
    except OSError as exc:
        return _fail(f"cannot write output: {exc.strerror or exc}")
    if not args.quiet:
        print(report.table(result))
    elif result.warnings:
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
