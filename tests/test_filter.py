"""vmaf_pre: equality with vs-mlrt's ort.Model, formats, props, tiling, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import vapoursynth as vs

from vsfilter import vmaf_pre

from conftest import noise_clip, one_line_error, planes
from onnx_builder import build_filter_onnx


def _to_float(core, clip):
    peak = (1 << clip.format.bits_per_sample) - 1
    return core.std.Expr(clip, f"x {peak} /", format=vs.GRAYS)


@pytest.mark.parametrize("fmt,size", [(vs.GRAY8, (160, 96)), (vs.YUV420P10, (128, 72)), (vs.YUV444P16, (67, 45))])
def test_matches_vsmlrt_ort_model(core, filter_onnx, fmt, size):
    clip = noise_clip(core, fmt, *size)
    ours = vmaf_pre(clip, model=str(filter_onnx), device="cpu")
    luma = clip.std.ShufflePlanes(0, vs.GRAY)
    peer = core.ort.Model(_to_float(core, luma), network_path=str(filter_onnx), builtin=False) \
        if "builtin" in str(core.ort.Model) else core.ort.Model(_to_float(core, luma), network_path=str(filter_onnx))
    peak = (1 << clip.format.bits_per_sample) - 1
    for n in range(clip.num_frames):
        a, p, src = ours.get_frame(n), peer.get_frame(n), clip.get_frame(n)
        expected = np.clip(np.rint(np.asarray(p[0]) * peak), 0, peak)
        diff = np.abs(np.asarray(a[0]).astype(np.int64) - expected)
        assert diff.max() <= 1, f"frame {n}: max diff {diff.max()} code values"
        assert (diff > 0).mean() < 0.001
        assert not np.array_equal(np.asarray(a[0]), np.asarray(src[0])), "the filter changed nothing"
        for q in range(1, clip.format.num_planes):
            assert np.array_equal(np.asarray(a[q]), np.asarray(src[q])), "chroma must be bit-identical"


def test_float_input_matches_peer(core, filter_onnx):
    clip = noise_clip(core, vs.GRAYS, 96, 64)
    ours = vmaf_pre(clip, model=str(filter_onnx), device="cpu")
    peer = core.ort.Model(clip, network_path=str(filter_onnx))
    np.testing.assert_allclose(np.asarray(ours.get_frame(1)[0]), np.asarray(peer.get_frame(1)[0]), atol=1e-5)
    half = vmaf_pre(noise_clip(core, vs.GRAYH, 96, 64), model=str(filter_onnx), device="cpu")
    assert half.format.id == vs.GRAYH
    assert np.asarray(half.get_frame(0)[0]).dtype == np.float16


def test_output_keeps_format_length_fps_and_props(core, filter_onnx):
    clip = noise_clip(core, vs.YUV420P8, 64, 48, length=5).std.AssumeFPS(fpsnum=30000, fpsden=1001)
    out = vmaf_pre(clip, model=str(filter_onnx), device="cpu")
    assert (out.format.id, out.width, out.height, out.num_frames, out.fps) == \
        (clip.format.id, clip.width, clip.height, clip.num_frames, clip.fps)
    frame = out.get_frame(3)
    assert frame.props["TestProp"] == 21
    assert frame.props["VmafPreModel"] == "random_filter"
    assert len(frame.props["VmafPreSha256"]) == 64
    assert frame.props["VmafPreBackend"] == "ort-cpu"
    assert frame.props["VmafPrePrecision"] == "fp32"


def test_chroma_true_filters_every_plane(core, filter_onnx):
    clip = noise_clip(core, vs.YUV420P8, 64, 48)
    out = vmaf_pre(clip, model=str(filter_onnx), device="cpu", chroma=True)
    src, res = planes(clip.get_frame(0)), planes(out.get_frame(0))
    assert all(not np.array_equal(a, b) for a, b in zip(src, res))


@pytest.mark.parametrize("fmt,size,tile,overlap", [
    (vs.GRAY8, (200, 120), 64, None),
    (vs.GRAY16, (201, 117), [48, 40], None),
    (vs.YUV444P10, (131, 77), 40, 10),
    (vs.YUV420P8, (130, 78), 40, None),
    (vs.GRAY8, (30, 20), 64, None),     # frame smaller than a tile
    (vs.GRAY8, (1, 50), 24, None),      # 1 pixel wide
    (vs.GRAYS, (90, 70), 32, None),
])
def test_tiled_equals_untiled_bit_exact(core, filter_onnx, fmt, size, tile, overlap):
    clip = noise_clip(core, fmt, *size, length=2)
    whole = vmaf_pre(clip, model=str(filter_onnx), device="cpu", chroma=True)
    tiled = vmaf_pre(clip, model=str(filter_onnx), device="cpu", chroma=True, tilesize=tile, overlap=overlap,
                     tile_batch=3)
    for n in range(2):
        for a, b in zip(planes(whole.get_frame(n)), planes(tiled.get_frame(n))):
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, atol=1e-6)  # float output: exact to the last ulps
            else:
                assert np.array_equal(a, b)


def test_tiles_with_too_little_overlap_differ(core, filter_onnx):
    clip = noise_clip(core, vs.GRAY16, 160, 96, length=1)
    whole = np.asarray(vmaf_pre(clip, model=str(filter_onnx), device="cpu").get_frame(0)[0])
    tiled = np.asarray(vmaf_pre(clip, model=str(filter_onnx), device="cpu", tilesize=48, overlap=2).get_frame(0)[0])
    assert not np.array_equal(whole, tiled), "overlap below the receptive radius should show seams"


def test_reference_io_names_work(core, tmp_path):
    ref = build_filter_onnx(tmp_path / "ref.onnx", num_blocks=3, input_name="degraded", output_name="filtered")
    out = vmaf_pre(noise_clip(core, vs.GRAY8, 40, 30), model=str(ref), device="cpu")
    assert out.get_frame(0).props["VmafPreModel"] == "ref"


def test_parallel_frames_equal_serial(core, filter_onnx):
    clip = noise_clip(core, vs.GRAY8, 96, 64, length=12)
    out = vmaf_pre(clip, model=str(filter_onnx), device="cpu", num_streams=2, threads=1)
    parallel = [np.array(f[0]) for f in out.frames(prefetch=6)]
    serial = [np.array(out.get_frame(n)[0]) for n in reversed(range(12))][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(parallel, serial))


# ----------------------------------------------------------------------------------- bad input


def _error(fn) -> str:
    return one_line_error(fn, "vmaf_pre: ")


def test_bad_clip_inputs(core, filter_onnx):
    m = str(filter_onnx)
    assert "VideoNode" in _error(lambda: vmaf_pre("clip.mkv", model=m))
    rgb = core.std.BlankClip(format=vs.RGB24, width=32, height=32)
    assert "convert to YUV or GRAY" in _error(lambda: vmaf_pre(rgb, model=m))
    a = core.std.BlankClip(format=vs.GRAY8, width=32, height=32, length=2)
    b = core.std.BlankClip(format=vs.YUV420P8, width=32, height=32, length=2)
    c = core.std.BlankClip(format=vs.GRAY8, width=48, height=32, length=2)
    assert "variable format" in _error(lambda: vmaf_pre(core.std.Splice([a, b], mismatch=True), model=m))
    assert "variable size" in _error(lambda: vmaf_pre(core.std.Splice([a, c], mismatch=True), model=m))


def test_bad_model_inputs(core, tmp_path, monkeypatch):
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    msg = _error(lambda: vmaf_pre(clip, model="no_such_model"))
    assert "unknown model id 'no_such_model'" in msg and "learned_filter_v1" in msg
    assert "does not exist" in _error(lambda: vmaf_pre(clip, model=str(tmp_path / "missing.onnx")))
    rgb_model = build_filter_onnx(tmp_path / "wide.onnx")
    import onnx
    proto = onnx.load(str(rgb_model))
    proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3
    onnx.save(proto, str(tmp_path / "three.onnx"))
    assert "[N,1,H,W]" in _error(lambda: vmaf_pre(clip, model=str(tmp_path / "three.onnx")))
    (tmp_path / "junk.onnx").write_text("not a model")
    assert "not a readable ONNX model" in _error(lambda: vmaf_pre(clip, model=str(tmp_path / "junk.onnx")))


def test_registry_sha_mismatch(core, tmp_path, monkeypatch, filter_onnx):
    shutil.copy(filter_onnx, tmp_path / "tampered.onnx")
    (tmp_path / "registry.json").write_text(json.dumps({"schema_version": 1, "models": [
        {"id": "tampered", "onnx": "tampered.onnx", "sha256": "0" * 64}]}))
    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(tmp_path))
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    assert "sha256" in _error(lambda: vmaf_pre(clip, model="tampered"))


def _gated_registry(tmp_path, filter_onnx, bias: float, features: np.ndarray) -> None:
    """A registry of one gated model: the random filter, with a gate that is always on or always off."""
    from vsfilter.gate import FEATURES, Gate
    from vsfilter.models import sha256_file

    shutil.copy(filter_onnx, tmp_path / "gated.onnx")
    gate = Gate(tuple(0.0 for _ in FEATURES), tuple(features.tolist()), tuple(1.0 for _ in FEATURES), bias)
    (tmp_path / "registry.json").write_text(json.dumps({"schema_version": 1, "models": [
        {"id": "gated", "onnx": "gated.onnx", "sha256": sha256_file(tmp_path / "gated.onnx"),
         "gate": gate.to_record()}]}))


def test_a_gated_model_runs_only_on_the_frames_its_gate_selects(core, tmp_path, monkeypatch, filter_onnx):
    from vsfilter.gate import FEATURES, frame_features
    from vsfilter.models import resolve_model

    clip = noise_clip(core, vs.YUV420P10, 64, 48, length=4)
    plain = vmaf_pre(clip, model=str(filter_onnx), device="cpu")
    features = frame_features(np.asarray(clip.get_frame(0)[0]), 1023)
    assert features.shape == (len(FEATURES),) and np.isfinite(features).all()
    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(tmp_path))
    for bias, runs in ((8.0, True), (-8.0, False)):
        _gated_registry(tmp_path, filter_onnx, bias, features)
        gated = vmaf_pre(clip, model="gated", device="cpu")
        for n in range(4):
            frame = gated.get_frame(n)
            expected = plain.get_frame(n) if runs else clip.get_frame(n)
            assert np.array_equal(np.asarray(frame[0]), np.asarray(expected[0])), (bias, n)
            assert frame.props["VmafPreApplied"] == int(runs) and 0 <= frame.props["VmafPreGate"] <= 1
        spec = resolve_model("gated")
        assert spec.identity != spec.sha256 and frame.props["VmafPreSha256"] == spec.identity
    _gated_registry(tmp_path, filter_onnx, 8.0, features[:-1])
    assert "gate has the wrong size" in _error(lambda: vmaf_pre(clip, model="gated", device="cpu"))


def test_bad_options(core, filter_onnx):
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    m = str(filter_onnx)
    assert "threads must be >= 0" in _error(lambda: vmaf_pre(clip, model=m, threads=-1))
    assert "larger than 2*overlap" in _error(lambda: vmaf_pre(clip, model=m, tilesize=16, overlap=8))
    assert "precision" in _error(lambda: vmaf_pre(clip, model=m, precision="fp8"))
    assert "device=" in _error(lambda: vmaf_pre(clip, model=m, device="tpu"))
    assert "int8" in _error(lambda: vmaf_pre(clip, model=m, device="cpu", precision="int8"))


def test_cuda_without_cuda_is_a_clear_error(core, filter_onnx):
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the error path cannot be reached")
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    assert "onnxruntime-gpu" in _error(lambda: vmaf_pre(clip, model=str(filter_onnx), device="cuda"))


# ----------------------------------------------------------------------------------- pure parts


def test_plan_axis_covers_every_pixel_once():
    from vsfilter.tiling import Span, plan_axis

    assert plan_axis(50, 64, 10) == [Span(0, 50, 0, 50)]  # one tile when the axis is shorter
    for length, tile, overlap in ((200, 64, 10), (201, 48, 10), (1000, 1024, 10), (130, 40, 5)):
        spans = plan_axis(length, tile, overlap)
        assert spans[0].own0 == 0 and spans[-1].own1 == length and spans[-1].start + spans[-1].size == length
        for a, b in zip(spans, spans[1:]):
            assert a.own1 == b.own0  # owned ranges tile the axis with no gap and no overlap
        for s in spans:  # every owned pixel has `overlap` context inside its tile, except at the frame edges
            assert s.own0 - s.start >= (overlap if s.own0 > 0 else 0)
            assert s.start + s.size - s.own1 >= (overlap if s.own1 < length else 0)


def test_even_tile_splits_an_axis_into_the_fewest_equal_tiles():
    from vsfilter.tiling import even_tile, plan_axis

    assert even_tile(400, 512, 10) == 400  # one tile: the whole axis
    for length, max_tile, overlap in ((7680, 512, 10), (4320, 512, 10), (2000, 512, 10), (1100, 512, 10),
                                      (513, 512, 10), (1000, 64, 5)):
        tile = even_tile(length, max_tile, overlap)
        spans = plan_axis(length, tile, overlap)
        fewest = len(plan_axis(length, max_tile, overlap))
        assert tile <= max_tile and len(spans) == fewest
        # no smaller tile covers the axis with that many tiles: tile - 1 needs one more
        assert len(plan_axis(length, tile - 1, overlap)) > fewest
    assert even_tile(7680, 512, 10) == 499 and even_tile(4320, 512, 10) == 498


def test_receptive_radius_is_the_longest_windowed_path(tmp_path):
    import onnx

    from vsfilter.models import receptive_radius

    for blocks, radius in ((4, 10), (3, 8), (1, 4)):
        graph = onnx.load(str(build_filter_onnx(tmp_path / f"b{blocks}.onnx", num_blocks=blocks))).graph
        assert receptive_radius(graph) == (radius, None)
    graph = onnx.load(str(build_filter_onnx(tmp_path / "d.onnx", num_blocks=1))).graph
    for node in graph.node:
        if node.op_type == "Conv" and node.name == "" and node.output[0] == "head":
            node.attribute.append(onnx.helper.make_attribute("dilations", [2, 2]))
    assert receptive_radius(graph)[0] == 5  # the dilated head conv reaches 2 pixels
    graph.node.append(onnx.helper.make_node("Resize", ["output"], ["resized"]))
    assert receptive_radius(graph)[1] == "Resize"
