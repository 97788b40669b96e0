"""``python -m vsfilter.rd REF ENCODE... [--against ENCODE...] [--encode ENCODER:CRF,...]``: what the
pre-filter saves in bits (BD-rate of the prefiltered against the raw stream on a ladder), and one
ladder against another, raw and prefiltered.

Exit codes: 0 done, 2 bad usage or a curve BD-rate rejects (one line naming the ladder and why),
130/143 interrupted.
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
    write_outputs,
)

__all__ = ["main", "build_parser"]

PROG = "rd"


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(PROG, prog="python -m vsfilter.rd",
                       description="BD-rate of the pre-filter on an encoder ladder, and of one ladder against "
                                   "another (raw and prefiltered), with libvmaf's metrics.")
    ap.add_argument("reference", help="reference video")
    ap.add_argument("encodes", nargs="*", metavar="ENCODE", help="the ladder: 4 or more encodes of REF")
    ap.add_argument("--against", nargs="+", default=[], metavar="ENCODE",
                    help="an anchor ladder (4+ encodes of REF): the ENCODE ladder's BD-rate against it")
    ap.add_argument("--encode", action="append", default=[], metavar="ENCODER:CRF,CRF,...",
                    help="make a ladder from REF (libx264, libx265, libsvtav1, libvpx-vp9; e.g. "
                         "libx264:22,27,32,37), kept in the user cache; a second --encode is the --against ladder")
    ap.add_argument("--scheduler", help="a running Dask scheduler (tcp://HOST:PORT); default: a local cluster")
    ap.add_argument("--workers", type=positive_int, help="local cluster worker processes (default: cores)")
    add_scoring_options(ap)
    ap.add_argument("--json", type=Path, metavar="OUT", help="write every encode's scores and the BD figures")
    ap.add_argument("--csv", type=Path, metavar="OUT", help="write one row per encode")
    ap.add_argument("--plot", type=Path, metavar="OUT.png|OUT.svg", help="the RD curves (matplotlib)")
    ap.add_argument("--report", type=Path, metavar="OUT.html", help="a self-contained HTML page")
    ap.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    return ap


@cli_main(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    import vsfilter  # noqa: F401  (openvino before vs.core)

    from ..errors import VsfilterError
    from .core import Ladder, check_ladder
    from .ladder import parse_ladder

    outputs = [("--json", args.json), ("--csv", args.csv), ("--plot", args.plot), ("--report", args.report)]
    try:
        if len(args.encode) > 2:
            raise UsageError("--encode makes at most two ladders (the second is the --against ladder)")
        made = [parse_ladder(text) for text in args.encode]
        given = [("encode", "ENCODE", args.encodes), ("against", "--against", args.against)]
        roles = [role for role, _, paths in given if paths]
        if made and len(made) + len(roles) > 2 or (len(made) == 2 and roles):
            raise UsageError("give at most two ladders: ENCODE... and --against ENCODE..., or --encode twice, "
                             "or one of each")
        if not args.encodes and not made:
            raise UsageError("give the ladder: 4 or more ENCODE files, or --encode ENCODER:CRF,CRF,...")
        ladders = [Ladder(role, f"{flag} ({len(paths)} encodes)" if role == "encode" else f"--against "
                          f"({len(paths)} encodes)", list(paths)) for role, flag, paths in given if paths]
        for ladder in ladders:
            check_ladder(ladder)
        for spec in made:
            if len(spec.crfs) < 4:
                raise UsageError(f"ladder {spec.name}: {len(spec.crfs)} CRF(s); BD-rate needs at least 4")
        inputs = [("REF", Path(args.reference))] + [("ENCODE", Path(p)) for lad in ladders for p in lad.paths]
        missing = next((p for _, p in inputs if not p.is_file()), None)
        if missing is not None:
            raise UsageError(f"{missing} does not exist")
        problem = check_outputs(inputs, outputs)
        if problem:
            raise UsageError(problem)
        if args.plot is not None or args.report is not None:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                raise UsageError("--plot and --report need matplotlib: pip install 'vsfilter[plot]'") from None
        raw = raw_for(args, args.reference)
        options = options_from_args(args)
        from ..compare.scoring import check_vmaf_model
        from ..models import resolve_model

        check_vmaf_model(options.vmaf_model)
        resolve_model(options.model)
    except UsageError as exc:
        return fail(PROG, str(exc))
    except VsfilterError as exc:
        return fail(PROG, str(exc))
    return _run(args, ladders, made, options, raw, outputs)


def _run(args, ladders, made, options, raw, outputs) -> int:
    from ..batch.runner import start_client
    from ..errors import VsfilterError
    from . import report
    from .core import make_ladder, run_rd

    progress = ProgressBar("rd", args.quiet)
    try:
        client, cluster = start_client(args.scheduler, args.workers)
    except VsfilterError as exc:
        return fail(PROG, str(exc))
    try:
        free = [role for role in ("encode", "against") if role not in {lad.role for lad in ladders}]
        for spec, role in zip(made, free):
            ladders.append(make_ladder(client, args.reference, spec, role, raw))
        ladders.sort(key=lambda lad: lad.role != "encode")
        result = run_rd(args.reference, ladders, options, client=client, raw=raw, progress=progress)
    except VsfilterError as exc:
        return fail(PROG, str(exc))
    finally:
        progress.close()
        client.close()
        if cluster is not None:
            cluster.close()
    if write_outputs(PROG, outputs, lambda flag, path: report.write(flag, result, path)):
        return 2
    if not args.quiet:
        print(report.table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
