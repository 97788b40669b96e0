"""What every training step shares: a one-line error with exit code 2, and file hashes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

from vsfilter.errors import VsfilterError
from vsfilter.models import sha256_file  # noqa: F401  (re-exported for the steps)

__all__ = ["UsageError", "run_main", "sha256_file", "require_onnx", "check_output_file", "check_output_dir"]


class UsageError(VsfilterError):
    """Bad input: printed as one line on stderr, exit code 2."""


def require_onnx(path: Path, what: str = "model") -> None:
    """``path`` is a readable ONNX model, else a UsageError naming it."""
    import onnx

    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist")
    try:
        onnx.load(str(path), load_external_data=False)
    except Exception:  # DecodeError, OSError, ...
        raise UsageError(f"{what} {path} is not an ONNX model") from None


def check_output_file(path: Path, force: bool, flag: str = "--output") -> None:
    """An output file that can be written: its folder exists, it is not a folder, not replaced silently."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {path.parent} does not exist")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to replace it")


def check_output_dir(path: Path, flag: str = "--output") -> None:
    """An output folder: it may exist (as a folder) or be created."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file; give a folder")


def run_main(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a step's ``main`` so a :class:`UsageError` becomes ``<prog>: message`` and exit code 2."""

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except UsageError as exc:
            module = sys.modules.get(main.__module__)
            spec = getattr(module, "__spec__", None)  # "training.x" even when run as __main__
            prog = (spec.name if spec else main.__module__).rsplit(".", 1)[-1]
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapped
