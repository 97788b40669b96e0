"""compare speaks the VMAF world's formats: raw YUV, shifted encodes, CAMBI, every libvmaf model.

Every score is checked against the imageio-ffmpeg CLI's libvmaf on the same files (the oracle)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vsfilter.compare import CompareOptions, compare
from vsfilter.reader.raw import RawFormat

from media import encode_clip, encode_luma_frames, pattern

WIDTH, HEIGHT = 240, 136  # CAMBI needs a side of at least 216


def ffmpeg_cli_log(ref: Path, dist: Path, tmp_path: Path, *, raw: RawFormat | None = None,
                   model: str = "version=vmaf_v0.6.1", features: str = "name=psnr|name=float_ssim",
                   trim: int = 0, ten_bit: bool = False) -> dict:
    """The imageio-ffmpeg CLI's libvmaf log for inputs of equal length; ``raw`` reads both inputs as
    rawvideo; ``trim`` drops the reference's first frames; ``ten_bit`` converts both inputs with
    ``format=yuv420p10le`` (how VMAF v1 is measured). No ``shortest=1``: with it, FFmpeg's framesync
    drops the last frame of an mkv/mp4 pair of equal length (measured: 26 of 27 frames)."""
    import imageio_ffmpeg

    log = tmp_path / f"cli-{dist.stem}-{abs(hash((model, features, trim, ten_bit)))}.json"
    inputs = []
    for path in (dist, ref):
        if raw is not None:
            inputs += ["-f", "rawvideo", "-pix_fmt", raw.ffmpeg_pix_fmt, "-s", f"{raw.width}x{raw.height}",
                       "-r", "24"]
        inputs += ["-i", str(path)]
    cut = f"trim=start_frame={trim}," if trim else ""
    fmt = "format=yuv420p10le," if ten_bit else ""
    graph = (f"[0:v]{fmt}setpts=N/TB/24[d];[1:v]{cut}{fmt}setpts=N/TB/24[r];"
             f"[d][r]libvmaf=model={model}:feature={features}:log_fmt=json:log_path={log}")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", *inputs, "-lavfi", graph,
                    "-f", "null", "-"], check=True, timeout=600)
    return json.loads(log.read_text())


def write_raw(path: Path, fmt: RawFormat, frames: int, seed: int = 0, noise: float = 0.0) -> Path:
    """``frames`` pattern frames as a raw planar file of ``fmt`` (little-endian above 8 bits)."""
    rng = np.random.default_rng(seed)
    shift = fmt.bitdepth - 8
    dtype = np.dtype("<u2") if fmt.bitdepth > 8 else np.uint8
    peak = (1 << fmt.bitdepth) - 1
    with path.open("wb") as fh:
        for n in range(frames):
            luma = pattern(n, fmt.width, fmt.height, fmt.bitdepth) + rng.normal(0, noise * (1 << shift),
                                                                                 (fmt.height, fmt.width))
            planes = [luma]
            for h, w in fmt.plane_shapes[1:]:
                planes.append(np.full((h, w), 128 << shift) + (np.add.outer(np.arange(h), np.arange(w)) % 17))
            for plane in planes:
                fh.write(np.clip(np.rint(plane), 0, peak).astype(dtype).tobytes())
    return path


def distort_raw(src: Path, dst: Path, fmt: RawFormat, frames: int) -> Path:
    """A distorted version of a raw file: uniform noise of +-6 8-bit codes on every sample."""
    data = np.fromfile(src, dtype=np.dtype("<u2") if fmt.bitdepth > 8 else np.uint8)
    rng = np.random.default_rng(1)
    peak = (1 << fmt.bitdepth) - 1
    noisy = np.clip(data.astype(np.int64) + rng.integers(-6, 7, data.shape) * (1 << (fmt.bitdepth - 8)), 0, peak)
    noisy.astype(data.dtype).tofile(dst)
    return dst


@pytest.mark.parametrize("pixel_format,bitdepth", [("420", 8), ("420", 10), ("420", 12), ("444", 8), ("444", 10),
                                                   ("444", 12)])
def test_raw_yuv_scores_equal_the_ffmpeg_cli(tmp_path, pixel_format, bitdepth):
    fmt = RawFormat(WIDTH, HEIGHT, pixel_format, bitdepth)
    ref = write_raw(tmp_path / "ref.yuv", fmt, 6)
    dist = distort_raw(ref, tmp_path / "dist.yuv", fmt, 6)
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "vsfilter.compare", str(ref), str(dist), "--width", str(WIDTH),
                           "--height", str(HEIGHT), "--pixel_format", pixel_format, "--bitdepth", str(bitdepth),
                           "--model", "learned_filter_codec_v1", "--device", "cpu", "--json", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    cli = ffmpeg_cli_log(ref, dist, tmp_path, raw=fmt)
    assert doc["frames"] == len(cli["frames"]) == 6
    for ours, theirs in (("vmaf", "vmaf"), ("psnr_y", "psnr_y"), ("ssim", "float_ssim")):
        assert abs(doc["pooled"]["distorted"][ours] - cli["pooled_metrics"][theirs]["mean"]) <= 1e-4, ours
        for row, frame in zip(doc["per_frame"], cli["frames"]):
            assert abs(row["distorted"][ours] - frame["metrics"][theirs]) <= 1e-4, (ours, row["frame"])
    assert doc["options"]["reference_raw"]["bitdepth"] == bitdepth


def test_source_reads_raw_frames_exactly(tmp_path):
    fmt = RawFormat(48, 32, "420", 10)
    path = write_raw(tmp_path / "a.yuv", fmt, 5)
    from vsfilter import source

    clip = source(path, raw={"width": 48, "height": 32, "pixel_format": "420", "bitdepth": 10}, fpsnum=30)
    assert (clip.num_frames, clip.width, clip.height, clip.format.bits_per_sample, clip.fps) == (5, 48, 32, 10, 30)
    data = np.fromfile(path, dtype="<u2").reshape(5, -1)
    for n in (3, 0, 4, 1):  # any order: the same bytes
        frame = clip.get_frame(n)
        got = np.concatenate([np.asarray(frame[p]).ravel() for p in range(3)])
        assert np.array_equal(got, data[n])


def _one_line(args: list[str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "vsfilter.compare", *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compare: error: ") and "Traceback" not in proc.stderr
    return lines[0]


def test_raw_yuv_bad_geometry_is_one_line(tmp_path):
    fmt = RawFormat(WIDTH, HEIGHT)
    ref = write_raw(tmp_path / "ref.yuv", fmt, 3)
    odd = tmp_path / "odd.yuv"
    odd.write_bytes(ref.read_bytes()[:-7])
    geometry = ["--width", str(WIDTH), "--height", str(HEIGHT)]
    line = _one_line([str(ref), str(odd), *geometry, "--model", "learned_filter_codec_v1"])
    assert f"{odd.stat().st_size} bytes" in line and f"{fmt.frame_bytes}-byte frames" in line
    assert "--height" in _one_line([str(ref), str(ref), "--width", str(WIDTH)])
    assert "--bitdepth" in _one_line([str(ref), str(ref), *geometry, "--bitdepth", "9"])
    assert "--width" in _one_line([str(ref), str(ref)])
    mp4 = encode_clip(tmp_path / "clip.mp4", "libx264", frames=3, width=64, height=64)
    renamed = tmp_path / "actually_mp4.yuv"
    renamed.write_bytes(mp4.read_bytes())
    assert "MP4" in _one_line([str(ref), str(renamed), *geometry])


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """A moving clip, its reference (FFV1), an x264 encode of it with the first 3 frames cut, and the
    reference cut by hand to match."""
    root = tmp_path_factory.mktemp("shift")
    frames = [np.clip(pattern(n * 3, WIDTH, HEIGHT), 0, 255).astype(np.uint8) for n in range(30)]
    ref = encode_luma_frames(root / "ref.mkv", frames, "ffv1", {})
    cut = encode_luma_frames(root / "cut.mkv", frames[3:], "ffv1", {})
    dist = encode_luma_frames(root / "dist.mp4", frames[3:], "libx264", {"crf": "30"})
    return ref, cut, dist


def test_a_shifted_encode_is_found_and_scores_as_cut_by_hand(shifted):
    ref, cut, dist = shifted
    plain = compare(ref, dist, model="learned_filter_codec_v1", device="cpu")
    warning = next(w for w in plain.warnings if "offset" in w)
    assert "offset -3" in warning and "dist_offset=-3" in warning
    found = compare(ref, dist, model="learned_filter_codec_v1", device="cpu", find_offset=5)
    by_hand = compare(cut, dist, model="learned_filter_codec_v1", device="cpu")
    assert found.offset["best"] == -3 and found.options["find_offset"] == 5
    assert not [w for w in found.warnings if "offset" in w]
    assert found.frames == by_hand.frames == 27
    for stream in ("distorted", "prefiltered"):
        for metric, value in by_hand.pooled[stream].items():
            assert abs(found.pooled[stream][metric] - value) <= 1e-3, (stream, metric)
    for a, b in zip(found.per_frame, by_hand.per_frame):
        assert a["frame"] == b["frame"]
        for stream in ("distorted", "prefiltered"):
            for metric in b[stream]:
                assert abs(a[stream][metric] - b[stream][metric]) <= 1e-3
    given = compare(ref, dist, model="learned_filter_codec_v1", device="cpu", dist_offset=-3)
    assert given.pooled == found.pooled


def test_the_cli_names_the_offset_flag_and_the_json_records_it(shifted, tmp_path):
    ref, _, dist = shifted
    out = tmp_path / "r.json"
    plain = subprocess.run([sys.executable, "-m", "vsfilter.compare", str(ref), str(dist), "--model",
                            "learned_filter_codec_v1", "--device", "cpu", "--quiet"], capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0 and "--dist-offset -3" in plain.stderr and "offset" in plain.stderr
    found = subprocess.run([sys.executable, "-m", "vsfilter.compare", str(ref), str(dist), "--model",
                            "learned_filter_codec_v1", "--device", "cpu", "--find-offset", "--json", str(out),
                            "--quiet"], capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    doc = json.loads(out.read_text())
    assert doc["offset"]["best"] == -3 and doc["options"]["find_offset"] == 5


def test_cambi_and_the_phone_model_equal_the_ffmpeg_cli(shifted, tmp_path):
    ref, cut, dist = shifted
    result = compare(cut, dist, CompareOptions(model="learned_filter_codec_v1", device="cpu",
                                               vmaf_model="vmaf_v0.6.1:phone"))
    cli = ffmpeg_cli_log(cut, dist, tmp_path, model="version=vmaf_v0.6.1\\\\:enable_transform=true",
                         features="name=psnr|name=float_ssim|name=cambi")
    assert result.vmaf_model == "vmaf_v0.6.1:phone"
    assert abs(result.pooled["distorted"]["vmaf"] - cli["pooled_metrics"]["vmaf"]["mean"]) <= 1e-3
    assert abs(result.pooled["distorted"]["cambi"] - cli["pooled_metrics"]["cambi"]["mean"]) <= 1e-3
    for row, frame in zip(result.per_frame, cli["frames"]):
        assert abs(row["distorted"]["cambi"] - frame["metrics"]["cambi"]) <= 1e-3
        assert "cambi" in row["prefiltered"]
    plain = compare(cut, dist, model="learned_filter_codec_v1", device="cpu", cambi=False)
    assert "cambi" not in plain.delta and plain.pooled["distorted"]["vmaf"] < result.pooled["distorted"]["vmaf"]


def test_vmaf_model_auto_and_names(tmp_path):
    from vsfilter.compare.vmaf_models import builtin_vmaf_models, resolve_vmaf_models
    from vsfilter.errors import VmafError

    assert {"vmaf_v0.6.1", "vmaf_v0.6.1neg", "vmaf_4k_v0.6.1"} <= set(builtin_vmaf_models())
    assert resolve_vmaf_models("auto", 3840, 2160).name == "vmaf_4k_v0.6.1"
    assert resolve_vmaf_models("auto", 1920, 1080).name == "vmaf_v0.6.1"
    assert resolve_vmaf_models("auto:phone", 640, 360).name == "vmaf_v0.6.1:phone"
    with pytest.raises(VmafError, match="unknown VMAF model"):
        resolve_vmaf_models("vmaf_v9", 64, 64)
