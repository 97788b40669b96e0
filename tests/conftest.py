"""Shared fixtures. ``vsfilter`` is imported before ``vs.core`` is first used (see backends._import_openvino)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vsfilter  # noqa: F401  (must come before vs.core)

from onnx_builder import build_filter_onnx

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def filter_onnx(tmp_path_factory) -> Path:
    """A learned_filter_v1-shaped model (4 ResBlocks) with random weights."""
    return build_filter_onnx(tmp_path_factory.mktemp("models") / "random_filter.onnx")


@pytest.fixture(scope="session")
def two_input_onnx(tmp_path_factory) -> Path:
    """codec_v2's network widened to take the quantizer plane (``[N,2,H,W]``), with weights on the plane
    that matter."""
    torch = pytest.importorskip("torch", reason="the train extra (torch) is needed; .ci/setup installs it")
    from training.checkpoint import load_onnx_weights
    from training.model import widen_input
    from training.onnx_export import check_against_torch, export_onnx

    plain, _ = load_onnx_weights(ROOT / "model" / "tiny" / "learned_filter_codec_v2.onnx")
    model = widen_input(plain, 2)
    with torch.no_grad():
        model.head[0].weight[:, 1] = torch.linspace(-0.2, 0.2, 9).reshape(3, 3)
    path = tmp_path_factory.mktemp("v3") / "two_input.onnx"
    export_onnx(model.eval(), path)
    check_against_torch(model, path)
    return path


@pytest.fixture(scope="session")
def quantizer_pairs(tmp_path_factory) -> Path:
    """A small codec pair set with quantizer maps and coded rates (training.codec_pairs): 3 skimage photos
    (packages a, a, b), 4-frame pans, x264 and x265 round trips, identity pairs."""
    from PIL import Image

    root = tmp_path_factory.mktemp("quantizer_pairs")
    photos = root / "photos"
    photos.mkdir()
    skimage = Path(pytest.importorskip("skimage").__file__).parent / "data"
    rows = []
    for i, name in enumerate(("astronaut.png", "coffee.png", "chelsea.png")):
        Image.open(skimage / name).convert("L").save(photos / f"{i}.png")
        rows.append({"file": f"{i}.png", "package": "a" if i < 2 else "b"})
    (photos / "corpus.json").write_text(json.dumps({"files": rows}))
    pairs = root / "pairs"
    subprocess.run([sys.executable, "-m", "training.codec_pairs", "--photos", str(photos), "--no-videos", "--output",
                    str(pairs), "--frames", "4", "--clips-per-photo", "1", "--encodes-per-clip", "2", "--keep-frames",
                    "2", "--codecs", "libx264", "libx265", "--identity", "0.2", "--seed", "2", "--quiet"],
                   check=True, cwd=ROOT, timeout=600)
    return pairs


@pytest.fixture(scope="session")
def core() -> vs.Core:
    return vs.core


def noise_clip(core: vs.Core, fmt: int, width: int, height: int, length: int = 3, seed: int = 1) -> vs.VideoNode:
    """A clip of smooth gradients plus noise (content the filter really changes), every plane filled."""
    clip = core.std.BlankClip(format=fmt, width=width, height=height, length=length)
    fmt_obj = clip.format

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        rng = np.random.default_rng([seed, n])  # frame n is the same whatever the request order
        for p in range(fmt_obj.num_planes):
            arr = np.asarray(out[p])
            h, w = arr.shape
            base = (np.add.outer(np.linspace(0, 0.6, h), np.linspace(0, 0.3, w)) + 0.1 * (n + p % 3))
            val = np.clip(base + rng.normal(0, 0.08, (h, w)), 0, 1)
            if fmt_obj.sample_type == vs.INTEGER:
                arr[...] = np.rint(val * ((1 << fmt_obj.bits_per_sample) - 1)).astype(arr.dtype)
            else:
                arr[...] = val.astype(arr.dtype)
        out.props["TestProp"] = n * 7
        return out

    return clip.std.ModifyFrame(clip, fill)


def planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.array(frame[p], copy=True) for p in range(frame.format.num_planes)]


def one_line_error(fn, prefix: str) -> str:
    """Call ``fn``; it must raise a one-line ``vs.Error`` starting with ``prefix``. Returns the message."""
    with pytest.raises(vs.Error) as info:
        fn()
    text = str(info.value)
    assert text.startswith(prefix) and "\n" not in text, text
    return text
