"""What every training step shares with vsfilter's CLIs: a one-line error with exit code 2 (usage
errors too, without argparse's usage block), 130/143 on Ctrl-C/SIGTERM at once, and file hashes."""

from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from vsfilter.errors import UsageError
from vsfilter.models import sha256_file  # noqa: F401  (re-exported for the steps)

__all__ = ["UsageError", "run_main", "sha256_file", "require_onnx", "check_output_file", "check_output_dir",
           "step_parser"]


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


def check_fraction(value: float, flag: str) -> None:
    """A share of something (``flag`` names the option): from 0 to 1."""
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{flag} is a fraction: give a value from 0 to 1")


def check_output_dir(path: Path, flag: str = "--output") -> None:
    """An output folder: it may exist (as a folder) or be created."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file; give a folder")


def fresh_output_dir(path: Path, force: bool) -> None:
    """An empty output folder, created: an existing non-empty one is replaced only with ``--force``."""
    check_output_dir(path)
    if path.exists() and any(path.iterdir()):
        if not force:
            raise UsageError(f"{path} exists and is not empty; pass --force to replace it")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def _prog(main: Callable) -> str:
    module = sys.modules.get(main.__module__)
    spec = getattr(module, "__spec__", None)  # "training.x" even when run as __main__
    return (spec.name if spec else main.__module__).rsplit(".", 1)[-1]


def step_parser(module: str, description: str):
    """The argparse parser of step ``training.<module>``: usage errors are one line and exit code 2."""
    from vsfilter._cli import OneLineParser

    spec = getattr(sys.modules.get(module), "__spec__", None)  # "training.x" even when run as __main__
    name = (spec.name if spec else module).rsplit(".", 1)[-1]
    return OneLineParser(name, prog=f"python -m training.{name}", description=description)


def run_main(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a step's ``main`` on vsfilter's CLI runner: a :class:`UsageError` becomes ``<step>: error:
    message`` and exit code 2, a usage error the same, Ctrl-C and SIGTERM end it at once with 130/143
    (outputs are written atomically, so nothing is left half-written)."""
    from vsfilter._cli import cli_main

    @functools.wraps(main)
    def checked(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except UsageError as exc:
            print(f"{_prog(main)}: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        except SystemExit as exc:  # argparse: --help (0) or a one-line usage error (2)
            return int(exc.code or 0)

    return functools.wraps(main)(cli_main(_prog(main))(checked))
