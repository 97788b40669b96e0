"""``python -m vsfilter.compare REF DIST``: score the distorted and the prefiltered stream with libvmaf."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._cli import (
    OneLineParser,
    ProgressBar,
    UsageError,
    add_scoring_options,
    check_outputs,
    cli_main,
    fail,
    flag_hint,
    non_negative_int,
    options_from_args,
    parse_args,
    positive_int,
    raw_for,
    write_outputs,
)

__all__ = ["main", "build_parser"]

PROG = "compare"


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(
        PROG, prog="python -m vsfilter.compare",
        description="Score DIST and vmaf_pre(DIST) against REF with libvmaf (VMAF, VMAF NEG, PSNR-Y, SSIM).")
    ap.add_argument("reference", nargs="?", help="reference video")
    ap.add_argument("distorted", nargs="?", help="distorted video")
    ap.add_argument("--demo", action="store_true", help="run on the embedded demo pair (no files needed)")
    add_scoring_options(ap)
    ap.add_argument("--threads", type=non_negative_int, default=0,
                    help="libvmaf and filter threads (0 = automatic; 1 = everything on one core)")
    ap.add_argument("--frames", type=positive_int, help="score at most N frames")
    ap.add_argument("--no-scale", action="store_true",
                    help="error instead of scaling a distorted stream of another size")
    ap.add_argument("--force", action="store_true", help="compare frame by frame even if the frame rates differ")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the full result as JSON (docs/compare.md)")
    ap.add_argument("--csv", type=Path, metavar="OUT", help="write per-frame scores as CSV")
    ap.add_argument("--plot", type=Path, metavar="OUT.png", help="plot per-frame VMAF and VMAF NEG (matplotlib)")
    ap.add_argument("--report", type=Path, metavar="OUT.html",
                    help="a self-contained HTML page: scores, charts and the frames that changed most")
    ap.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    return ap


@cli_main(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    if args.demo and (args.reference or args.distorted):
        return fail(PROG, "--demo takes no input files")
    if not args.demo and not (args.reference and args.distorted):
        return fail(PROG, "give REF and DIST video files (or --demo)")
    outputs = [("--json", args.json), ("--csv", args.csv), ("--plot", args.plot), ("--report", args.report)]
    if not args.demo:
        problem = check_outputs([("REF", Path(args.reference)), ("DIST", Path(args.distorted))], outputs)
        if problem:
            return fail(PROG, problem)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return fail(PROG, "--plot needs matplotlib: pip install 'vsfilter[plot]'")
    return _run(args, outputs)


def _run(args: argparse.Namespace, outputs: list) -> int:
    import vsfilter  # noqa: F401  (openvino before vs.core, see vsfilter._openvino)

    from . import report
    from .core import CompareError, RateMismatchError, SizeMismatchError, open_pair, score_pair

    if args.demo:
        from .demo import demo_pair

        args.reference, args.distorted = demo_pair()
        problem = check_outputs([("REF", Path(args.reference)), ("DIST", Path(args.distorted))], outputs)
        if problem:
            return fail(PROG, problem)
    progress = ProgressBar("compare", args.quiet, leave=False)
    try:
        options = options_from_args(args, threads=args.threads, frames=args.frames, scale=not args.no_scale,
                                    force=args.force, reference_raw=raw_for(args, args.reference),
                                    distorted_raw=raw_for(args, args.distorted, distorted=True))
        pair = open_pair(args.reference, args.distorted, options, hint=flag_hint)
        result = score_pair(pair, progress)
    except UsageError as exc:
        return fail(PROG, str(exc))
    except RateMismatchError as exc:
        return fail(PROG, f"{exc.reason}; pass --force to compare frame by frame anyway")
    except SizeMismatchError as exc:
        return fail(PROG, f"{exc.reason}; drop --no-scale to scale the distorted stream")
    except CompareError as exc:
        return fail(PROG, _flags(str(exc)))
    finally:
        progress.close()

    def write(flag: str, path: Path) -> None:
        if flag == "--report":
            from .html import write_report

            write_report(result, pair, path)
        else:
            report.write(flag, result, path)

    if write_outputs(PROG, outputs, write):
        return 2
    if not args.quiet:
        print(report.table(result))
    elif result.warnings:
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 0


def _flags(message: str) -> str:
    """A library message as the CLI says it: the options it names become their flags."""
    for option, flag in (("(reference_raw)", "(--width, --height, --pixel-format, --bitdepth)"),
                         ("(distorted_raw)", "(--width, --height, --pixel-format, --bitdepth)")):
        message = message.replace(option, flag)
    return message


if __name__ == "__main__":
    sys.exit(main())
