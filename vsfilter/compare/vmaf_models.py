"""Which VMAF models score ``vmaf``: the names compare takes, what libvmaf is told, and at what precision.

A model spec is one name or several separated by commas (``vmaf_v0.6.1,v1``: both generations side by
side, one libvmaf pass per stream); the first scores ``vmaf``, each other one scores a metric named
after it (``vmaf_v1.0.16_3d0h``). A name is:

- a built-in model of the linked libvmaf, by version: :func:`builtin_vmaf_models` asks libvmaf itself
  (the version names its library carries, each loaded once to confirm): VMAF v0 (``vmaf_v0.6.1``,
  ``vmaf_v0.6.1neg``, ``vmaf_4k_v0.6.1``, ...) and VMAF v1 (``vmaf_v1.0.16_3d0h``, ``_5d0h``,
  ``_1d5h_2160``, ``_3d0h_2160`` and their ``_hfr_`` variants) in libvmaf 3.2;
- ``auto``: ``vmaf_4k_v0.6.1`` for references 3840 wide or 2160 high and larger, else ``vmaf_v0.6.1``;
- ``v1`` (or ``auto-v1``): the VMAF v1 model for the reference, as Netflix's models_v1.md assigns them:
  ``vmaf_v1.0.16_1d5h_2160`` (the 4K default) from 3840x2160 up, else ``vmaf_v1.0.16_3d0h`` (1080p
  at 3H), the ``_hfr_`` variant from :data:`HFR_FPS` frames per second; ``v1:phone`` is v1's phone
  model (``_5d0h``);
- a model file path (``.json``) of either generation;
- a v0 name or file followed by ``:phone``: libvmaf's phone transform (``enable_transform``).

VMAF NEG is always ``vmaf_v0.6.1neg``, scored beside them. VMAF v1 is measured at 10 bits for 8-bit
inputs (models_v1.md: "VMAF v1 should ideally be applied at 10-bit precision for SDR"), and its CAMBI
feature is told the encode's native width, height and bit depth (``cambi.enc_width`` ...) whenever
they differ from what libvmaf measures.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import VmafError

__all__ = ["VmafModel", "ScoringSpec", "builtin_vmaf_models", "parse_vmaf_models", "resolve_vmaf_models",
           "AUTO", "V1", "PHONE", "HFR_FPS", "UHD", "escape_path", "libvmaf_messages", "model_generation"]

AUTO = "auto"
#: Asks for VMAF v1, the right variant for the reference (``auto-v1`` is the same).
V1 = "v1"
_V1_ALIASES = (V1, "auto-v1")
PHONE = ":phone"
#: ``auto`` and ``v1`` pick the 4K model from this reference size up.
UHD = (3840, 2160)
#: ``v1`` picks the ``_hfr_`` variant from this frame rate up (models_v1.md: the ~50/60 fps regime).
HFR_FPS = 47
#: The precision VMAF v1 is measured at for inputs of fewer bits (models_v1.md).
V1_BITS = 10
#: Version names a libvmaf could carry (matched in its library's strings, then loaded to confirm).
_VERSION_PATTERN = re.compile(rb"vmaf_(?:float_)?(?:b_)?(?:4k_)?v\d+\.\d+\.\d+[a-z0-9_]*")
#: Used when the library file cannot be found: every version libvmaf has shipped built in.
_FALLBACK_VERSIONS = ("vmaf_v0.6.1", "vmaf_v0.6.1neg", "vmaf_4k_v0.6.1", "vmaf_4k_v0.6.1neg", "vmaf_b_v0.6.3",
                      "vmaf_float_v0.6.1", "vmaf_float_v0.6.1neg", "vmaf_float_b_v0.6.3", "vmaf_float_4k_v0.6.1",
                      *(f"vmaf_v1.0.16_{h}{v}" for h in ("", "hfr_") for v in ("3d0h", "5d0h", "1d5h_2160",
                                                                                "3d0h_2160")))
#: libvmaf's CAMBI refuses frames whose width and height are both below this (CAMBI_MIN_WIDTH_HEIGHT);
#: VMAF v1 models compute CAMBI.
CAMBI_MIN_SIDE = 216
#: CAMBI's encode parameters, their aliases (libvmaf names a feature by its options' aliases, sorted:
#: ``cambi_encbd_8_ench_720_encw_1280``) and the smallest value each takes (libvmaf refuses smaller ones).
CAMBI_ENCODE = {"enc_width": ("encw", 180), "enc_height": ("ench", 150), "enc_bitdepth": ("encbd", 6)}
#: The frame size libvmaf is asked to load a model file at (large enough for CAMBI).
_PROBE_SIZE = (CAMBI_MIN_SIDE + 40, CAMBI_MIN_SIDE + 40)


def escape_path(path: str) -> str:
    """A path as a filter-graph option value (colons escaped)."""
    return path.replace("\\", "/").replace(":", "\\\\:")


def _graph_configures(option: str, size: tuple[int, int] = (64, 64)) -> bool:
    """Whether a libvmaf graph with ``model=<option>`` configures (libvmaf loads its models then)."""
    import av
    import av.filter

    graph = av.filter.Graph()
    a = graph.add_buffer(width=size[0], height=size[1], format="yuv420p", time_base=Fraction(1, 25))
    b = graph.add_buffer(width=size[0], height=size[1], format="yuv420p", time_base=Fraction(1, 25))
    try:
        vmaf = graph.add("libvmaf", f"model={option}:log_path={os.devnull}")
        sink = graph.add("buffersink")
        a.link_to(vmaf, 0, 0)
        b.link_to(vmaf, 0, 1)
        vmaf.link_to(sink)
        graph.configure()
        return True
    except (av.error.FFmpegError, ValueError):
        return False


@contextlib.contextmanager
def libvmaf_messages():
    """File descriptor 2 captured while the block runs: libvmaf prints its errors there itself, past
    FFmpeg's logging. Yields a list that holds libvmaf's lines (``libvmaf ERROR ...``) afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    lines: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(line.strip() for line in sink.read().decode("utf-8", "replace").splitlines()
                         if line.strip().startswith("libvmaf"))


def _libvmaf_library() -> str | None:
    """The libvmaf shared library PyAV's FFmpeg is linked with (its wheel's ``av.libs``), else None."""
    import av

    base = os.path.dirname(os.path.abspath(av.__file__))
    for pattern in (os.path.join(base, "..", "av.libs", "libvmaf*.so*"), os.path.join(base, ".dylibs", "libvmaf*"),
                    os.path.join(base, "..", "av.libs", "vmaf*.dll")):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if "libvmaf" in line:
                    return line.split()[-1]
    except OSError:
        pass
    return None


@functools.cache
def builtin_vmaf_models() -> tuple[str, ...]:
    """The model versions built into the linked libvmaf (asked once per process): the version names in
    its library, each confirmed by loading it."""
    import av.logging

    library = _libvmaf_library()
    candidates: list[str] = list(_FALLBACK_VERSIONS)
    if library is not None:
        with open(library, "rb") as fh:
            names = {m.decode() for m in _VERSION_PATTERN.findall(fh.read())}
        candidates = sorted(names, key=_sort_key)
    with av.logging.Capture(), libvmaf_messages():
        return tuple(v for v in candidates if _graph_configures(f"version={v}"))


def _sort_key(name: str) -> tuple:
    """v0 before v1, plain before 4K/float/phone variants: the order ``--help`` lists them in."""
    return (model_generation(name), "float" in name, "_b_" in name, "4k" in name or "2160" in name, "hfr" in name,
            name)


def model_generation(name: str) -> int:
    """1 for a VMAF v1 model name (``vmaf_v1...``, ``vmaf_hfr_v1...``), else 0."""
    return 1 if re.search(r"(?:^|_)v1\.\d", os.path.basename(name)) else 0


def _file_generation(path: str) -> int:
    """The generation of a model file: v1 models compute CAMBI (and ADM3, motion3, speed_chroma)."""
    try:
        data = json.loads(Path(path).read_text())
        features = data["model_dict"]["feature_names"]
    except (OSError, ValueError, KeyError, TypeError):
        raise VmafError(f"VMAF model file {path} is not a libvmaf model (a JSON file with "
                        "model_dict.feature_names)") from None
    return 1 if any(str(f).startswith("Cambi_feature") for f in features) else 0


@dataclass(frozen=True)
class VmafModel:
    """A resolved VMAF model.

    Attributes:
        name: what results record (``vmaf_4k_v0.6.1``, ``vmaf_v0.6.1:phone``, a path).
        base: the built-in version or the absolute model file path.
        builtin: ``base`` is a built-in version.
        phone: apply the phone transform (v0).
        generation: 0 (VMAF v0) or 1 (VMAF v1: CAMBI inside, measured at 10 bits).
    """

    name: str
    base: str
    builtin: bool
    phone: bool = False
    generation: int = 0

    @property
    def metric(self) -> str:
        """The metric key it scores when it is not the first model: its name (a file's stem)."""
        return self.base if self.builtin else Path(self.base).stem + (PHONE if self.phone else "")

    def option(self, label: str = "vmaf", cambi_encode: dict[str, int] | None = None) -> str:
        """This model's part of libvmaf's ``model=`` value (escaped for a filter graph), named ``label``,
        with v1's CAMBI encode parameters when given."""
        main = f"version={self.base}" if self.builtin else f"path={escape_path(self.base)}"
        extra = "\\:enable_transform=true" if self.phone else ""
        if cambi_encode and self.generation >= 1:
            extra += "".join(f"\\:cambi.{k}={v}" for k, v in cambi_encode.items())
        return f"{main}\\:name={label}{extra}"


@dataclass(frozen=True)
class ScoringSpec:
    """The VMAF models of one comparison and how libvmaf measures them.

    Attributes:
        models: the models, the first scoring ``vmaf``.
        bits: the bit depth libvmaf measures at (None: the inputs' own).
        cambi_encode: v1's CAMBI encode parameters (``enc_width``, ``enc_height``, ``enc_bitdepth``), only
            those that differ from what is measured; empty when none do.
    """

    models: tuple[VmafModel, ...]
    bits: int | None = None
    cambi_encode: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        """What results record as ``vmaf_model``: the resolved names, comma-separated."""
        return ",".join(m.name for m in self.models)

    @property
    def generation(self) -> int:
        return max(m.generation for m in self.models)

    def cambi_key(self) -> str:
        """libvmaf's per-frame key of the standalone CAMBI feature given :attr:`cambi_encode`
        (``cambi``, ``cambi_encbd_8``, ...)."""
        given = dict(self.cambi_encode)
        return "cambi" + "".join(f"_{alias}_{given[k]}" for alias, k in sorted((a, k) for k, (a, _) in
                                                                              CAMBI_ENCODE.items() if k in given))

    def labels(self) -> dict[str, str]:
        """Our metric key -> libvmaf's per-frame key, for every VMAF model (NEG included)."""
        out = {"vmaf": "vmaf"}
        for i, model in enumerate(self.models[1:], 1):
            out[model.metric] = f"vmaf_{i}"
        return out | {"vmaf_neg": "vmaf_neg"}

    def option(self) -> str:
        """libvmaf's ``model=`` value: every model, then VMAF NEG."""
        enc = dict(self.cambi_encode)
        parts = [m.option("vmaf" if i == 0 else f"vmaf_{i}", enc) for i, m in enumerate(self.models)]
        return "|".join([*parts, "version=vmaf_v0.6.1neg\\:name=vmaf_neg"])

    def describe(self) -> dict:
        """What a result records: each model, the precision and the CAMBI encode parameters."""
        return {"models": [{"name": m.name, "metric": "vmaf" if i == 0 else m.metric, "generation": m.generation,
                            "builtin": m.builtin} for i, m in enumerate(self.models)],
                "bits": self.bits, "cambi_encode": dict(self.cambi_encode) or None}


def _split(spec: str) -> list[str]:
    names = [n.strip() for n in str(spec).split(",")]
    if not names or any(not n for n in names):
        raise VmafError(f"VMAF model {spec!r}: give one name or several separated by commas (vmaf_v0.6.1,v1)")
    return names


def _parse_one(name: str) -> tuple[str, bool]:
    base, phone = (name[: -len(PHONE)], True) if name.endswith(PHONE) else (name, False)
    builtin = builtin_vmaf_models()
    if base in (AUTO, *_V1_ALIASES):
        return base, phone
    if base in builtin:
        if phone and model_generation(base) >= 1:
            raise VmafError(f"VMAF model {name!r}: VMAF v1 has a phone model of its own instead of the "
                            "phone transform; use vmaf_v1.0.16_5d0h (or v1:phone)")
        return base, phone
    if Path(base).is_file():
        if phone and _file_generation(base) >= 1:
            raise VmafError(f"VMAF model {name!r}: a VMAF v1 model takes no phone transform; use its phone "
                            "model (vmaf_v1.0.16_5d0h)")
        return base, phone
    listed = ", ".join(builtin)
    raise VmafError(f"unknown VMAF model {name!r}: use auto, v1, one of {listed} (add {PHONE} to a v0 name for "
                    "the phone model) or a path to a libvmaf model file (.json)")


def parse_vmaf_models(spec: str) -> list[tuple[str, bool]]:
    """(base name, phone?) of each name of a model spec; checks each is known without loading it."""
    return [_parse_one(name) for name in _split(spec)]


def _resolve_one(base: str, phone: bool, width: int, height: int, fps: float) -> VmafModel:
    uhd = width >= UHD[0] or height >= UHD[1]
    if base == AUTO:
        base = "vmaf_4k_v0.6.1" if uhd else "vmaf_v0.6.1"
    elif base in _V1_ALIASES:
        hfr = "hfr_" if fps >= HFR_FPS else ""
        base = f"vmaf_v1.0.16_{hfr}" + ("5d0h" if phone else "1d5h_2160" if uhd else "3d0h")
        phone = False
        if base not in builtin_vmaf_models():
            raise VmafError(f"this libvmaf has no {base} (VMAF v1); it has {', '.join(builtin_vmaf_models())}")
    builtin = base in builtin_vmaf_models()
    generation = model_generation(base) if builtin else _file_generation(base)
    return VmafModel(base + (PHONE if phone else ""), base if builtin else os.path.abspath(base), builtin, phone,
                     generation)


def resolve_vmaf_models(spec: str, width: int, height: int, fps: float = 0.0, bits: int = 8,
                        ten_bit: bool = True, encode: tuple[int, int, int] | None = None) -> ScoringSpec:
    """What ``spec`` means for a reference of ``width`` x ``height`` at ``fps`` and ``bits`` bits.

    Args:
        spec: one model name or several, comma-separated (see the module docstring).
        width, height, fps: the reference's size and frame rate (``auto`` and ``v1`` pick by them).
        bits: the bit depth of the inputs as libvmaf gets them.
        ten_bit: measure VMAF v1 at 10 bits when ``bits`` is lower (Netflix's recommendation).
        encode: the distorted stream's native (width, height, bit depth), for v1's CAMBI.
    """
    models = tuple(_resolve_one(base, phone, width, height, fps) for base, phone in parse_vmaf_models(spec))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise VmafError(f"VMAF model {spec!r} names the same model twice ({', '.join(names)})")
    v1 = max(m.generation for m in models) >= 1
    if v1 and max(width, height) < CAMBI_MIN_SIDE:
        raise VmafError(f"VMAF v1 ({', '.join(m.name for m in models if m.generation)}) needs frames at least "
                        f"{CAMBI_MIN_SIDE} pixels wide or high (it computes libvmaf's CAMBI, which refuses "
                        f"{width}x{height}); use vmaf_v0.6.1 for this reference")
    measured = V1_BITS if v1 and ten_bit and bits < V1_BITS else None
    cambi: tuple[tuple[str, int], ...] = ()
    if v1 and encode is not None:  # only what differs, and what libvmaf takes (an encode below 180x150: none)
        at = (width, height, measured or bits)
        cambi = tuple((key, value) for (key, (_, least)), value, here in zip(CAMBI_ENCODE.items(), encode, at)
                      if value != here and value >= least)
    return ScoringSpec(models, measured, cambi)


def check_model_files(spec: str) -> None:
    """Load each model file of ``spec`` in libvmaf once (names were checked by :func:`parse_vmaf_models`):
    a file libvmaf rejects is a :class:`VmafError` with what libvmaf said, before any frame is decoded."""
    import av.logging

    for base, _ in parse_vmaf_models(spec):
        if base in (AUTO, *_V1_ALIASES) or base in builtin_vmaf_models():
            continue
        with av.logging.Capture() as logs, libvmaf_messages() as said:
            ok = _graph_configures(f"path={escape_path(os.path.abspath(base))}\\:name=vmaf", _PROBE_SIZE)
        if not ok:
            why = (said or [str(m[2]) for m in logs if m[2]] or ["it did not load"])[0]
            why = " ".join(why.split()).removeprefix("libvmaf ERROR ")[:200]
            raise VmafError(f"libvmaf could not load VMAF model {base!r}: {why}")
