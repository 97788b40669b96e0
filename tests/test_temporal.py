"""Temporal models: a network fed the previous and next frame (``INPUT_LAYOUTS[6]``) through vmaf_pre,
pair sets that keep each frame's neighbours, their crops, and a temporal run warm-started from a
two-input network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vsfilter
from vsfilter.models import INPUT_LAYOUTS

from media import encode_clip

torch = pytest.importorskip("torch", reason="the train extra (torch) is needed; .ci/setup installs it")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def h264(tmp_path_factory) -> Path:
    return encode_clip(tmp_path_factory.mktemp("temporal") / "x264.mp4", "libx264", frames=6, width=160, height=96,
                       options={"crf": "36"})


@pytest.fixture(scope="module")
def temporal_onnx(tmp_path_factory) -> Path:
    """codec_v2's network grown to six planes, with weights on every plane that matter."""
    from training.checkpoint import load_onnx_weights
    from training.model import grow
    from training.onnx_export import check_against_torch, export_onnx

    plain, _ = load_onnx_weights(ROOT / "model" / "tiny" / "learned_filter_codec_v2.onnx")
    model = grow(plain, in_channels=6)
    with torch.no_grad():
        for c in range(1, 6):
            model.head[0].weight[:, c] = torch.linspace(-0.3, 0.3, 9).reshape(3, 3) * (1 + c % 2)
    path = tmp_path_factory.mktemp("temporal_model") / "temporal.onnx"
    export_onnx(model.eval(), path)
    check_against_torch(model, path)
    return path


def _expected(session, clip: vs.VideoNode, n: int) -> np.ndarray:
    """The ONNX model run directly on frame ``n`` with its neighbours' planes (the ends repeated)."""
    from vsfilter.quantizer import frame_plane

    planes = []
    for m in (n, max(n - 1, 0), min(n + 1, clip.num_frames - 1)):
        frame = clip.get_frame(m)
        told = frame_plane(frame.props, clip.width, clip.height, 8)
        planes += [np.asarray(frame[0]).astype(np.float32) / 255, told.plane]
    out = session.run(None, {"input": np.stack(planes)[None]})[0][0, 0]
    return np.clip(np.rint(out * 255), 0, 255)


def test_a_temporal_model_reads_the_neighbours_and_tiles_exactly(h264, temporal_onnx):
    import onnxruntime as ort

    clip = vsfilter.source(h264)
    spec = vsfilter.resolve_model(str(temporal_onnx))
    assert spec.planes == 6 and spec.temporal
    out = vsfilter.vmaf_pre(clip, model=str(temporal_onnx), device="cpu")
    session = ort.InferenceSession(str(temporal_onnx), providers=["CPUExecutionProvider"])
    for n in (0, 3, 5):  # both ends and the middle
        got = np.asarray(out.get_frame(n)[0]).astype(int)
        assert np.abs(got - _expected(session, clip, n).astype(int)).max() <= 1
        assert out.get_frame(n).props["VmafPreQPSource"] == "bitstream"
    tiled = vsfilter.vmaf_pre(clip, model=str(temporal_onnx), device="cpu", tilesize=64)
    for n in (0, 4):
        assert np.array_equal(np.asarray(tiled.get_frame(n)[0]), np.asarray(out.get_frame(n)[0]))
    # the neighbours matter: the same frame between other neighbours gives another output
    reordered = vsfilter.vmaf_pre(clip[3] + clip[1] + clip[2], model=str(temporal_onnx), device="cpu")
    assert not np.array_equal(np.asarray(reordered.get_frame(1)[0]), np.asarray(out.get_frame(1)[0]))
    one = vsfilter.vmaf_pre(clip[2], model=str(temporal_onnx), device="cpu")  # a one-frame clip is its own neighbour
    assert np.abs(np.asarray(one.get_frame(0)[0]).astype(int)
                  - _expected(session, clip[2], 0).astype(int)).max() <= 1


def test_pair_sets_keep_the_neighbours_and_crops_draw_them(tmp_path):
    """``codec_pairs --neighbours`` gives the same pairs plus each frame's neighbours; the crops follow the
    model's channel order, with the still and cut shares drawn."""
    from PIL import Image

    from training.pair_sets import load_pairs
    from training.pairs import PairBank, model_input

    photos = tmp_path / "photos"
    photos.mkdir()
    skimage = Path(pytest.importorskip("skimage").__file__).parent / "data"
    Image.open(skimage / "astronaut.png").convert("L").save(photos / "0.png")
    (photos / "corpus.json").write_text(json.dumps({"files": [{"file": "0.png", "package": "a"}]}))
    sets = {}
    for name, extra in (("plain", []), ("temporal", ["--neighbours"])):
        subprocess.run([sys.executable, "-m", "training.codec_pairs", "--photos", str(photos), "--no-videos",
                        "--output", str(tmp_path / name), "--frames", "4", "--clips-per-photo", "1",
                        "--encodes-per-clip", "1", "--keep-frames", "3", "--codecs", "libx264", "--seed", "3",
                        "--quiet", *extra], check=True, cwd=ROOT, timeout=300)
        sets[name] = tmp_path / name
    plain, labels = load_pairs(sets["plain"], quantizer=True)
    temporal, _ = load_pairs(sets["temporal"], neighbours=True)
    manifest = json.loads((sets["temporal"] / "manifest.json").read_text())
    frames = [row["frame"] for row in manifest["clips"][0]["samples"]]
    assert len(temporal) == len(plain) == 3 and len(temporal[0]) == 1 + len(INPUT_LAYOUTS[6])
    for f, three, seven in zip(frames, plain, temporal, strict=True):
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(three, seven[:3], strict=True))
        # the first frame is its own previous neighbour, the last its own next
        assert np.array_equal(seven[3], seven[1]) == (f == 0) and np.array_equal(seven[5], seven[1]) == (f == 3)
    with pytest.raises(Exception, match="--neighbours"):
        load_pairs(sets["plain"], neighbours=True)
    assert model_input(temporal[0]).shape == (1, 6, *temporal[0][0].shape)

    bank = PairBank(temporal, torch.device("cpu"), 64, still_share=1.0)
    x, _ = bank.sample(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 6, 64, 64) and torch.equal(x[:, 2:4], x[:, :2]) and torch.equal(x[:, 4:6], x[:, :2])
    bank = PairBank(temporal, torch.device("cpu"), 64, cut_share=1.0)
    x, _ = bank.sample(4, torch.Generator().manual_seed(0))
    own = PairBank(temporal, torch.device("cpu"), 64).sample(4, torch.Generator().manual_seed(0))[0]
    assert torch.equal(x[:, :2], own[:, :2]) and torch.equal(x[:, 2:], torch.roll(own[:, 2:], 1, 0))


def test_a_temporal_run_starts_from_the_two_input_network(tmp_path, quantizer_pairs):
    """``grow`` to six planes computes what the two-input network computes, whatever the neighbours
    (step 0 = the init); ``train_konvid --neighbours`` trains the new planes from there and evaluates on
    the neighbours; a pair set without them, or no --quantizer, is one line, exit 2, before any work."""
    from training.checkpoint import load_model, load_onnx_weights
    from training.model import grow

    shipped, _ = load_onnx_weights(ROOT / "model" / "tiny" / "learned_filter_codec_v3.onnx")
    torch.manual_seed(0)
    x = torch.rand(2, 6, 40, 48)
    with torch.inference_mode():
        assert (grow(shipped, in_channels=6)(x) - shipped(x[:, :2])).abs().max() < 1e-6

    temporal = tmp_path / "pairs"
    subprocess.run([sys.executable, "-m", "training.codec_pairs", "--photos", str(quantizer_pairs.parent / "photos"),
                    "--no-videos", "--output", str(temporal), "--frames", "4", "--clips-per-photo", "1",
                    "--encodes-per-clip", "1", "--keep-frames", "2", "--codecs", "libx264", "--seed", "2", "--quiet",
                    "--neighbours"], check=True, cwd=ROOT, timeout=300)
    common = ["--degradation", "codec", "--val-packages", "b", "--steps", "4", "--chunk", "2", "--crop", "48",
              "--batch-size", "4", "--lr", "1e-3", "--seed", "4", "--quiet", "--neighbours", "--init",
              str(ROOT / "model" / "tiny" / "learned_filter_codec_v3.onnx")]

    def train(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "training.train_konvid", *common, *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=300)

    run = train("--quantizer", "--pairs", str(temporal), "--output-c3", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr[-2000:]
    model, ckpt = load_model(tmp_path / "run" / "last.ckpt")
    assert ckpt["arch"]["in_channels"] == 6 and float(model.head[0].weight.detach()[:, 2:].abs().sum()) > 0
    manifest = json.loads((tmp_path / "run" / "train_konvid.manifest.json").read_text())
    assert "per_codec" in manifest["final"] and "blind" in manifest["final"]
    for args, why in ((["--quantizer", "--pairs", str(quantizer_pairs)], "no neighbouring frames"),
                      (["--pairs", str(temporal)], "needs --quantizer")):
        proc = train(*args, "--output-c3", str(tmp_path / "bad"))
        assert proc.returncode == 2 and why in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "bad").exists()
