"""The user cache directory for source indexes, derived models and generated clips (never next to the
user's inputs): ``$VSFILTER_CACHE_DIR``, else platformdirs' user cache dir for vsfilter
(``~/.cache/vsfilter`` on Linux, honouring ``XDG_CACHE_HOME``)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_path

__all__ = ["cache_dir", "CACHE_ENV"]

#: Environment variable overriding the cache root.
CACHE_ENV = "VSFILTER_CACHE_DIR"


def cache_dir(*parts: str) -> Path:
    """The cache root joined with ``parts``, created."""
    root = os.environ.get(CACHE_ENV)
    path = Path(root, *parts) if root else user_cache_path("vsfilter", appauthor=False).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
