"""The quantizer as data: source's QP props, the one scale of vsfilter.quantizer, two-input models through
vmaf_pre (props, override, tiling), round trips that record the quantizer, and quantizer-conditioned
training that resumes exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import vapoursynth as vs

import vsfilter
from vsfilter.quantizer import UNKNOWN, frame_plane, qp_equivalent

from media import encode_clip

torch = pytest.importorskip("torch", reason="the train extra (torch) is needed; .ci/setup installs it")
ROOT = Path(__file__).resolve().parents[1]


def _qp_maps(path: Path) -> list[np.ndarray]:
    from av.sidedata.sidedata import Type

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"export_side_data": "venc_params"}
        return [np.asarray(f.side_data.get(Type.VIDEO_ENC_PARAMS).qp_map()) for f in container.decode(stream)]


@pytest.fixture(scope="module")
def h264(tmp_path_factory) -> Path:
    return encode_clip(tmp_path_factory.mktemp("qp") / "x264.mp4", "libx264", frames=12, width=200, height=120,
                       options={"crf": "36", "aq-mode": "2"})


def test_source_sets_the_decoders_quantizer_as_props(h264, tmp_path):
    maps = _qp_maps(h264)
    clip = vsfilter.source(h264)
    for n in (5, 0, 11, 3):  # any order
        props = clip.get_frame(n).props
        assert props["QPKind"] == "h264" and props["QPBlockSize"] == 16 and props["QPMapWidth"] == 13
        assert props["QPMean"] == pytest.approx(float(maps[n].mean()), abs=1e-9)
        assert np.array_equal(np.frombuffer(props["QPMap"], np.uint8).reshape(-1, 13), maps[n])
    vp9 = encode_clip(tmp_path / "vp9.webm", "libvpx-vp9", frames=4, width=96, height=64, options={"crf": "40"})
    props = vsfilter.source(vp9).get_frame(1).props
    assert props["QPKind"] == "vp9" and props["QPBlockSize"] == 0 and 0 < props["QPMean"] <= 255
    hevc = encode_clip(tmp_path / "hevc.mkv", "libx265", frames=3, width=96, height=64,
                       options={"x265-params": "log-level=error"})
    assert not [k for k in vsfilter.source(hevc).get_frame(0).props if k.startswith("QP")]
    assert not [k for k in vsfilter.source(h264, quantizer=False).get_frame(0).props if k.startswith("QP")]


def test_b_frames_get_their_own_quantizer_whatever_the_decoder_threads(tmp_path):
    """FFmpeg's frame-threaded H.264 decoder exports corrupt QPs for B-frames (a freed QP table): the
    source decodes H.264 with slice threads while it exports the quantizer, so every frame's props
    equal a single-threaded decode's, in every decode; frame threads stay where nothing is exported
    and for the codecs whose export they do not corrupt."""
    from av.sidedata.sidedata import Type

    from vsfilter.reader.decoding import decoder_threading, probe

    path = encode_clip(tmp_path / "bframes.mp4", "libx264", frames=48, width=320, height=240,
                       options={"crf": "34", "bf": "3"})
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {"export_side_data": "venc_params"}
        want = [float(np.asarray(f.side_data[Type.VIDEO_ENC_PARAMS].qp_map()).mean()) for f in container.decode(stream)]
    assert len(set(want)) > 3
    for _ in range(3):
        clip = vsfilter.source(path, threads=4, cache=False)
        assert [f.props["QPMean"] for f in clip.frames()] == pytest.approx(want, abs=1e-9)
    with av.open(str(path)) as container:
        info = probe(container, path, 0, 4)[0]
        assert decoder_threading(info) == "SLICE"
        assert decoder_threading(replace(info, quantizer=False)) == "AUTO"
        assert decoder_threading(replace(info, codec="vp9")) == "AUTO"


def test_one_scale_for_every_codec():
    assert qp_equivalent("h264", 42, bits=10) == 30  # FFmpeg's QP' of CRF 30 at 10 bits
    assert qp_equivalent("vp9", 255) == pytest.approx(51.0, abs=0.05)
    assert qp_equivalent("vp9", 0) == 0 and qp_equivalent("av1", 120) == qp_equivalent("vp9", 120)
    assert qp_equivalent("mpeg2", 8) == pytest.approx(22.0)
    props = {"QPKind": "h264", "QPMean": 30.0, "QPBlockSize": 16, "QPMap": bytes([20, 40, 30, 30]), "QPMapWidth": 2}
    told = frame_plane(props, 20, 20, 8)
    plane = told.plane
    assert plane[0, 0] == pytest.approx(20 / 51) and plane[0, 19] == pytest.approx(40 / 51) and plane.shape == (20, 20)
    assert told.source == "bitstream" and told.qp == pytest.approx(30.0)
    assert (frame_plane({}, 8, 8, 8).plane == UNKNOWN).all() and frame_plane({}, 8, 8, 8).source == "unknown"
    assert (frame_plane(props, 8, 8, 8, "unknown").plane == UNKNOWN).all()
    assert (frame_plane(props, 8, 8, 8, 51).plane == 1.0).all() and frame_plane(props, 8, 8, 8, 51).source == "given"
    # the estimate only where the props say nothing (or when asked for), and only when it is asked
    asked = []
    estimate = lambda: asked.append(1) or 36.0  # noqa: E731
    assert frame_plane(props, 8, 8, 8, estimate=estimate).source == "bitstream" and not asked
    guessed = frame_plane({}, 8, 8, 8, estimate=estimate)
    assert guessed.source == "estimate" and guessed.qp == 36.0 and (guessed.plane == np.float32(36 / 51)).all()
    assert frame_plane(props, 8, 8, 8, "estimate", estimate).source == "estimate"
    assert frame_plane({}, 8, 8, 8, estimate=lambda: None).source == "unknown"


def test_a_two_input_model_equals_onnx_run_directly_and_tiles_exactly(h264, two_input_onnx):
    import onnxruntime as ort

    clip = vsfilter.source(h264)
    out = vsfilter.vmaf_pre(clip, model=str(two_input_onnx), device="cpu")
    session = ort.InferenceSession(str(two_input_onnx), providers=["CPUExecutionProvider"])
    maps = _qp_maps(h264)
    for n in (0, 7):
        luma = np.asarray(clip.get_frame(n)[0]).astype(np.float32) / 255
        plane = np.repeat(np.repeat(maps[n] / 51.0, 16, 0), 16, 1)[:120, :200].astype(np.float32)
        expected = np.clip(np.rint(session.run(None, {"input": np.stack([luma, plane])[None]})[0][0, 0] * 255), 0, 255)
        got = np.asarray(out.get_frame(n)[0])
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    tiled = vsfilter.vmaf_pre(clip, model=str(two_input_onnx), device="cpu", tilesize=64)
    for n in (0, 7):
        assert np.array_equal(np.asarray(tiled.get_frame(n)[0]), np.asarray(out.get_frame(n)[0]))
    # the quantizer matters, the override wins, and a stream without props is fed "unknown"
    hard = vsfilter.vmaf_pre(clip, model=str(two_input_onnx), device="cpu", quantizer=51)
    blind = vsfilter.vmaf_pre(clip, model=str(two_input_onnx), device="cpu", quantizer="unknown")
    bare = vsfilter.vmaf_pre(clip.std.RemoveFrameProps(["QPMean", "QPKind"]), model=str(two_input_onnx), device="cpu")
    assert not np.array_equal(np.asarray(hard.get_frame(0)[0]), np.asarray(out.get_frame(0)[0]))
    assert np.array_equal(np.asarray(blind.get_frame(0)[0]), np.asarray(bare.get_frame(0)[0]))


@pytest.fixture
def registry_with_specialist(tmp_path, two_input_onnx, monkeypatch) -> Path:
    """A registry whose two-input model ``main`` runs ``spec264`` (other weights) on H.264 frames."""
    import shutil

    from training.checkpoint import load_onnx_weights
    from training.onnx_export import export_onnx
    from vsfilter.models import sha256_file

    shutil.copy(two_input_onnx, tmp_path / "main.onnx")
    other, _ = load_onnx_weights(two_input_onnx)
    with torch.no_grad():
        other.head[0].weight[:, 1] *= -3  # told the same plane, it does something else
    export_onnx(other.eval(), tmp_path / "spec264.onnx")
    rows = [{"id": name, "kind": "filter", "onnx": f"{name}.onnx", "sha256": sha256_file(tmp_path / f"{name}.onnx"),
             "opset": 17, "license": "test", "inputs": ["luma", "quantizer"]} for name in ("main", "spec264")]
    estimator = ROOT / "model" / "tiny" / "learned_filter_codec_v3.qp.onnx"
    shutil.copy(estimator, tmp_path / "main.qp.onnx")
    rows[0] |= {"specialists": {"h264": "spec264", "hevc": "spec264"},
                "qp_estimator": {"onnx": "main.qp.onnx", "sha256": sha256_file(estimator)}}
    (tmp_path / "registry.json").write_text(json.dumps({"schema_version": 1, "models": rows}))
    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(tmp_path))
    return tmp_path


def test_a_specialist_runs_where_the_stream_names_its_codec(h264, registry_with_specialist, tmp_path):
    """H.264 frames told by the bitstream, and HEVC frames told the estimate, run the specialist's weights
    (its ONNX run directly, tiled == untiled); frames with no QP props, or a given QP, run the model's
    own; the identity covers both."""
    from training.validate_model_registry import validate

    clip = vsfilter.source(h264)
    routed = vsfilter.vmaf_pre(clip, model="main", device="cpu")
    alone = {name: vsfilter.vmaf_pre(clip, model=str(registry_with_specialist / f"{name}.onnx"), device="cpu")
             for name in ("main", "spec264")}
    for n in (0, 5):
        frame = routed.get_frame(n)
        assert frame.props["VmafPreNetwork"] == "spec264" and frame.props["VmafPreQPSource"] == "bitstream"
        assert np.array_equal(np.asarray(frame[0]), np.asarray(alone["spec264"].get_frame(n)[0]))
        assert not np.array_equal(np.asarray(frame[0]), np.asarray(alone["main"].get_frame(n)[0]))
    tiled = vsfilter.vmaf_pre(clip, model="main", device="cpu", tilesize=64).get_frame(5)
    assert np.array_equal(np.asarray(tiled[0]), np.asarray(routed.get_frame(5)[0]))
    hevc = vsfilter.source(encode_clip(tmp_path / "hevc.mkv", "libx265", frames=4, width=160, height=96,
                                       options={"crf": "36", "x265-params": "log-level=error"}), cache=False)
    frame = vsfilter.vmaf_pre(hevc, model="main", device="cpu").get_frame(1)
    assert frame.props["VmafPreQPSource"] == "estimate" and frame.props["VmafPreNetwork"] == "spec264"
    bare = clip.std.RemoveFrameProps(["QPMean", "QPKind", "Codec"])
    for source, options in ((bare, {}), (clip, {"quantizer": 30})):
        frame = vsfilter.vmaf_pre(source, model="main", device="cpu", **options).get_frame(2)
        expected = vsfilter.vmaf_pre(source, model=str(registry_with_specialist / "main.onnx"), device="cpu",
                                     **options).get_frame(2)
        assert frame.props["VmafPreNetwork"] == "main" and np.array_equal(np.asarray(frame[0]), np.asarray(expected[0]))
    spec = vsfilter.resolve_model("main")
    assert frame.props["VmafPreSha256"] == spec.identity != spec.sha256
    from vsfilter.compare import compare

    report = compare(h264, h264, model="main", device="cpu", cambi=False, find_offset=0)
    assert "main's specialist network spec264 ran on 12 of 12 scored frames" in report.notes, report.notes
    assert report.model["sha256"] == spec.identity
    assert validate(registry_with_specialist) == ([], 2)
    # a registry that names a specialist wrongly fails when the model is loaded, in one line
    registry = json.loads((registry_with_specialist / "registry.json").read_text())
    for wrong, why in (({"h265": "spec264"}, "not a quantizer kind"), ({"h264": "gone"}, "not another model"),
                       ({"h264": "main"}, "not another model")):
        registry["models"][0]["specialists"] = wrong
        (registry_with_specialist / "registry.json").write_text(json.dumps(registry))
        with pytest.raises(vs.Error, match=why):
            vsfilter.vmaf_pre(clip, model="main", device="cpu")
    assert any("not another model" in p for p in validate(registry_with_specialist)[0])


def test_a_network_can_train_on_the_estimate_vmaf_pre_will_feed_it(quantizer_pairs, tmp_path):
    """``--estimated-quantizer``: pairs whose decoder exports no quantizer (x265) are told the estimator's
    estimate of their frame, the others keep their bitstream map; misuse is one line, exit 2."""
    from training.pair_sets import load_pairs, told_estimates
    from vsfilter.qp_estimator import QuantizerEstimator

    estimator = ROOT / "model" / "tiny" / "learned_filter_codec_v3.qp.onnx"
    triples, labels = load_pairs(quantizer_pairs, identity=True, quantizer=True)
    told = told_estimates(triples, labels, estimator)
    direct = QuantizerEstimator(estimator)
    kinds = set()
    for (_, degraded, qp), (_, _, new), label in zip(triples, told, labels, strict=True):
        kinds.add(label["encoder"])
        if label["qp_source"] == "encoder":
            want = direct(degraded, (1 << label["bits"]) - 1, {"Codec": "hevc", "CodedBitsPerPixel":
                                                                label["bits_per_pixel"]})
            assert want is not None and np.allclose(new, want) and new.shape == qp.shape
        else:
            assert np.array_equal(new, qp, equal_nan=True)
    assert {"identity", "libx265"} <= kinds
    for extra, why in (([], "needs --quantizer"), (["--quantizer", "--estimated-quantizer", str(tmp_path / "no.onnx")],
                                                     "no such file")):
        args = ["--degradation", "codec", "--pairs", str(quantizer_pairs), "--output-c3", str(tmp_path / "run"),
                *(extra or ["--estimated-quantizer", str(estimator)])]
        proc = subprocess.run([sys.executable, "-m", "training.train_konvid", *args], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        assert proc.returncode == 2 and why in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_quantizer_options_are_checked(h264, two_input_onnx):
    clip = vsfilter.source(h264)
    with pytest.raises(vs.Error, match="two-input models"):
        vsfilter.vmaf_pre(clip, model="learned_filter_codec_v2", device="cpu", quantizer=30)
    with pytest.raises(vs.Error, match="from 0 to 63"):
        vsfilter.vmaf_pre(clip, model=str(two_input_onnx), device="cpu", quantizer=99)


def test_round_trips_record_their_quantizer():
    from training.encoding import Encode, round_trip

    rng = np.random.default_rng(1)
    frames = np.clip(np.linspace(20, 220, 96)[None, None, :] + rng.normal(0, 2, (6, 64, 96)), 0, 255).astype(np.uint8)
    x264 = round_trip(frames, Encode("libx264", 30, "medium", "bframes"))
    assert x264.qp_source == "bitstream" and x264.qp.shape == (6, 4, 6) and 20 < np.nanmean(x264.qp) < 45
    ten = round_trip(frames.astype(np.uint16) * 4, Encode("libx264", 30, "medium", "bframes"))
    assert abs(np.nanmean(ten.qp) - np.nanmean(x264.qp)) < 4  # the bit-depth offset is removed
    x265 = round_trip(frames, Encode("libx265", 30, "medium", "bframes"))
    assert x265.qp_source == "encoder" and 20 < np.nanmean(x265.qp) < 45
    same = round_trip(frames, Encode("identity", 0, "", ""))
    assert same.qp_source == "none" and np.isnan(same.qp).all()


def _train(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "training.train_konvid", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_quantizer_training_resumes_to_the_unbroken_run(quantizer_pairs, tmp_path):
    """Codec pairs with their quantizer, a two-input network warm-started from codec_v2 (step 0 = codec_v2),
    and a run stopped after one chunk and resumed equals the unbroken run."""
    from training.checkpoint import load_model

    pairs = quantizer_pairs
    common = ["--degradation", "codec", "--pairs", str(pairs), "--quantizer", "--val-packages", "b", "--steps", "6",
              "--chunk", "3", "--crop", "64", "--batch-size", "4", "--lr", "5e-4", "--seed", "4", "--quiet"]
    init = ["--init", str(ROOT / "model" / "tiny" / "learned_filter_codec_v2.onnx")]
    _train(*common, *init, "--output-c3", str(tmp_path / "whole"))
    _train(*common, *init, "--output-c3", str(tmp_path / "broken"), "--stop-after", "0")  # one chunk, then stop
    assert torch.load(tmp_path / "broken" / "last.ckpt", weights_only=True)["train_state"]["step"] == 3
    _train(*common, "--output-c3", str(tmp_path / "broken"), "--resume")
    whole, ckpt = load_model(tmp_path / "whole" / "last.ckpt")
    resumed, _ = load_model(tmp_path / "broken" / "last.ckpt")
    assert ckpt["arch"]["in_channels"] == 2 and whole.in_channels == 2
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    assert whole.head[0].weight[:, 1].abs().sum() > 0  # the quantizer input learned something
    # where the run stands: told the quantizer, blind, and codec_v2 on the held-out package
    report = subprocess.run([sys.executable, "-m", "training.evaluate_run", "--ckpt", str(tmp_path / "whole" /
                             "last.ckpt"), "--pairs", str(pairs), "--packages", "b", "--every", "1", "--against",
                             str(ROOT / "model" / "tiny" / "learned_filter_codec_v2.onnx")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert report.returncode == 0, report.stderr
    assert [line.split()[0] for line in report.stdout.splitlines()[1::2]] == [
        "learned_filter_codec_v2", "last.ckpt", "last.ckpt"] and "blind" in report.stdout
    # shipped with its quantizer estimate: the registry row states the inputs and the estimator, and validates
    from training.qp_estimator import QuantizerEstimator, export_estimator
    from training.validate_model_registry import validate

    export_estimator(QuantizerEstimator(8), tmp_path / "estimator.onnx")
    shipped = subprocess.run([sys.executable, "-m", "training.export_tiny_models", "--c3-ckpt",
                              str(tmp_path / "whole" / "last.ckpt"), "--output-dir", str(tmp_path / "models"),
                              "--model-id", "test_v3", "--qp-estimator", str(tmp_path / "estimator.onnx")],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert shipped.returncode == 0, shipped.stderr
    row = json.loads((tmp_path / "models" / "registry.json").read_text())["models"][0]
    assert row["inputs"] == ["luma", "quantizer"] and row["qp_estimator"]["onnx"] == "test_v3.qp.onnx"
    assert validate(tmp_path / "models") == ([], 1)
    # a variant shipped with the same estimator shares its file (one copy of the bytes, two rows)
    variant = subprocess.run([sys.executable, "-m", "training.export_tiny_models", "--c3-ckpt",
                              str(tmp_path / "whole" / "last.ckpt"), "--output-dir", str(tmp_path / "models"),
                              "--model-id", "test_v3_variant", "--qp-estimator", str(tmp_path / "estimator.onnx")],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert variant.returncode == 0, variant.stderr
    rows = {r["id"]: r for r in json.loads((tmp_path / "models" / "registry.json").read_text())["models"]}
    assert rows["test_v3_variant"]["qp_estimator"] == rows["test_v3"]["qp_estimator"]
    assert not (tmp_path / "models" / "test_v3_variant.qp.onnx").exists()
    assert validate(tmp_path / "models") == ([], 2)
    # a per-codec specialist: its own row, named in the parent's (checked before anything is exported)
    def export(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "training.export_tiny_models", "--c3-ckpt",
                               str(tmp_path / "whole" / "last.ckpt"), "--output-dir", str(tmp_path / "models"), *extra],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)

    for bad, why in ((["--specialist-of", "test_v3:h265"], "KIND one of"), (["--specialist-of", "nope:h264"], "not a "
                     "two-input model"), (["--model-id", "test_v3", "--specialist-of", "test_v3:h264"], "another")):
        refused = export("--model-id", "test_v3_h264", *bad)
        assert refused.returncode == 2 and why in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "models" / "test_v3_h264.onnx").exists()
    specialist = export("--model-id", "test_v3_h264", "--specialist-of", "test_v3:h264")
    assert specialist.returncode == 0, specialist.stderr
    rows = {r["id"]: r for r in json.loads((tmp_path / "models" / "registry.json").read_text())["models"]}
    assert rows["test_v3"]["specialists"] == {"h264": "test_v3_h264"}
    assert validate(tmp_path / "models") == ([], 3)
    spec = vsfilter.resolve_model("test_v3", directory=tmp_path / "models")
    assert [(k, s.id) for k, s in spec.specialists] == [("h264", "test_v3_h264")] and spec.identity != spec.sha256
    # the static INT8 sidecar of a two-input model: calibrated on (luma, quantizer) crops, skip and tail in float
    import onnxruntime as ort

    from training.onnx_export import export_onnx

    fp32 = tmp_path / "v3.onnx"
    export_onnx(whole, fp32)
    int8 = tmp_path / "v3.int8.onnx"
    quant = subprocess.run([sys.executable, "-m", "training.ptq_static", "--model", str(fp32), "--output", str(int8),
                            "--pairs", str(pairs), "--count", "8", "--crop", "48"], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
    assert quant.returncode == 0 and "/skip/Conv" in quant.stdout, quant.stderr
    assert "/head/head.0/Conv" in quant.stdout  # the input (luma and plane) is not quantised
    from training.pair_sets import load_pairs
    from training.pairs import model_input

    triple = load_pairs(pairs, quantizer=True)[0][0]
    x = model_input(triple)
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, int8)]
    runs = [s.run(None, {"input": x})[0] for s in sessions]
    diff = np.abs(runs[0] - runs[1]) * 255  # in 8-bit codes, after 8 calibration crops of 48 px
    assert diff.mean() < 0.5 and diff.max() < 8, (diff.mean(), diff.max())
    # "unknown" (-1) reaches the INT8 network as unknown, not clipped to the uint8 input range as QP 0
    blind, told_zero = model_input(triple, blind=True), x.copy()
    told_zero[:, 1] = 0.0
    as_unknown, as_zero = (sessions[1].run(None, {"input": v})[0] for v in (blind, told_zero))
    assert not np.array_equal(as_unknown, as_zero)
    from training.measure_quant_drop import measure_told_unknown

    def runner(session):
        return lambda v: session.run(None, {"input": v})[0]

    triples = load_pairs(pairs, quantizer=True)[0][:4]
    told_unknown = measure_told_unknown(triples, *(runner(s) for s in sessions))
    assert told_unknown["images"] == 4 and abs(told_unknown["psnr_delta_db"]) < 0.5, told_unknown
    clipped = measure_told_unknown(triples, runner(sessions[0]), lambda v: runner(sessions[1])(np.maximum(v, 0)))
    assert clipped["psnr_gain_fast_db"] != told_unknown["psnr_gain_fast_db"]  # it sees what a clipped input does
    # quantisation-aware fine-tuning of the two-input network (from its .onnx), fed the quantizer plane, and
    # its INT8 sidecar: the fake-quantised forward is the QDQ graph's (one luma plane out, the skip exact)
    from training.qat import QATFilter

    tuned = subprocess.run([sys.executable, "-m", "training.qat_finetune", "--c3-ckpt", str(fp32), "--degradation",
                            "codec", "--pairs", str(pairs), "--val-packages", "b", "--output", str(tmp_path / "qat"),
                            "--steps", "2", "--crop", "48", "--batch-size", "2", "--quiet"],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    qat_model, qat_state = load_model(tmp_path / "qat" / "last.ckpt")
    assert qat_state["arch"]["in_channels"] == 2
    with torch.no_grad():
        fake = QATFilter(qat_model)(torch.from_numpy(x)).numpy()
    assert fake.shape == runs[0].shape and np.abs(fake - runs[0]).mean() * 255 < 0.5
    quant = subprocess.run([sys.executable, "-m", "training.ptq_static", "--model", str(fp32), "--output",
                            str(tmp_path / "v3.qat.int8.onnx"), "--pairs", str(pairs), "--count", "8", "--crop", "48",
                            "--qat-ckpt", str(tmp_path / "qat" / "last.ckpt")], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
    assert quant.returncode == 0, quant.stderr
    sidecar = ort.InferenceSession(str(tmp_path / "v3.qat.int8.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(sidecar.run(None, {"input": x})[0] - fake).mean() * 255 < 0.5


def test_calibration_crops_spread_over_the_pair_set_and_feed_the_unknown_plane():
    """INT8 calibration samples the whole pair set (its first pairs are a few sources), and a two-input
    model's crops see the plane "unknown" at the training share, so that value is calibrated too."""
    from training.calibration import crops

    triples = [(np.full((32, 32), i, np.uint8), np.full((32, 32), i, np.uint8), np.full((2, 2), 30.0, np.float32))
               for i in range(100)]
    out = crops(triples, 16, 10, unknown_share=0.5)
    assert all(c.shape == (1, 2, 16, 16) for c in out)
    assert sorted(round(float(c[0, 0, 0, 0]) * 255) for c in out) == list(range(0, 100, 10))
    planes = {round(float(c[0, 1, 0, 0]), 4) for c in out}
    assert planes == {UNKNOWN, round(30 / 51, 4)}
    assert {round(float(c[0, 1, 0, 0]), 4) for c in crops(triples, 16, 10)} == {round(30 / 51, 4)}
    assert len(crops(triples[:4], 16, 10)) == 10  # more crops than pairs cycle through them


@pytest.mark.parametrize("model", ["learned_filter_codec_v3", "learned_filter_codec_v3_wide"])
def test_shipped_codec_v3_is_told_by_the_bitstream_and_leaves_unknown_frames_alone(tmp_path, model):
    """The registered learned_filter_codec_v3 and its wider variant (two inputs, with the estimator): an
    H.264 CRF 40 stream tells it the QP and it restores, tiled exactly as untiled; HEVC gets the estimate;
    an FFV1 stream tells nothing and it stays (nearly) the identity."""
    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)

    spec = vsfilter.resolve_model(model)
    assert spec.planes == 2 and spec.qp_estimator is not None and spec.int8_path is not None
    import onnx  # the INT8 sidecar leaves its input float: a uint8 input would clip "unknown" (-1) to QP 0

    graph = onnx.load(str(spec.int8_path)).graph
    assert not [n.name for n in graph.node if n.op_type == "QuantizeLinear" and graph.input[0].name in n.input]
    assert spec.receptive_radius == (14 if model.endswith("_wide") else 10)
    seen = {}
    for name, codec, options in (("a.mp4", "libx264", {"crf": "40"}), ("b.mkv", "ffv1", {}),
                                 ("c.mkv", "libx265", {"crf": "38", "x265-params": "log-level=error"})):
        clip = vsfilter.source(encode_clip(tmp_path / name, codec, frames=4, width=160, height=128,
                                           options=options), cache=False)
        frame = vsfilter.vmaf_pre(clip, model=model, device="cpu").get_frame(1)
        if codec == "libx264":  # tiles of 48 px cut with their quantizer plane, overlapping by the radius
            tiled = vsfilter.vmaf_pre(clip, model=model, device="cpu", tilesize=48).get_frame(1)
            assert np.array_equal(np.asarray(tiled[0]), np.asarray(frame[0]))
        seen[codec] = (frame.props["VmafPreQPSource"], frame.props["VmafPreQP"],
                       psnr(np.asarray(frame[0]), np.asarray(clip.get_frame(1)[0])))
    assert seen["libx264"][0] == "bitstream" and 35 < seen["libx264"][1] < 51 and seen["libx264"][2] < 60
    assert seen["ffv1"][:2] == ("unknown", -1) and seen["ffv1"][2] > 55
    assert seen["libx265"][0] == "estimate" and 10 < seen["libx265"][1] < 51


def test_grow_keeps_the_output_and_a_wider_run_starts_from_the_shipped_network(quantizer_pairs, tmp_path):
    """The wider/deeper variant's warm start: ``grow`` adds planes, channels and blocks without changing the
    output, the new capacity trains, and an --init larger than the run is refused in one line before the data."""
    from training.checkpoint import load_model, load_onnx_weights
    from training.model import count_params, grow

    shipped, _ = load_onnx_weights(ROOT / "model" / "tiny" / "learned_filter_codec_v3.onnx")
    torch.manual_seed(0)
    x = torch.rand(2, 2, 48, 40)
    x[:, 1] = 38 / 51
    with torch.inference_mode():
        for sizes in ({"channels": 24}, {"num_blocks": 6}, {"channels": 20, "num_blocks": 5}):
            big = grow(shipped, **sizes)
            assert count_params(big) > count_params(shipped)
            assert (big(x) - shipped(x)).abs().max() < 1e-6, sizes
        assert (grow(shipped.__class__(4, 16), in_channels=2)(x) - x[:, :1]).abs().max() == 0  # identity stays
    with pytest.raises(ValueError, match="only adds capacity"):
        grow(shipped, channels=8)

    common = ["--degradation", "codec", "--pairs", str(quantizer_pairs), "--quantizer", "--val-packages", "b",
              "--steps", "4", "--chunk", "2", "--crop", "48", "--batch-size", "4", "--lr", "1e-3", "--seed", "4",
              "--quiet", "--init", str(ROOT / "model" / "tiny" / "learned_filter_codec_v3.onnx")]
    _train(*common, "--channels", "20", "--num-blocks", "5", "--output-c3", str(tmp_path / "wide"))
    wide, ckpt = load_model(tmp_path / "wide" / "last.ckpt")
    assert ckpt["arch"] == {"num_blocks": 5, "channels": 20, "in_channels": 2}
    assert wide.tail.weight[:, 16:].abs().sum() > 0  # the tail reads the new channels after training
    proc = subprocess.run([sys.executable, "-m", "training.train_konvid", *common, "--channels", "8", "--output-c3",
                           str(tmp_path / "narrow")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "grown, never cut" in lines[0], proc.stderr
