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

__all__ = ["Terminated", "fail", "check_outputs", "cli_main", "OneLineParser", "positive_int", "non_negative_int",
           "add_scoring_options", "parse_args"]


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


def cli_main(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a CLI ``main``: SIGTERM becomes :class:`Terminated`; an interruption prints one line and
    leaves the process at once with 130 (SIGINT) or 143 (SIGTERM)."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapped(argv: list[str] | None = None) -> int:
            previous = signal.signal(signal.SIGTERM, _raise_terminated) \
                if threading_main() else None
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
    """The options compare and batch share: the pre-filter and how libvmaf scores."""
    ap.add_argument("--model", default="learned_filter_v1",
                    help="pre-filter: registry id (learned_filter_v1, learned_filter_codec_v1) or .onnx path")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "openvino"])
    ap.add_argument("--precision", default="fp32", choices=["auto", "fp32", "tf32", "fp16", "bf16", "int8"])
    ap.add_argument("--vmaf-model", default="vmaf_v0.6.1",
                    help="vmaf_v0.6.1 (default), vmaf_4k_v0.6.1, ... or a path to a libvmaf model file")
    ap.add_argument("--subsample", type=positive_int, default=1, help="score (and filter) every N-th frame")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code of ``--help`` (0) or of a usage error (2)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
