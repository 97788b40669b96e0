"""The user cache directory for source indexes and derived models (never next to the user's inputs)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]

#: Environment variable overriding the cache root.
CACHE_ENV = "VSFILTER_CACHE_DIR"


def cache_dir(*parts: str) -> Path:
    """``$VSFILTER_CACHE_DIR`` or ``$XDG_CACHE_HOME/vsfilter`` (``~/.cache/vsfilter``), joined with
    ``parts`` and created."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "vsfilter")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
