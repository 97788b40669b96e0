"""``python -m vsfilter.batch MANIFEST --out DIR``: many pairs and long titles on a Dask cluster.

Exit codes: 0 every pair scored, 1 some pairs failed (each with its one-line error in summary.csv),
2 bad usage or manifest, 130/143 interrupted.
"""

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
    options_from_args,
    parse_args,
    positive_int,
    raw_for,
    raw_from_args,
)

__all__ = ["main"]

PROG = "batch"


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(PROG, prog="python -m vsfilter.batch",
                 description="Score many (reference, distorted) pairs with vsfilter.compare on a Dask cluster.")
    ap.add_argument("manifest", type=Path, help="CSV with reference,distorted[,id] columns, or JSON Lines (.jsonl)")
    ap.add_argument("--out", type=Path, required=True, help="output folder: <id>.json per pair, summary.csv/png")
    ap.add_argument("--scheduler", help="a running Dask scheduler (tcp://HOST:PORT); default: a local cluster")
    ap.add_argument("--workers", type=positive_int, help="local cluster worker processes (default: cores)")
    ap.add_argument("--chunk-frames", type=positive_int, default=2000,
                    help="split longer pairs into chunks of N frames")
    add_scoring_options(ap)
    ap.add_argument("--report", action="store_true", help="also an HTML page per pair and an index.html")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


@cli_main(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    import vsfilter  # noqa: F401  (openvino before vs.core)

    from ..compare.scoring import check_vmaf_model
    from ..errors import VsfilterError
    from ..models import resolve_model
    from .manifest import ManifestError, read_manifest
    from .runner import run_batch, start_client
    from .tasks import Settings

    try:
        pairs = read_manifest(args.manifest)
    except ManifestError as exc:
        return fail(PROG, str(exc))
    if args.out.exists() and not args.out.is_dir():
        return fail(PROG, f"--out {args.out} is a file; give a folder")
    try:
        check_vmaf_model(args.vmaf_model)
        raw, dist_raw = raw_from_args(args), raw_from_args(args, distorted=True)
        for p in pairs:  # every .yuv needs its geometry
            raw_for(args, p.reference)
            raw_for(args, p.distorted, distorted=True)
    except UsageError as exc:
        return fail(PROG, str(exc))
    except VsfilterError as exc:
        return fail(PROG, str(exc).replace("unknown VMAF model", "unknown --vmaf-model"))
    outputs = [("--out", args.out / f"{p.id}.json") for p in pairs] + [("--out", args.out / "summary.csv")]
    inputs = [("MANIFEST", args.manifest)] + [(f"pair {p.id}", Path(f)) for p in pairs
                                              for f in (p.reference, p.distorted)]
    args.out.mkdir(parents=True, exist_ok=True)
    problem = check_outputs(inputs, outputs)
    if problem:
        return fail(PROG, problem.replace("--out ", "output "))
    try:
        options = options_from_args(args)
        resolve_model(options.model)
        client, cluster = start_client(args.scheduler, args.workers)
    except VsfilterError as exc:
        return fail(PROG, str(exc))
    settings = Settings(options, args.chunk_frames, raw, dist_raw)
    try:
        outcomes = _run(args, pairs, settings, client, run_batch)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    failed = [o for o in outcomes if o.status == "error"]
    if not args.quiet:
        print(f"{len(outcomes) - len(failed)} of {len(outcomes)} pairs scored "
              f"({sum(o.status == 'resumed' for o in outcomes)} from an earlier run); {args.out / 'summary.csv'}")
    return 1 if failed else 0


def _run(args, pairs, settings, client, run_batch) -> list:
    from .summary import write_index, write_summary_csv, write_summary_png

    progress = ProgressBar("batch", args.quiet)
    if not args.quiet and client.dashboard_link and _serves_dashboard():
        print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)

    def on_pair(outcome) -> None:
        if outcome.status == "error" and not args.quiet:
            print(f"{outcome.pair.id}: error: {outcome.error}", file=sys.stderr)

    try:
        outcomes = run_batch(pairs, args.out, settings, client=client, report=args.report, progress=progress,
                             on_pair=on_pair)
    finally:
        progress.close()
    write_summary_csv(outcomes, args.out / "summary.csv")
    if not write_summary_png(outcomes, args.out / "summary.png") and not args.quiet:
        print("note: summary.png needs matplotlib (pip install 'vsfilter[plot]')", file=sys.stderr)
    if args.report:
        write_index(outcomes, args.out / "index.html")
    return outcomes


def _serves_dashboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


if __name__ == "__main__":
    sys.exit(main())
