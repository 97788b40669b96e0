"""What every training step shares: a one-line error with exit code 2, and file hashes."""

from __future__ import annotations

import functools
import sys
from typing import Callable

from vsfilter.models import sha256_file  # noqa: F401  (re-exported for the steps)

__all__ = ["UsageError", "run_main", "sha256_file"]


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit code 2."""


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
