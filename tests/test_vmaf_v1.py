"""VMAF v1 (Netflix's vmaf_v1.0.16 models, June 2026) scored the way models_v1.md specifies: by name or
file, at 10 bits for 8-bit inputs, CAMBI told the encode's native size and bit depth, side by side with
v0.6.1. Every score is checked against the imageio-ffmpeg CLI's libvmaf on the same pixels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vsfilter.compare import compare
from vsfilter.compare.vmaf_models import builtin_vmaf_models, resolve_vmaf_models
from vsfilter.errors import VmafError
from vsfilter.reader.raw import RawFormat

from media import encode_luma_frames, pattern
from test_vmaf_conventions import distort_raw, ffmpeg_cli_log, write_raw


def _compare_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsfilter.compare", *args], capture_output=True, text=True,
                          timeout=600)

WIDTH, HEIGHT = 640, 360  # the smallest size every v1 model scores (3d0h_2160's SpEED features)
V1_MODELS = [m for m in builtin_vmaf_models() if m.startswith("vmaf_v1.")]
TOL = 1e-3


def cli_log(ref: Path, dist: Path, tmp_path: Path, model: str, *, ten_bit: bool = False,
            cambi: str = "name=cambi", raw: RawFormat | None = None) -> dict:
    """The imageio-ffmpeg CLI's libvmaf log with PSNR, SSIM and ``cambi`` (feature options included);
    ``ten_bit`` converts both inputs with format=yuv420p10le."""
    return ffmpeg_cli_log(ref, dist, tmp_path, raw=raw, model=model, features=f"name=psnr|name=float_ssim|{cambi}",
                          ten_bit=ten_bit)


@pytest.fixture(scope="module")
def encode_pair(tmp_path_factory):
    """An FFV1 reference (8-bit, with flat areas that band) and an x264 CRF 34 encode of it."""
    root = tmp_path_factory.mktemp("v1")
    frames = []
    for n in range(8):
        img = pattern(n * 2, WIDTH, HEIGHT)
        img[:, : WIDTH // 3] = 60 + np.linspace(0, 12, WIDTH // 3)[None, :]  # a shallow ramp: banding
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    ref = encode_luma_frames(root / "ref.mkv", frames, "ffv1")
    dist = encode_luma_frames(root / "dist.mp4", frames, "libx264", {"crf": "34"})
    return ref, dist


def _close(ours: float, theirs: float, what) -> None:
    assert abs(ours - theirs) <= TOL, (what, ours, theirs)


def test_the_linked_libvmaf_has_every_v1_model():
    assert len(V1_MODELS) == 8
    assert {"vmaf_v1.0.16_3d0h", "vmaf_v1.0.16_5d0h", "vmaf_v1.0.16_1d5h_2160", "vmaf_v1.0.16_3d0h_2160",
            "vmaf_v1.0.16_hfr_3d0h"} <= set(V1_MODELS)


def test_every_v1_model_by_name_equals_the_cli_at_10_bits(encode_pair, tmp_path):
    ref, dist = encode_pair
    result = compare(ref, dist, model="learned_filter_codec_v2", device="cpu", vmaf_model=",".join(V1_MODELS))
    assert result.scoring["bits"] == 10 and result.scoring["cambi_encode"] == {"enc_bitdepth": 8}
    metrics = ["vmaf", *V1_MODELS[1:]]
    assert [m["metric"] for m in result.scoring["models"]] == metrics
    for name, metric in zip(V1_MODELS, metrics):
        cli = cli_log(ref, dist, tmp_path, f"version={name}\\\\:cambi.enc_bitdepth=8", ten_bit=True,
                      cambi="name=cambi\\\\:enc_bitdepth=8")
        _close(result.pooled["distorted"][metric], cli["pooled_metrics"]["vmaf"]["mean"], name)
        for row, frame in zip(result.per_frame, cli["frames"], strict=True):
            _close(row["distorted"][metric], frame["metrics"]["vmaf"], (name, row["frame"]))
        if name == V1_MODELS[0]:  # the other metrics of a v1 run: present and equal to the CLI at 10 bits
            for ours, theirs in (("vmaf_neg", None), ("psnr_y", "psnr_y"), ("ssim", "float_ssim"),
                                 ("cambi", "cambi_encbd_8")):
                if theirs is not None:
                    _close(result.pooled["distorted"][ours], cli["pooled_metrics"][theirs]["mean"], ours)
            neg = cli_log(ref, dist, tmp_path, "version=vmaf_v0.6.1neg", ten_bit=True,
                          cambi="name=cambi\\\\:enc_bitdepth=8")
            _close(result.pooled["distorted"]["vmaf_neg"], neg["pooled_metrics"]["vmaf"]["mean"], "vmaf_neg")


def test_v1_without_10_bit_and_v0_unchanged(encode_pair, tmp_path):
    ref, dist = encode_pair
    native = compare(ref, dist, model="learned_filter_codec_v2", device="cpu", vmaf_model="v1", vmaf_10bit=False)
    assert native.vmaf_model == "vmaf_v1.0.16_3d0h" and native.scoring["bits"] is None
    cli = cli_log(ref, dist, tmp_path, "version=vmaf_v1.0.16_3d0h")
    _close(native.pooled["distorted"]["vmaf"], cli["pooled_metrics"]["vmaf"]["mean"], "8-bit v1")
    # v0.6.1 alone: 8 bits, no CAMBI parameters, every metric as before (the CLI, unconverted)
    v0 = compare(ref, dist, model="learned_filter_codec_v2", device="cpu")
    cli0 = cli_log(ref, dist, tmp_path, "version=vmaf_v0.6.1")
    assert v0.scoring["bits"] is None and v0.scoring["cambi_encode"] is None
    for ours, theirs in (("vmaf", "vmaf"), ("psnr_y", "psnr_y"), ("ssim", "float_ssim"), ("cambi", "cambi")):
        assert abs(v0.pooled["distorted"][ours] - cli0["pooled_metrics"][theirs]["mean"]) <= 1e-6, ours


def test_both_generations_side_by_side_in_one_pass(encode_pair):
    ref, dist = encode_pair
    both = compare(ref, dist, model="learned_filter_codec_v2", device="cpu", vmaf_model="vmaf_v0.6.1,v1")
    alone = compare(ref, dist, model="learned_filter_codec_v2", device="cpu", vmaf_model="v1")
    assert both.vmaf_model == "vmaf_v0.6.1,vmaf_v1.0.16_3d0h"
    for stream in ("distorted", "prefiltered"):
        assert both.pooled[stream]["vmaf_v1.0.16_3d0h"] == pytest.approx(alone.pooled[stream]["vmaf"], abs=1e-6)
        assert both.pooled[stream]["vmaf"] != both.pooled[stream]["vmaf_v1.0.16_3d0h"]
    assert "vmaf_v1.0.16_3d0h" in both.delta and "vmaf_v1.0.16_3d0h" in both.per_frame[0]["prefiltered"]


def _fqm_model(name: str) -> Path:
    """A VMAF model file as ffmpeg-quality-metrics 3.13 ships it (its package data)."""
    import ffmpeg_quality_metrics

    return Path(ffmpeg_quality_metrics.__file__).parent / "vmaf_models" / f"{name}.json"


def test_a_v1_model_file_equals_the_model_by_name(encode_pair):
    ref, dist = encode_pair
    path = _fqm_model("vmaf_v1.0.16_3d0h")
    by_file = compare(ref, dist, model="learned_filter_codec_v2", device="cpu", vmaf_model=str(path))
    by_name = compare(ref, dist, model="learned_filter_codec_v2", device="cpu", vmaf_model="vmaf_v1.0.16_3d0h")
    assert by_file.scoring["models"][0]["generation"] == 1 and by_file.scoring["bits"] == 10
    for stream in ("distorted", "prefiltered"):
        _close(by_file.pooled[stream]["vmaf"], by_name.pooled[stream]["vmaf"], stream)


def test_every_v1_model_on_raw_10_bit_yuv_equals_the_cli(tmp_path):
    fmt = RawFormat(WIDTH, HEIGHT, "420", 10)
    ref = write_raw(tmp_path / "ref.yuv", fmt, 5)
    dist = distort_raw(ref, tmp_path / "dist.yuv", fmt, 5)
    out = tmp_path / "r.json"
    proc = _compare_cli(str(ref), str(dist), "--width", str(WIDTH), "--height", str(HEIGHT), "--bitdepth", "10",
                        "--vmaf-model", ",".join(V1_MODELS), "--model", "learned_filter_codec_v2", "--device", "cpu",
                        "--json", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["vmaf_model"] == ",".join(V1_MODELS)
    assert doc["scoring"]["bits"] is None and doc["scoring"]["cambi_encode"] is None  # 10 bits already
    for name, metric in zip(V1_MODELS, ["vmaf", *V1_MODELS[1:]]):
        cli = cli_log(ref, dist, tmp_path, f"version={name}", raw=fmt)
        checks = [(metric, "vmaf")]
        if metric == "vmaf":
            checks += [("psnr_y", "psnr_y"), ("ssim", "float_ssim"), ("cambi", "cambi")]
        for ours, theirs in checks:
            _close(doc["pooled"]["distorted"][ours], cli["pooled_metrics"][theirs]["mean"], (name, ours))
            for row, frame in zip(doc["per_frame"], cli["frames"], strict=True):
                _close(row["distorted"][ours], frame["metrics"][theirs], (name, ours, row["frame"]))


def test_a_720p_encode_on_a_1080p_reference_tells_cambi_the_encode(tmp_path):
    """The distorted stream is scaled by compare (bicubic, after the pre-filter); the CLI gets the same
    scaled pixels (written by VapourSynth's resizer, as compare scales) and the same CAMBI parameters."""
    import vapoursynth as vs

    from vsfilter import source

    big = [np.clip(np.rint(pattern(n * 2, 1920, 1080)), 0, 255).astype(np.uint8) for n in range(3)]
    from PIL import Image

    small = [np.asarray(Image.fromarray(f).resize((1280, 720), Image.Resampling.LANCZOS)) for f in big]
    ref = encode_luma_frames(tmp_path / "ref.mkv", big, "ffv1", {})
    dist = encode_luma_frames(tmp_path / "dist.mp4", small, "libx264", {"crf": "30"})
    result = compare(ref, dist, model="learned_filter_codec_v2", device="cpu", vmaf_model="v1")
    assert result.scoring["cambi_encode"] == {"enc_width": 1280, "enc_height": 720, "enc_bitdepth": 8}
    assert result.scoring["bits"] == 10
    scaled = source(dist).resize.Bicubic(1920, 1080, format=vs.YUV420P8)
    # the chroma of the scaled clip matters to v1 (speed_chroma): write all three planes losslessly
    up = _encode_planes(tmp_path / "up.mkv", scaled)
    params = "\\\\:cambi.enc_width=1280\\\\:cambi.enc_height=720\\\\:cambi.enc_bitdepth=8"
    cli = cli_log(ref, up, tmp_path, f"version=vmaf_v1.0.16_3d0h{params}", ten_bit=True,
                  cambi="name=cambi\\\\:enc_width=1280\\\\:enc_height=720\\\\:enc_bitdepth=8")
    _close(result.pooled["distorted"]["vmaf"], cli["pooled_metrics"]["vmaf"]["mean"], "vmaf")
    _close(result.pooled["distorted"]["cambi"], cli["pooled_metrics"]["cambi_encbd_8_ench_720_encw_1280"]["mean"],
           "cambi")


def _encode_planes(path: Path, clip) -> Path:
    """A YUV420P8 VapourSynth clip, all planes, into a lossless FFV1 file."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        for n in range(clip.num_frames):
            frame = clip.get_frame(n)
            av_frame = av.VideoFrame(clip.width, clip.height, "yuv420p")
            for p, plane in enumerate(av_frame.planes):
                src = np.asarray(frame[p])
                dst = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
                dst[: src.shape[0], : src.shape[1]] = src
            av_frame.pts, av_frame.time_base = n, Fraction(1, 24)
            for packet in stream.encode(av_frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_v1_names_resolve_as_netflix_assigns_them():
    assert resolve_vmaf_models("v1", 1920, 1080, 25).name == "vmaf_v1.0.16_3d0h"
    assert resolve_vmaf_models("auto-v1", 3840, 2160, 24).name == "vmaf_v1.0.16_1d5h_2160"
    assert resolve_vmaf_models("v1", 1920, 1080, 59.94).name == "vmaf_v1.0.16_hfr_3d0h"
    assert resolve_vmaf_models("v1", 1920, 1080, 30).name == "vmaf_v1.0.16_3d0h"
    assert resolve_vmaf_models("v1:phone", 1280, 720, 25).name == "vmaf_v1.0.16_5d0h"
    assert resolve_vmaf_models("v1:phone", 1280, 720, 60).name == "vmaf_v1.0.16_hfr_5d0h"
    both = resolve_vmaf_models("auto,v1", 3840, 2160, 24, bits=8, encode=(1920, 1080, 8))
    assert both.name == "vmaf_4k_v0.6.1,vmaf_v1.0.16_1d5h_2160" and both.bits == 10
    assert dict(both.cambi_encode) == {"enc_width": 1920, "enc_height": 1080, "enc_bitdepth": 8}
    assert resolve_vmaf_models("vmaf_v0.6.1", 1920, 1080, 25, bits=8).bits is None  # v0 stays at 8 bits
    with pytest.raises(VmafError, match="phone model of its own"):
        resolve_vmaf_models("vmaf_v1.0.16_3d0h:phone", 1920, 1080)
    with pytest.raises(VmafError, match="216"):
        resolve_vmaf_models("v1", 176, 144)


def test_bad_models_are_one_line_before_anything_is_opened(tmp_path):
    """The inputs do not even exist: the model is refused first, in one line, exit 2."""
    not_a_model = tmp_path / "notes.json"
    not_a_model.write_text(json.dumps({"hello": 1}))
    broken = tmp_path / "broken.json"
    doc = json.loads(_fqm_model("vmaf_v1.0.16_3d0h").read_text())
    doc["model_dict"]["feature_names"][0] = "Cambi_feature_no_such_score"
    broken.write_text(json.dumps(doc))
    for model, expect in (("vmaf_v9.9.9", "unknown VMAF model"), (str(not_a_model), "could not read model"),
                          (str(broken), "libvmaf could not load"), ("vmaf_v0.6.1,", "separated by commas")):
        proc = _compare_cli(str(tmp_path / "ref.mkv"), str(tmp_path / "dist.mp4"), "--vmaf-model", model)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("compare: error: ") and expect in lines[0], lines[0]


def test_a_size_v1_cannot_score_is_refused_before_decoding(encode_pair, tmp_path):
    small = [np.clip(np.rint(pattern(n, 320, 180)), 0, 255).astype(np.uint8) for n in range(3)]
    ref = encode_luma_frames(tmp_path / "ref.mkv", small, "ffv1", {})
    proc = _compare_cli(str(ref), str(ref), "--vmaf-model", "vmaf_v1.0.16_3d0h_2160", "--model",
                        "learned_filter_codec_v2")
    assert proc.returncode == 2 and "SpEED: image too small" in proc.stderr and "320x180" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_batch_scores_v1_in_exact_chunks_and_resumes_by_its_settings(encode_pair, tmp_path):
    """VMAF v1's motion looks 2 frames back (HFR) and smooths over the previous frame: chunks of 4 frames
    must still score every frame as the whole file does; another v1 setting is scored again."""
    from media import held_out_clip

    ref = held_out_clip(tmp_path / "bikes.mkv", frames=12, half=False)  # real motion: every frame's motion differs
    dist = encode_luma_frames(tmp_path / "bikes.mp4", _lumas(ref), "libx264", {"crf": "32"})
    models = "vmaf_v1.0.16_hfr_3d0h,vmaf_v0.6.1,vmaf_v1.0.16_3d0h"
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"id,reference,distorted\np,{ref},{dist}\n")
    out = tmp_path / "out"
    base = [sys.executable, "-m", "vsfilter.batch", str(manifest), "--out", str(out), "--workers", "1",
            "--chunk-frames", "4", "--model", "learned_filter_codec_v2", "--device", "cpu", "--vmaf-model", models]
    proc = subprocess.run(base, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "p.json").read_text())
    whole = compare(ref, dist, model="learned_filter_codec_v2", device="cpu", vmaf_model=models)
    assert doc["scoring"] == whole.scoring and doc["frames"] == whole.frames == 12
    for a, b in zip(doc["per_frame"], whole.per_frame, strict=True):
        for stream in ("distorted", "prefiltered"):
            for metric, value in b[stream].items():
                assert abs(a[stream][metric] - value) <= 1e-4, (a["frame"], stream, metric)
    again = subprocess.run([*base, "--no-10bit"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "(0 from an earlier run)" in again.stdout, again.stdout
    assert json.loads((out / "p.json").read_text())["scoring"]["bits"] is None


def _lumas(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [np.frombuffer(f.planes[0], np.uint8).reshape(-1, f.planes[0].line_size)[: f.height, : f.width].copy()
                for f in container.decode(video=0)]
