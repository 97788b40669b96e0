"""What vsfilter's command-line tools share: one-line errors, safe output paths, and clean interruption.

- Bad input: ``<prog>: error: <one line>`` on stderr, exit code 2.
- Outputs: refused when they resolve (symlinks, ``..``, hard links) to an input or to another output,
  when their folder is missing or unwritable, or when they name a folder.
- Ctrl-C (SIGINT) and SIGTERM at any moment: ``<prog>: interrupted`` on stderr and exit 130 / 143
  within about a second; whatever was being written is discarded (writes are atomic), temporary files
  are removed by the code that made them, and VapourSynth's worker threads are not waited for.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import UsageError

__all__ = ["Terminated", "leave_on_interrupt_while_loading",
           "ProgressBar", "write_outputs", "fail", "check_outputs", "cli_main", "OneLineParser",
           "positive_int", "non_negative_int", "add_scoring_options", "parse_args", "options_from_args",
           "raw_from_args", "raw_for", "flag_hint", "UsageError"]


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt is for SIGINT."""


def fail(prog: str, message: str) -> int:
    """Print ``<prog>: error: <message>`` (one line) and return exit code 2."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def _identity(path: Path) -> tuple:
    """What makes two paths the same file: (device, inode) when it exists, else the resolved path."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", str(path.resolve()))


def check_outputs(inputs: Iterable[tuple[str, Path]], outputs: Iterable[tuple[str, Path | None]]) -> str | None:
    """Why the outputs cannot be written as given (one line), or None.

    Args:
        inputs: (what, path) of every input ("REF", "DIST", "MANIFEST", ...).
        outputs: (flag, path or None) of every output.
    """
    seen: dict[tuple, str] = {_identity(Path(p)): what for what, p in inputs}
    for flag, path in outputs:
        if path is None:
            continue
        path = Path(path)
        ident = _identity(path)
        if ident in seen:
            return f"{flag} {path} is the same file as {seen[ident]}; choose another output path"
        seen[ident] = f"{flag} {path}"
        if path.is_dir():
            return f"{flag} {path} is a folder; give a file name"
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            return f"{flag} {path}: folder {parent} does not exist"
        if not os.access(parent, os.W_OK):
            return f"{flag} {path}: folder {parent} is not writable"
    return None


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _loading_tool() -> str | None:
    """The tool ``python -m vsfilter.<tool>`` starts, while Python still imports its modules (``sys.argv[0]``
    is ``-m`` until the module is found); None otherwise."""
    argv = getattr(sys, "orig_argv", [])
    if sys.argv[:1] != ["-m"] or "-m" not in argv[:-1]:
        return None
    module = argv[argv.index("-m") + 1]
    return module.split(".")[1] if module.startswith("vsfilter.") and module.count(".") == 1 else None


def _leave_while_loading(signum, frame) -> None:
    _leave(_loading_tool() or "vsfilter", 128 + signum)


def leave_on_interrupt_while_loading() -> None:
    """Called first by ``import vsfilter``: while ``python -m vsfilter.<tool>`` is still importing (OpenVINO,
    VapourSynth, ONNX Runtime: a second or more on a loaded machine), Ctrl-C and SIGTERM print ``<tool>:
    interrupted`` and exit 130 / 143, as they do once :func:`cli_main` runs, instead of a traceback from
    inside an import. Does nothing for any other program that imports vsfilter."""
    if _loading_tool() is not None and threading_main():
        signal.signal(signal.SIGINT, _leave_while_loading)
        signal.signal(signal.SIGTERM, _leave_while_loading)


def cli_main(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a CLI ``main``: SIGTERM becomes :class:`Terminated`; an interruption prints one line and
    leaves the process at once with 130 (SIGINT) or 143 (SIGTERM)."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapped(argv: list[str] | None = None) -> int:
            previous = signal.signal(signal.SIGTERM, _raise_terminated) \
                if threading_main() else None
            if previous is _leave_while_loading:  # loaded: from here on Ctrl-C unwinds (temporary files go)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                previous = signal.SIG_DFL
            try:
                return main(argv)
            except KeyboardInterrupt:
                _leave(prog, 130)
            except Terminated:
                _leave(prog, 143)
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
            return 1  # pragma: no cover - _leave does not return

        return wrapped

    return wrap


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _leave(prog: str, code: int) -> None:
    """Exit now: VapourSynth's threads may still be rendering frames nobody will read."""
    print(f"{prog}: interrupted", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``<tool>: error: ...``) and exit code 2."""

    def __init__(self, tool: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tool = tool

    def error(self, message: str):
        raise SystemExit(fail(self.tool, message))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_scoring_options(ap: argparse.ArgumentParser) -> None:
    """The options compare and batch share: the pre-filter, how libvmaf scores, raw YUV geometry and
    the time alignment (:func:`options_from_args` turns them into a ``CompareOptions``)."""
    from .compare.vmaf_models import builtin_vmaf_models

    ap.add_argument("--model", default="learned_filter_v1",
                    help="pre-filter: registry id (learned_filter_v1, learned_filter_codec_v1, "
                         "learned_filter_codec_v2) or .onnx path")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "openvino"])
    ap.add_argument("--precision", default="fp32", choices=["auto", "fp32", "tf32", "fp16", "bf16", "int8"])
    ap.add_argument("--vmaf-model", default="vmaf_v0.6.1",
                    help=f"one of the linked libvmaf's models ({', '.join(builtin_vmaf_models())}), auto (the v0 4K "
                         "model for 3840-wide or 2160-high references), v1 (VMAF v1 for the reference: 1d5h_2160 "
                         "from 3840x2160, else 3d0h; _hfr from 47 fps; v1:phone = 5d0h), or a model file (.json); "
                         "add :phone to a v0 name for the phone model (vmaf_v0.6.1:phone); several, comma-separated, "
                         "side by side (vmaf_v0.6.1,v1). Default vmaf_v0.6.1")
    ap.add_argument("--no-10bit", action="store_true",
                    help="measure VMAF v1 at the inputs' bit depth (default: 8-bit inputs at 10 bits, as Netflix "
                         "specifies for v1)")
    ap.add_argument("--subsample", type=positive_int, default=1, help="score (and filter) every N-th frame")
    ap.add_argument("--tilesize", type=non_negative_int, default=None,
                    help="vmaf_pre tile size (default: automatic, bounded memory; 0 = whole frames)")
    ap.add_argument("--no-cambi", action="store_true", help="do not score banding (libvmaf's CAMBI)")
    time = ap.add_argument_group("time alignment")
    time.add_argument("--dist-offset", type=int, default=0, metavar="N",
                      help="pair distorted frame k+N with reference frame k (N < 0: the reference starts later)")
    time.add_argument("--find-offset", type=non_negative_int, nargs="?", const=5, default=None, metavar="MAX",
                      help="search offsets up to MAX frames each way (default 5) and use the best")
    raw = ap.add_argument_group("raw YUV inputs (.yuv files; the vmaf CLI's names)")
    for prefix, whose in (("", "every .yuv input"), ("dist-", "the distorted .yuv when it differs")):
        raw.add_argument(f"--{prefix}width", type=positive_int, help=f"frame width of {whose}")
        raw.add_argument(f"--{prefix}height", type=positive_int, help=f"frame height of {whose}")
        under = prefix.replace("-", "_")
        raw.add_argument(f"--{prefix}pixel-format", f"--{under}pixel_format", dest=f"{under}pixel_format",
                         choices=["420", "422", "444"], help=f"chroma layout of {whose} (default 420)")
        raw.add_argument(f"--{prefix}bitdepth", type=int, choices=[8, 10, 12, 16],
                         help=f"bits per sample of {whose} (default 8; above 8 little-endian)")
        raw.add_argument(f"--{prefix}fps", type=_fraction,
                         help=f"frame rate of {whose} (default: the other input's, else 24)")


def _fraction(text: str):
    from fractions import Fraction

    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate (25, 30000/1001, 23.976)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def raw_from_args(args: argparse.Namespace, distorted: bool = False):
    """The raw YUV geometry the flags give (the ``--dist-*`` ones win for the distorted input), or None
    when no width and height are given."""
    from .errors import SourceError
    from .reader.raw import RawFormat

    pick = {k: (getattr(args, f"dist_{k}", None) if distorted else None) or getattr(args, k)
            for k in ("width", "height", "pixel_format", "bitdepth", "fps")}
    if pick["width"] is None and pick["height"] is None:
        return None
    missing = [k for k in ("width", "height") if pick[k] is None]
    if missing:
        raise UsageError(f"raw YUV needs {' and '.join('--' + k for k in missing)} as well")
    try:
        return RawFormat(pick["width"], pick["height"], pick["pixel_format"] or "420", pick["bitdepth"] or 8,
                         pick["fps"])
    except SourceError as exc:
        raise UsageError(str(exc).removeprefix("raw YUV: ")) from None


def raw_for(args: argparse.Namespace, path: str, distorted: bool = False):
    """The raw geometry of an input when it is a ``.yuv`` file (a UsageError when the flags give none),
    else None."""
    from .reader.raw import is_raw_path

    if not is_raw_path(path):
        return None
    raw = raw_from_args(args, distorted)
    if raw is None:
        raise UsageError(f"{path} is raw YUV (no header): give its --width and --height (and --pixel-format, "
                         "--bitdepth unless 420 8-bit)")
    return raw


def options_from_args(args: argparse.Namespace, **extra):
    """The ``CompareOptions`` the shared flags (:func:`add_scoring_options`) give, with ``extra`` fields."""
    from .compare.options import CompareOptions

    return CompareOptions(model=args.model, device=args.device, precision=args.precision, vmaf_model=args.vmaf_model,
                          vmaf_10bit=not args.no_10bit, subsample=args.subsample, tilesize=args.tilesize,
                          cambi=not args.no_cambi,
                          dist_offset=args.dist_offset, find_offset=args.find_offset, **extra)


class ProgressBar:
    """A tqdm bar on stderr when it is a terminal and not ``quiet`` (else nothing); ``bar(done, total)``
    moves it, ``close()`` ends it."""

    def __init__(self, desc: str, quiet: bool, leave: bool = True) -> None:
        self._bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(desc=desc, unit="frame", file=sys.stderr, leave=leave)

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def write_outputs(prog: str, outputs: list[tuple[str, Path | None]], write: Callable[[str, Path], None]) -> int:
    """``write(flag, path)`` for each given output; 0, or the one-line error (exit code 2) of the first
    that cannot be written."""
    for flag, path in outputs:
        if path is None:
            continue
        try:
            write(flag, path)
        except OSError as exc:
            return fail(prog, f"cannot write {flag} {path}: {exc.strerror or exc}")
    return 0


def flag_hint(option: str, value: object) -> str:
    """How a CLI message names an option to pass: ``--dist-offset -3``."""
    return f"--{option.replace('_', '-')}" + ("" if value is None else f" {value}")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code of ``--help`` (0) or of a usage error (2)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
