"""The import-order rule, in one place: the ``openvino`` package must load before ``vs.core``.

vapoursynth-mlrt-ov bundles its own OpenVINO runtime, loaded with the plugins when ``vs.core`` is
first touched; once that runtime is in the process, the Python package refuses to import (version
mismatch). ``import vsfilter`` imports this module first, so a script that imports vsfilter before
using ``vs.core`` gets one shared runtime. Under ``vspipe`` (which loads plugins before the script)
preload the package's runtime instead: ``LD_PRELOAD=$(python -c 'import vsfilter;
print(vsfilter.openvino_runtime_library())') vspipe ...``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["IMPORT_ERROR", "openvino_runtime_library"]


def openvino_runtime_library() -> str:
    """Path of the openvino package's ``libopenvino.so`` ("" when the package is not installed).

    Preloading it (``LD_PRELOAD``) makes vapoursynth-mlrt-ov share that runtime, so vsfilter's
    OpenVINO backend also works under vspipe.
    """
    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.submodule_search_locations:
        return ""
    libs = sorted((Path(next(iter(spec.submodule_search_locations))) / "libs").glob("libopenvino.so.*"))
    return str(libs[0]) if libs else ""


def _import_openvino() -> str | None:
    """Import ``openvino``; None on success, else why not (a sentence naming the fix)."""
    if importlib.util.find_spec("openvino") is None:
        return "the openvino package is not installed (pip install 'vsfilter[openvino]')"
    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        if "mismatch" in str(exc):
            return ("another OpenVINO runtime (vapoursynth-mlrt-ov's) was loaded before the openvino package: "
                    "import vsfilter before first using vs.core, and under vspipe (which loads plugins before "
                    f"the script) run it with LD_PRELOAD={openvino_runtime_library()}")
        return f"openvino failed to import: {str(exc).splitlines()[0]}"
    return None


#: None when ``openvino`` imported, else the reason it did not.
IMPORT_ERROR: str | None = _import_openvino()
