"""The real stock-tools pipeline: vspipe -c y4m examples/prefilter.vpy - | ffmpeg ... libvmaf."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vsfilter.compare import compare

from media import encode_clip

ROOT = Path(__file__).resolve().parents[1]


def test_vspipe_ffmpeg_libvmaf_pipeline(tmp_path, filter_onnx):
    ref = encode_clip(tmp_path / "ref.mkv", "ffv1", frames=20, width=192, height=128)
    dist = encode_clip(tmp_path / "dist.mp4", "libx264", frames=20, width=192, height=128, options={"crf": "38"})
    log = tmp_path / "vmaf.json"
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "examples" / "vmaf_pipeline.sh"), str(ref), str(dist), str(log),
                           str(filter_onnx)], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(log.read_text())
    assert len(data["frames"]) == 20
    pipeline_vmaf = data["pooled_metrics"]["vmaf"]["mean"]
    assert f"VMAF (prefiltered): {round(pipeline_vmaf, 3)}" in proc.stdout
    ours = compare(ref, dist, model=str(filter_onnx))  # same device ("auto") as the script
    assert abs(ours.pooled["prefiltered"]["vmaf"] - pipeline_vmaf) <= 1e-3


def test_vspipe_info_works_without_hand_configuration():
    vspipe = Path(sys.executable).with_name("vspipe")
    proc = subprocess.run([str(vspipe), "--info", str(ROOT / "examples" / "prefilter.vpy")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from vsfilter.compare.demo import HEIGHT, WIDTH

    info = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    assert (int(info["Width"]), int(info["Height"])) == (WIDTH, HEIGHT), proc.stdout  # the demo clip


def test_vspipe_openvino_next_to_vsmlrt_ov():
    """vspipe loads plugins (vs-mlrt-ov's OpenVINO runtime) before the script: with the openvino
    package's runtime preloaded, device='openvino' works; without, the error names the fix."""
    import importlib.util

    from vsfilter.backends import openvino_runtime_library

    if importlib.util.find_spec("openvino") is None:
        import pytest
        pytest.skip("the openvino extra is not installed")
    vspipe = Path(sys.executable).with_name("vspipe")
    cmd = [str(vspipe), "-a", "device=openvino", "-a", "precision=int8", "--info",
           str(ROOT / "examples" / "prefilter.vpy")]
    env = dict(os.environ, LD_PRELOAD=openvino_runtime_library())
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if plain.returncode != 0:  # vapoursynth-mlrt-ov installed: its runtime came first
        assert "LD_PRELOAD=" in plain.stderr and "vmaf_pre: device='openvino' cannot run" in plain.stderr


def test_the_codec_model_runs_in_vspipe_and_compare(tmp_path):
    """learned_filter_codec_v1 by registry id: vspipe -a model=..., and compare --model ... (x264 CRF 36)."""
    ref = encode_clip(tmp_path / "ref.mkv", "ffv1", frames=12, width=192, height=128)
    dist = encode_clip(tmp_path / "dist.mp4", "libx264", frames=12, width=192, height=128, options={"crf": "36"})
    vspipe = Path(sys.executable).with_name("vspipe")
    info = subprocess.run([str(vspipe), "-a", f"src={dist}", "-a", "model=learned_filter_codec_v1", "-a", "device=cpu",
                           "--info", str(ROOT / "examples" / "prefilter.vpy")], capture_output=True, text=True,
                          timeout=300)
    assert info.returncode == 0 and "Frames: 12" in info.stdout, info.stderr[-2000:]
    result = compare(ref, dist, model="learned_filter_codec_v1", device="cpu")
    assert result.model["id"] == "learned_filter_codec_v1" and len(result.model["sha256"]) == 64
    assert result.frames == 12 and result.delta["psnr_y"] != 0
