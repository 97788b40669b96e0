"""``python -m vsfilter.compare``."""

import sys

import vsfilter  # noqa: F401  (imports openvino before vs.core, see backends._import_openvino)

from .cli import main

sys.exit(main())
