"""``vsfilter.rd``: BD-rate as Netflix's calculator computes it, ladders made and scored on Dask, curves
the calculator rejects refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vsfilter.errors import RdError
from vsfilter.rd import bd_quality, bd_rate

from media import encode_luma_frames, held_out_clip

#: Netflix's calculator test (python/test/bd_rate_calculator_test.py, BDrateCalculatorJCTVCTest).
JCTVC = [
    ([(108048.8736, 43.6471), (61279.976, 40.3953), (33905.6656, 37.247), (18883.6928, 34.2911)],
     [(108061.2784, 43.6768), (61299.9936, 40.4232), (33928.7472, 37.2761), (18910.912, 34.3147)], -0.465215),
    ([(40433.8848, 37.5761), (7622.7456, 35.3756), (2394.488, 33.8977), (1017.6184, 32.0603)],
     [(40370.12, 37.5982), (7587.0024, 35.4025), (2390.0944, 33.9194), (1017.0984, 32.0822)], -1.877982),
]


@pytest.mark.parametrize("anchor,test,expected", JCTVC)
def test_bd_rate_equals_netflix_calculator_on_jctvc_e137(anchor, test, expected):
    assert bd_rate(anchor, test) == pytest.approx(expected, abs=1e-4)
    assert bd_rate(anchor, anchor) == pytest.approx(0.0, abs=1e-9)
    assert bd_quality(anchor, test) > 0  # the test curve is better at equal rate


def test_curves_the_calculator_rejects_are_refused():
    good = JCTVC[0][0]
    with pytest.raises(RdError, match="at least 4"):
        bd_rate(good[:3], good, names=("ladder A", "ladder B"))
    falling = [(r, -q) for r, q in good]
    with pytest.raises(RdError, match="ladder B: quality does not rise"):
        bd_rate(good, falling, names=("ladder A", "ladder B"))
    apart = [(r, q + 100) for r, q in good]
    with pytest.raises(RdError, match="do not overlap in quality"):
        bd_rate(good, apart)
    with pytest.raises(RdError, match="do not overlap in rate"):
        bd_quality(good, [(r * 1000, q) for r, q in good])


def _rd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsfilter.rd", *args], capture_output=True, text=True, timeout=900,
                          env=env)


@pytest.fixture(scope="module")
def ladder_run(tmp_path_factory):
    """rd --encode x264 --encode x265 on a held-out clip, in a cache of its own, with every output."""
    root = tmp_path_factory.mktemp("rd")
    ref = held_out_clip(root / "bikes.mkv")
    env = {**os.environ, "VSFILTER_CACHE_DIR": str(root / "cache")}
    args = [str(ref), "--encode", "libx264:24,30,36,42", "--encode", "libx265:24,30,36,42", "--model",
            "learned_filter_codec_v2", "--device", "cpu", "--workers", "2", "--json", str(root / "rd.json"),
            "--csv", str(root / "rd.csv"), "--plot", str(root / "rd.svg"), "--report", str(root / "rd.html")]
    first = _rd(*args, env=env)
    assert first.returncode == 0, first.stderr
    return root, ref, env, args, json.loads((root / "rd.json").read_text())


def _packet_kbps(path: str) -> float:
    with av.open(path) as container:
        stream = container.streams.video[0]
        sizes = [p.size for p in container.demux(stream) if p.size]
        fps = Fraction(stream.average_rate)
    return 8 * sum(sizes) / (len(sizes) / fps) / 1000


def test_a_real_ladder_against_another(ladder_run):
    from bjontegaard import bd_rate as pchip

    from vsfilter.compare import compare

    root, ref, _, _, doc = ladder_run
    assert doc["ladders"]["encode"]["name"] == "libx264:24,30,36,42"
    assert doc["ladders"]["against"]["name"] == "libx265:24,30,36,42"
    encodes = doc["encodes"]
    assert len(encodes) == 8 and all(Path(e["path"]).is_relative_to(root / "cache") for e in encodes)
    for e in encodes:
        assert e["bitrate_kbps"] == pytest.approx(_packet_kbps(e["path"]), rel=0.01)
        assert e["frames"] == 10 and e["duration_s"] == pytest.approx(10 / e["fps"])
    for e in encodes:  # each encode's scores are compare's on that pair
        direct = compare(ref, e["path"], model="learned_filter_codec_v2", device="cpu")
        for stream in ("distorted", "prefiltered"):
            for metric, value in direct.pooled[stream].items():
                assert e["pooled"][stream][metric] == pytest.approx(value, abs=1e-6), (stream, metric)
    assert set(doc["metrics"]) == {"vmaf", "vmaf_neg", "psnr_y", "ssim"}

    def curve(role, stream, metric):
        pts = sorted((e["bitrate_kbps"], e["pooled"][stream][metric]) for e in encodes if e["ladder"] == role)
        return [r for r, _ in pts], [q for _, q in pts]

    for metric in doc["metrics"]:
        raw, pre = curve("encode", "distorted", metric), curve("encode", "prefiltered", metric)
        assert doc["bd_rate"]["prefiltered_vs_distorted"][metric] == pytest.approx(
            pchip(*raw, *pre, method="pchip", require_matching_points=False), abs=1e-9)
        for stream in ("distorted", "prefiltered"):
            a, t = curve("against", stream, metric), curve("encode", stream, metric)
            assert doc["bd_rate"]["vs_against"][stream][metric] == pytest.approx(
                pchip(*a, *t, method="pchip", require_matching_points=False), abs=1e-9)
    # x265 needs fewer bits than x264 for the same quality on real video
    assert doc["bd_rate"]["vs_against"]["distorted"]["psnr_y"] > 0
    assert (root / "rd.csv").read_text().count("\n") == 9
    assert (root / "rd.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    page = (root / "rd.html").read_text()
    assert "BD-rate" in page and "<svg" in page and "libx265:24,30,36,42" in page


def test_a_rerun_reuses_the_cached_encodes_and_scores(ladder_run):
    root, _, env, args, doc = ladder_run
    stamps = {e["path"]: os.stat(e["path"]).st_mtime_ns for e in doc["encodes"]}
    again = _rd(*args[:-8], "--json", str(root / "again.json"), "--quiet", env=env)
    assert again.returncode == 0, again.stderr
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps
    second = json.loads((root / "again.json").read_text())
    assert second["bd_rate"] == doc["bd_rate"]


def _one_line(proc: subprocess.CompletedProcess, *expect: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("rd: error: ") and all(e in lines[0] for e in expect), lines[0]
    return lines[0]


def test_ladders_the_calculator_rejects_are_one_line(ladder_run, tmp_path):
    root, ref, env, _, doc = ladder_run
    x264 = [e["path"] for e in doc["encodes"] if e["ladder"] == "encode"]
    _one_line(_rd(str(ref), *x264[:3], env=env), "3 encode(s)", "at least 4")
    _one_line(_rd(str(ref), "--encode", "libx264:30,36,42", env=env), "libx264:30,36,42", "at least 4")
    # quality falling as the rate rises: the best-rate encode is of a noisy copy of the reference
    noisy_frames = []
    with av.open(str(ref)) as container:
        rng = np.random.default_rng(0)
        for frame in container.decode(video=0):
            y = frame.planes[0]
            luma = np.frombuffer(y, np.uint8).reshape(-1, y.line_size)[: frame.height, : frame.width]
            noisy_frames.append(np.clip(luma + rng.normal(0, 25, luma.shape), 0, 255).astype(np.uint8))
    noisy = encode_luma_frames(tmp_path / "noisy_crf8.mkv", noisy_frames, "libx264", {"crf": "8"})
    _one_line(_rd(str(ref), *x264[1:], str(noisy), "--model", "learned_filter_codec_v2", "--device", "cpu",
                  "--workers", "1", env=env), "quality does not rise")
    # two ladders whose qualities do not overlap: near-lossless x264 against very low-rate x264
    high = [encode_luma_frames(tmp_path / f"hi{c}.mkv", _frames(ref), "libx264", {"crf": str(c)})
            for c in (1, 3, 5, 7)]
    low = [encode_luma_frames(tmp_path / f"lo{c}.mkv", _frames(ref), "libx264", {"crf": str(c)})
           for c in (45, 47, 49, 51)]
    _one_line(_rd(str(ref), *map(str, high), "--against", *map(str, low), "--model", "learned_filter_codec_v2",
                  "--device", "cpu", "--workers", "1", "--vmaf-model", "vmaf_v0.6.1", env=env), "do not overlap")


def _frames(ref: Path) -> list[np.ndarray]:
    out = []
    with av.open(str(ref)) as container:
        for frame in container.decode(video=0):
            y = frame.planes[0]
            out.append(np.frombuffer(y, np.uint8).reshape(-1, y.line_size)[: frame.height, : frame.width].copy())
    return out


def test_bad_rd_usage_is_one_line(tmp_path):
    ref = tmp_path / "ref.mkv"
    ref.write_bytes(b"")
    _one_line(_rd(str(ref)), "give the ladder")
    _one_line(_rd(str(ref), "--encode", "libx999:1,2,3,4"), "libx264")
    _one_line(_rd(str(ref), "--encode", "libx264:1,2,3,99"), "CRF 0..51")
    _one_line(_rd(str(ref), "a.mp4", "b.mp4", "c.mp4", "d.mp4"), "does not exist")


def test_ctrl_c_ends_rd_at_once_with_its_cluster(tmp_path):
    import signal
    import time

    frames = [np.full((96, 128), 60 + 4 * n, np.uint8) for n in range(40)]
    ref = encode_luma_frames(tmp_path / "ref.mkv", frames, "ffv1")
    env = {**os.environ, "VSFILTER_CACHE_DIR": str(tmp_path / "cache")}
    child = subprocess.Popen([sys.executable, "-m", "vsfilter.rd", str(ref), "--encode", "libx264:20,26,32,38",
                              "--model", "learned_filter_codec_v2", "--device", "cpu", "--workers", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120  # wait until the cluster is up and the ladder is being made
    while not (tmp_path / "cache" / "rd" / "encodes").is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert child.poll() is None, child.communicate()
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert time.monotonic() - sent < 1.0 and child.returncode == 130
    assert err.strip().splitlines()[-1] == "rd: interrupted"
    left = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and ".tmp" in p.name]
    assert not left, left
