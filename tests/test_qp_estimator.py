"""The quantizer estimate where the bitstream is silent: the rate and codec props source sets from its
packet index, the estimate as a two-input model's plane in vmaf_pre (props, override, registry), and
the estimator's training step (resumes exactly, bad input one line)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import vapoursynth as vs

import vsfilter
from vsfilter.qp_estimator import RATE_WINDOW, coded_bits_per_pixel

from media import encode_clip

torch = pytest.importorskip("torch", reason="the train extra (torch) is needed; .ci/setup installs it")
ROOT = Path(__file__).resolve().parents[1]


def test_coded_rate_leaves_keyframes_out_within_its_window():
    sizes = np.array([1000, 10, 30, 20, 1000, 40, 50])
    key = np.array([1, 0, 0, 0, 1, 0, 0], bool)
    rate = coded_bits_per_pixel(sizes, key, pixels=8, window=1)
    assert rate[0] == 8 * 10 / 8  # frame 0's window holds frames 0-1: the inter one only
    assert rate[4] == pytest.approx(8 * (20 + 40) / 2 / 8)
    assert rate[2] == pytest.approx(8 * 20 / 8)
    only_keys = coded_bits_per_pixel(np.array([100, 300]), np.array([1, 1], bool), pixels=1, window=3)
    assert list(only_keys) == [1600, 1600]  # all-intra streams: the mean of their keyframes


def test_source_sets_codec_and_coded_rate_props(tmp_path):
    hevc = encode_clip(tmp_path / "hevc.mkv", "libx265", frames=30, width=128, height=96,
                       options={"crf": "30", "x265-params": "log-level=error:keyint=10"})
    with av.open(str(hevc)) as container:  # the packets, independently: sizes in presentation order
        packets = sorted((p.pts, p.size, p.is_keyframe) for p in container.demux(video=0) if p.size)
    sizes, key = np.array([p[1] for p in packets]), np.array([p[2] for p in packets])
    want = coded_bits_per_pixel(sizes, key, 128 * 96)
    clip = vsfilter.source(hevc, cache=False)
    for n in (17, 0, 29):
        props = clip.get_frame(n).props
        assert props["Codec"] == "hevc" and props["CodedBitsPerPixel"] == pytest.approx(want[n], rel=1e-12)
    assert key.sum() >= 3 and want[0] < 8 * sizes[0] / (128 * 96)  # keyframes are left out of the rate
    assert RATE_WINDOW < 15 and want[0] != want[29]  # a window, not the stream's mean


def _estimator_onnx(path: Path, qp: float) -> Path:
    """An estimator that says ``qp`` whatever it sees (its last layer's weights zero)."""
    from training.qp_estimator import CODECS, QuantizerEstimator, export_estimator

    model = QuantizerEstimator(8, len(CODECS))
    with torch.no_grad():
        model.head[2].weight.zero_()
        model.head[2].bias.fill_(qp / 51)
    export_estimator(model, path)
    return path


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory, two_input_onnx) -> Path:
    """A model folder: a two-input model (conftest's ``two_input_onnx``) with an estimator."""
    from vsfilter.models import sha256_file

    folder = tmp_path_factory.mktemp("models")
    shutil.copyfile(two_input_onnx, folder / "two.onnx")
    _estimator_onnx(folder / "two.qp.onnx", 40.0)
    row = {"id": "two_input", "kind": "filter", "onnx": "two.onnx", "sha256": sha256_file(folder / "two.onnx"),
           "opset": 17, "license": "test", "inputs": ["luma", "quantizer"],
           "qp_estimator": {"onnx": "two.qp.onnx", "sha256": sha256_file(folder / "two.qp.onnx")}}
    (folder / "registry.json").write_text(json.dumps({"schema_version": 1, "models": [row]}))
    return folder


def _plane(clip: vs.VideoNode, n: int = 0) -> np.ndarray:
    return np.asarray(clip.get_frame(n)[0]).copy()


def test_vmaf_pre_feeds_the_estimate_where_the_bitstream_is_silent(registry_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(registry_dir))
    hevc = vsfilter.source(encode_clip(tmp_path / "hevc.mkv", "libx265", frames=6, width=128, height=96,
                                       options={"crf": "34", "x265-params": "log-level=error"}), cache=False)
    out = vsfilter.vmaf_pre(hevc, model="two_input", device="cpu")
    props = out.get_frame(2).props
    assert props["VmafPreQPSource"] == "estimate" and props["VmafPreQP"] == pytest.approx(40.0, abs=1e-4)
    told = vsfilter.vmaf_pre(hevc, model="two_input", device="cpu", quantizer=40.0)
    assert np.array_equal(_plane(out, 2), _plane(told, 2)) and told.get_frame(0).props["VmafPreQPSource"] == "given"
    # without the rate and codec props (another source filter's clip): the "unknown" plane, as told so
    bare = vsfilter.vmaf_pre(hevc.std.RemoveFrameProps(["CodedBitsPerPixel"]), model="two_input", device="cpu")
    blind = vsfilter.vmaf_pre(hevc, model="two_input", device="cpu", quantizer="unknown")
    assert bare.get_frame(0).props["VmafPreQPSource"] == "unknown" and bare.get_frame(0).props["VmafPreQP"] == -1
    assert np.array_equal(_plane(bare), _plane(blind)) and not np.array_equal(_plane(bare), _plane(out))
    # H.264 tells its quantizer: the bitstream wins, unless the estimate is asked for (not an H.264 model: unknown)
    h264 = vsfilter.source(encode_clip(tmp_path / "x264.mp4", "libx264", frames=4, width=128, height=96,
                                       options={"crf": "30"}), cache=False)
    props = vsfilter.vmaf_pre(h264, model="two_input", device="cpu").get_frame(0).props
    assert props["VmafPreQPSource"] == "bitstream" and 20 < props["VmafPreQP"] < 45
    forced = vsfilter.vmaf_pre(h264, model="two_input", device="cpu", quantizer="estimate").get_frame(0).props
    assert forced["VmafPreQPSource"] == "unknown"  # the estimator serves HEVC and AV1 only


def test_the_estimate_needs_a_model_that_has_one(registry_dir, tmp_path, monkeypatch):
    from training.validate_model_registry import validate

    assert validate(registry_dir) == ([], 1)
    clip = vsfilter.source(encode_clip(tmp_path / "x.mp4", "libx264", frames=2, width=64, height=64), cache=False)
    with pytest.raises(vs.Error, match="needs a model with a quantizer estimator"):
        vsfilter.vmaf_pre(clip, model=str(registry_dir / "two.onnx"), device="cpu", quantizer="estimate")
    # another estimate is another model: results (compare, batch resume) name it apart
    from vsfilter.models import resolve_model

    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(registry_dir))
    spec = resolve_model("two_input")
    assert spec.identity not in (spec.sha256, resolve_model(str(registry_dir / "two.onnx")).identity)
    broken = tmp_path / "broken"
    shutil.copytree(registry_dir, broken)
    _estimator_onnx(broken / "two.qp.onnx", 20.0)  # replaced: its sha256 no longer matches
    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(broken))
    with pytest.raises(vs.Error, match="quantizer estimator two.qp.onnx does not match"):
        vsfilter.vmaf_pre(clip, model="two_input", device="cpu")
    assert any("qp_estimator: sha256" in p for p in validate(broken)[0])


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.train_qp_estimator", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_estimator_training_resumes_to_the_unbroken_run(quantizer_pairs, tmp_path):
    import onnx
    from onnx import numpy_helper

    common = ["--pairs", str(quantizer_pairs), "--val-packages", "b", "--steps", "6", "--batch-size", "2",
              "--seed", "3", "--threads", "1"]
    whole = _train(*common, "--output", str(tmp_path / "whole.onnx"))
    assert whole.returncode == 0, whole.stderr
    assert "held out hevc" not in whole.stdout and "libx265" in whole.stdout  # per encoder on package b
    state = tmp_path / "state.ckpt"
    first = _train(*common, "--output", str(tmp_path / "broken.onnx"), "--state", str(state), "--chunk", "3",
                   "--stop-after", "0")
    assert first.returncode == 0 and "stopped at step 3/6" in first.stdout and not (tmp_path / "broken.onnx").exists()
    second = _train(*common, "--output", str(tmp_path / "broken.onnx"), "--state", str(state), "--chunk", "3")
    assert second.returncode == 0 and "resumed at step 3" in second.stdout, second.stderr

    def weights(path: Path) -> dict:
        return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}

    a, b = weights(tmp_path / "whole.onnx"), weights(tmp_path / "broken.onnx")
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], atol=1e-6) for k in a)
    record = json.loads((tmp_path / "whole.json").read_text())
    assert record["codecs"] == ["hevc", "av1"] and record["training_frames"] > 0
    # bad input: one line, exit 2, before any work
    for args, needle in (([*common, "--output", str(tmp_path / "x.txt")], "must end in .onnx"),
                         ([*common, "--output", str(tmp_path / "whole.onnx")], "exists; pass --force"),
                         (["--pairs", str(tmp_path), "--output", str(tmp_path / "y.onnx")], "not a codec pair set"),
                         ([*common, "--output", str(tmp_path / "z.onnx"), "--tau", "1.5"], "quantile"),
                         ([*common, "--output", str(tmp_path / "z.onnx"), "--tau", "hevc=0.3"], "each of hevc, av1"),
                         ([*common, "--output", str(tmp_path / "z.onnx"), "--tau", "vp9=0.3", "av1=0.1"], "CODEC=TAU"),
                         ([*common, "--output", str(tmp_path / "z.onnx"), "--stop-after", "5"], "needs --state")):
        bad = _train(*args)
        assert bad.returncode == 2 and needle in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    # other settings cannot resume this state
    other = _train(*common[:-4], "--seed", "4", "--threads", "1", "--output", str(tmp_path / "o.onnx"),
                   "--state", str(state))
    assert other.returncode == 2 and "other settings" in other.stderr


def test_a_quantile_per_codec_weighs_each_codecs_errors_by_its_own():
    """--tau hevc=0.3 av1=0.1: an HEVC frame's under-estimate costs 0.3 a unit, an AV1 frame's 0.1; the
    over-estimates 0.7 and 0.9."""
    import torch

    from training.qp_estimator import CODECS, EstimatorTraining, pinball_loss, rate_input

    run = EstimatorTraining({"steps": 1, "batch_size": 2, "tau": {"hevc": 0.3, "av1": 0.1}, "lr": 1e-3, "seed": 1})
    rate = torch.from_numpy(np.stack([rate_input(0.1, "hevc"), rate_input(0.1, "av1")]))
    assert CODECS == ("hevc", "av1") and torch.allclose(run._tau(rate), torch.tensor([[0.3], [0.1]]))
    target = torch.zeros(2, 1)
    low, high = pinball_loss(target - 1, target, run._tau(rate)), pinball_loss(target + 1, target, run._tau(rate))
    assert abs(float(low) - (0.3 + 0.1) / 2) < 1e-6 and abs(float(high) - (0.7 + 0.9) / 2) < 1e-6
    same = EstimatorTraining({"steps": 1, "batch_size": 2, "tau": 0.2, "lr": 1e-3, "seed": 1})
    assert same._tau(rate) == 0.2


def test_compare_says_what_a_quantizer_model_is_told(registry_dir, tmp_path, monkeypatch):
    """compare reports what a two-input model was told on every scored frame, not the first one only:
    per frame in the JSON and the CSV (an H.264 frame's QP is that frame's own QP prop), one note per
    source with the QP over the stream; told nothing (an FFV1 stream), a warning says why the model
    leaves those frames alone."""
    from vsfilter.compare import compare
    from vsfilter.compare.report import write_csv
    from vsfilter.quantizer import PROP_MEAN, qp_equivalent

    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(registry_dir))
    ref = encode_clip(tmp_path / "ref.mkv", "ffv1", frames=6, width=128, height=96)
    said, results = {}, {}
    for name, codec, options in (("hevc.mkv", "libx265", {"crf": "34", "x265-params": "log-level=error"}),
                                 ("x264.mp4", "libx264", {"crf": "30", "g": "3"}), ("ffv1.mkv", "ffv1", {})):
        dist = encode_clip(tmp_path / name, codec, frames=6, width=128, height=96, options=options)
        results[codec] = result = compare(ref, dist, model="two_input", device="cpu", find_offset=0)
        said[codec] = [x for x in result.notes + result.warnings if "two_input was told" in x]
    assert said["libx265"] == ["two_input was told a learned estimate of the quantizer (the stream carries none) "
                               "on 6 of 6 scored frames: H.264-equivalent QP 40.0 on average (40.0 to 40.0)"]
    estimate = {"qp": pytest.approx(40.0), "source": "estimate"}
    assert [row["quantizer"] for row in results["libx265"].per_frame] == [estimate] * 6

    clip = vsfilter.source(tmp_path / "x264.mp4", cache=False)
    qps = [float(qp_equivalent("h264", clip.get_frame(n).props[PROP_MEAN])) for n in range(6)]
    told = [row["quantizer"] for row in results["libx264"].per_frame]
    assert told == [{"qp": pytest.approx(q, abs=1e-9), "source": "bitstream"} for q in qps]
    assert len(set(qps)) > 1  # frames differ: a first-frame figure would not do
    mean = sum(qps) / 6
    assert said["libx264"] == [f"two_input was told the quantizer by the bitstream (QP props) on 6 of 6 scored "
                               f"frames: H.264-equivalent QP {mean:.1f} on average ({min(qps):.1f} to {max(qps):.1f})"]
    write_csv(results["libx264"], tmp_path / "x264.csv")
    header, *rows = [line.split(",") for line in (tmp_path / "x264.csv").read_text().splitlines()]
    assert header[-2:] == ["quantizer_qp", "quantizer_source"]
    assert [(float(r[-2]), r[-1]) for r in rows] == [(pytest.approx(q), "bitstream") for q in qps]
    every_other = compare(ref, tmp_path / "x264.mp4", model="two_input", device="cpu", find_offset=0, subsample=2)
    assert [row["quantizer"]["qp"] for row in every_other.per_frame] == pytest.approx(qps[::2])

    assert len(said["ffv1"]) == 1 and "told nothing" in said["ffv1"][0] and "hevc, av1" in said["ffv1"][0]
    assert "on 6 of 6 scored frames" in said["ffv1"][0] and said["ffv1"][0] in results["ffv1"].warnings
    assert results["ffv1"].per_frame[0]["quantizer"] == {"qp": None, "source": "unknown"}
