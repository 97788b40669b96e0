"""The training pipeline end to end on a tiny corpus, and each step's bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is needed; .ci/setup installs it")

ROOT = Path(__file__).resolve().parents[1]
SKIMAGE = Path(pytest.importorskip("skimage", reason="the dev extra (scikit-image) is not installed")
               .__file__).parent / "data"


def step(module: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", f"training.{module}", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == expect, f"{module} exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    if expect == 2:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{module}: error: "), proc.stderr
    return proc


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    corpus = tmp_path_factory.mktemp("corpus")
    for name in ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        shutil.copy(SKIMAGE / name, corpus / name)
    (corpus / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # skipped, counted
    return corpus


def test_five_steps_end_to_end(tiny_corpus, tmp_path):
    run, models = tmp_path / "run", tmp_path / "model"
    out = step("train_konvid", "--model", "c3", "--images", str(tiny_corpus), "--output-c3", str(run),
               "--epochs-c3", "2", "--crop", "64", "--batch-size", "4", "--crops-per-image", "2",
               "--num-blocks", "2", "--seed", "7", "--quiet")
    assert "skipped 1" not in out.stdout  # quiet
    manifest = json.loads((run / "train_konvid.manifest.json").read_text())
    assert len(manifest["epochs"]) == 2 and manifest["architecture"]["num_blocks"] == 2
    assert manifest["architecture"]["params"] == 160 + 2 * 4640 + 145
    assert len(manifest["data"]["train"]) + len(manifest["data"]["val"]) == 5
    assert [s["reason"] for s in manifest["data"]["skipped"]][0].startswith("UnidentifiedImageError")
    assert all(len(f["sha256"]) == 64 for f in manifest["data"]["train"])
    assert manifest["degradation"] == {"kind": "card", "gaussian_blur_sigma": 1.2, "jpeg_quality": 35,
                                       "library": "Pillow", "flips_rotations": 8, "applied_to": "whole images"}
    assert manifest["determinism"].startswith("deterministic")

    step("export_tiny_models", "--c3-ckpt", str(run / "last.ckpt"), "--output-dir", str(models))
    sidecar = json.loads((models / "learned_filter_v1.json").read_text())
    assert sidecar["opset"] == 17 and sidecar["architecture"]["receptive_radius"] == 6
    assert sidecar["export_check"]["max_abs_err_vs_torch"] <= 1e-5
    assert set(sidecar["run_provenance"]) >= {"checkpoint", "exporter_args", "onnx_output", "sidecar_output",
                                              "registry_target"}
    import onnx
    dims = onnx.load(str(models / "learned_filter_v1.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 1, "H", "W"]

    step("ptq_dynamic", "--model", str(models / "learned_filter_v1.onnx"), "--output",
         str(tmp_path / "dyn.onnx"), "--record", str(models / "learned_filter_v1.json"))
    step("qat_finetune", "--c3-ckpt", str(run / "last.ckpt"), "--images", str(tiny_corpus), "--output",
         str(tmp_path / "qat"), "--steps", "4", "--crop", "64", "--batch-size", "4", "--quiet")
    step("ptq_static", "--model", str(models / "learned_filter_v1.onnx"), "--output",
         str(models / "learned_filter_v1.int8.onnx"), "--images", str(tiny_corpus), "--count", "8", "--crop", "64",
         "--qat-ckpt", str(tmp_path / "qat" / "last.ckpt"), "--register")
    assert json.loads((models / "learned_filter_v1.json").read_text())["int8"]["qat_checkpoint"]["sha256"]
    drop = step("measure_quant_drop", "--fp32", str(models / "learned_filter_v1.onnx"), "--int8",
                str(models / "learned_filter_v1.int8.onnx"), "--images", str(tiny_corpus), "--max-side", "128",
                "--record", str(models / "learned_filter_v1.json"))
    assert json.loads(drop.stdout)["plcc"] > 0.9
    ok = step("validate_model_registry", "--dir", str(models))
    assert "registry OK: 1 model(s)" in ok.stdout
    registry = json.loads((models / "registry.json").read_text())["models"][0]
    assert registry["quant_mode"] == "static-qdq-per-channel" and registry["quant_accuracy_budget_plcc"] == 0.01

    # the exported model runs in the filter, and the registry catches a tampered file
    (models / "learned_filter_v1.onnx").write_bytes((models / "learned_filter_v1.onnx").read_bytes() + b"\0")
    bad = step("validate_model_registry", "--dir", str(models), expect=1)
    assert "sha256 of learned_filter_v1.onnx" in bad.stdout


def test_resume_continues_a_run(tiny_corpus, tmp_path):
    args = ["--images", str(tiny_corpus), "--output-c3", str(tmp_path / "r"), "--crop", "48", "--batch-size", "2",
            "--crops-per-image", "1", "--num-blocks", "1", "--quiet"]
    step("train_konvid", *args, "--epochs-c3", "1")
    step("train_konvid", *args, "--epochs-c3", "2", "--resume")
    manifest = json.loads((tmp_path / "r" / "train_konvid.manifest.json").read_text())
    assert [e["epoch"] for e in manifest["epochs"]] == [1, 2]


def test_bad_input(tiny_corpus, tmp_path):
    step("train_konvid", "--images", str(tmp_path / "missing"), "--output-c3", str(tmp_path / "a"), expect=2)
    (tmp_path / "empty").mkdir()
    step("train_konvid", "--images", str(tmp_path / "empty"), "--output-c3", str(tmp_path / "a"), expect=2)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_text("no")
    err = step("train_konvid", "--images", str(junk), "--output-c3", str(tmp_path / "a"), expect=2)
    assert "none of the 1 corpus files" in err.stderr
    step("train_konvid", "--model", "c2", expect=2)
    assert "C2" in step("train_konvid", "--output-c2", "runs/c2", expect=2).stderr
    # an existing run is not overwritten without --force / --resume
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.ckpt").write_bytes(b"keep me")
    err = step("train_konvid", "--images", str(tiny_corpus), "--output-c3", str(run), expect=2)
    assert "--force" in err.stderr and (run / "last.ckpt").read_bytes() == b"keep me"
    # a checkpoint of another architecture
    other = tmp_path / "other.ckpt"
    torch.save({"model": torch.nn.Linear(3, 3).state_dict(), "arch": {"num_blocks": 4, "channels": 16}}, other)
    err = step("export_tiny_models", "--c3-ckpt", str(other), "--output-dir", str(tmp_path / "m"), expect=2)
    assert "is not a learned_filter checkpoint" in err.stderr
    # an existing export is kept without --force
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "learned_filter_v1.onnx").write_bytes(b"mine")
    step("export_tiny_models", "--c3-ckpt", str(run / "last.ckpt"), "--output-dir", str(tmp_path / "m"), expect=2)
    assert (tmp_path / "m" / "learned_filter_v1.onnx").read_bytes() == b"mine"


def test_fetch_konvid_fails_cleanly_offline(tmp_path):
    # a local closed port: no traffic leaves the machine, the download fails as it would offline
    err = step("fetch_konvid_1k", "--output", str(tmp_path / "kv"), "--base-url", "http://127.0.0.1:9/",
               "--timeout", "5", expect=2)
    assert "cannot download" in err.stderr and "--from-dir" in err.stderr


def test_fetch_konvid_from_dir(tmp_path):
    import zipfile

    local = tmp_path / "local"
    local.mkdir()
    for folder in ("KoNViD_1k_videos", "KoNViD_1k_metadata"):
        name = f"{folder}.zip"
        with zipfile.ZipFile(local / name, "w") as zf:
            zf.writestr(f"{folder}/readme.txt", "x")
    step("fetch_konvid_1k", "--output", str(tmp_path / "kv"), "--from-dir", str(local))
    assert (tmp_path / "kv" / "KoNViD_1k_videos" / "readme.txt").is_file()


def test_validate_shipped_registry():
    proc = step("validate_model_registry")
    assert "registry OK" in proc.stdout


def test_training_is_deterministic(tiny_corpus, tmp_path):
    args = ["--images", str(tiny_corpus), "--crop", "48", "--batch-size", "2", "--crops-per-image", "1",
            "--num-blocks", "1", "--epochs-c3", "1", "--seed", "3", "--quiet"]
    step("train_konvid", *args, "--output-c3", str(tmp_path / "a"))
    step("train_konvid", *args, "--output-c3", str(tmp_path / "b"))
    a = torch.load(tmp_path / "a" / "last.ckpt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def _bad_checkpoints(tmp_path: Path) -> dict[str, Path]:
    """A text file, a bare state_dict, and a checkpoint of the right architecture with wrong shapes."""
    from training.model import LearnedFilter

    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint\n")
    bare = tmp_path / "bare.ckpt"
    torch.save(LearnedFilter(2, 16).state_dict(), bare)
    shapes = tmp_path / "shapes.ckpt"
    torch.save({"model": LearnedFilter(2, 8).state_dict(), "arch": {"num_blocks": 2, "channels": 16}}, shapes)
    return {"text": text, "bare": bare, "shapes": shapes}


def test_every_step_refuses_a_bad_checkpoint_in_one_line(tiny_corpus, tmp_path, filter_onnx):
    bad = _bad_checkpoints(tmp_path)
    for kind, ckpt in bad.items():
        calls = [("export_tiny_models", "--c3-ckpt", str(ckpt), "--output-dir", str(tmp_path / f"m_{kind}")),
                 ("qat_finetune", "--c3-ckpt", str(ckpt), "--images", str(tiny_corpus), "--output",
                  str(tmp_path / f"q_{kind}"), "--steps", "1", "--crop", "48"),
                 ("ptq_static", "--model", str(filter_onnx), "--output", str(tmp_path / f"{kind}.int8.onnx"),
                  "--images", str(tiny_corpus), "--qat-ckpt", str(ckpt))]
        for module, *args in calls:
            err = step(module, *args, expect=2)
            assert "is not a learned_filter checkpoint" in err.stderr, (module, kind, err.stderr)
        run = tmp_path / f"r_{kind}"
        run.mkdir()
        (run / "last.ckpt").write_bytes(ckpt.read_bytes())
        err = step("train_konvid", "--images", str(tiny_corpus), "--output-c3", str(run), "--resume", "--crop", "48",
                   expect=2)
        assert "is not a learned_filter checkpoint" in err.stderr
    assert not list(tmp_path.glob("*.int8.onnx")), "nothing is written for a bad checkpoint"


def test_onnx_steps_refuse_bad_models_and_outputs(tiny_corpus, tmp_path, filter_onnx):
    junk = tmp_path / "junk.onnx"
    junk.write_text("not onnx")
    assert "is not an ONNX model" in step("ptq_dynamic", "--model", str(junk), "--output", str(tmp_path / "o.onnx"),
                                          expect=2).stderr
    assert "is not an ONNX model" in step("ptq_static", "--model", str(junk), "--output", str(tmp_path / "o.onnx"),
                                          "--images", str(tiny_corpus), expect=2).stderr
    assert "is not an ONNX model" in step("measure_quant_drop", "--fp32", str(filter_onnx), "--int8", str(junk),
                                          "--images", str(tiny_corpus), expect=2).stderr
    missing = tmp_path / "no" / "such" / "o.onnx"
    for module in ("ptq_dynamic", "ptq_static"):
        err = step(module, "--model", str(filter_onnx), "--output", str(missing), "--images", str(tiny_corpus),
                   expect=2) if module == "ptq_static" else step(module, "--model", str(filter_onnx), "--output",
                                                                 str(missing), expect=2)
        assert "does not exist" in err.stderr and str(missing.parent) in err.stderr
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert "is a file" in step("fetch_konvid_1k", "--output", str(a_file), expect=2).stderr
    assert "is a file" in step("offline_corpus", "--output", str(a_file), "--no-debian", expect=2).stderr
    err = step("fetch_konvid_1k", "--output", str(tmp_path / "kv"), "--from-dir", str(tmp_path / "nowhere"), expect=2)
    assert "--from-dir" in err.stderr and "does not exist" in err.stderr
    assert "C2" in step("export_tiny_models", "--c3-ckpt", "x.ckpt", "--c2-ckpt", "y.ckpt", expect=2).stderr


@pytest.fixture(scope="module")
def tiny_photo_corpus(tmp_path_factory) -> Path:
    """Four photos in two 'packages' with the corpus.json that training.offline_corpus writes."""
    corpus = tmp_path_factory.mktemp("photos")
    rows = []
    for name, package in (("astronaut.png", "a"), ("coffee.png", "a"), ("chelsea.png", "b"), ("camera.png", "b")):
        shutil.copy(SKIMAGE / name, corpus / name)
        rows.append({"file": name, "package": package})
    (corpus / "corpus.json").write_text(json.dumps({"files": rows}))
    return corpus


def test_codec_pairs_and_codec_training(tiny_photo_corpus, tmp_path):
    """The codec pair step on a tiny clip set, two epochs of codec training, export as the codec model."""
    pairs = tmp_path / "pairs"
    args = ["--photos", str(tiny_photo_corpus), "--no-videos", "--output", str(pairs), "--frames", "4",
            "--clips-per-photo", "1", "--encodes-per-clip", "2", "--keep-frames", "2", "--workers", "2",
            "--codecs", "libx264", "libsvtav1", "--seed", "5", "--quiet"]
    step("codec_pairs", *args)
    manifest = json.loads((pairs / "manifest.json").read_text())
    assert len(manifest["clips"]) == 4 and manifest["samples"] == 4 * 2 * 2
    encodes = [e for c in manifest["clips"] for e in c["encodes"]]
    assert {e["encoder"] for e in encodes} <= {"libx264", "libsvtav1"}
    assert all(24 <= e["crf"] <= 44 for e in encodes if e["encoder"] == "libx264")
    assert all(35 <= e["crf"] <= 60 for e in encodes if e["encoder"] == "libsvtav1")
    assert {c["package"] for c in manifest["clips"]} == {"a", "b"}
    assert "cached" in step("codec_pairs", *args).stdout  # same settings: the cache is reused
    from training.pair_sets import load_pairs

    loaded, _ = load_pairs(pairs)
    assert all(c.shape == d.shape and c.dtype == d.dtype == np.uint8 for c, d in loaded)
    assert any(not np.array_equal(c, d) for c, d in loaded), "the round trips changed the frames"

    run = tmp_path / "run"
    step("train_konvid", "--degradation", "codec", "--pairs", str(pairs), "--val-packages", "b", "--output-c3",
         str(run), "--epochs-c3", "2", "--crop", "64", "--batch-size", "4", "--num-blocks", "2", "--quiet")
    trained = json.loads((run / "train_konvid.manifest.json").read_text())
    assert trained["model_id"] == "learned_filter_codec_v1" and len(trained["epochs"]) >= 1
    assert trained["data"]["val_packages"] == ["b"] and trained["final"]["per_codec"]
    models = tmp_path / "models"
    step("export_tiny_models", "--c3-ckpt", str(run / "last.ckpt"), "--output-dir", str(models))
    assert (models / "learned_filter_codec_v1.onnx").is_file()
    assert json.loads((models / "registry.json").read_text())["models"][0]["id"] == "learned_filter_codec_v1"


def test_codec_pairs_bad_input(tiny_photo_corpus, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "clips"
    empty.mkdir()
    err = step("codec_pairs", "--photos", "none", "--videos", str(empty), "--output", str(tmp_path / "o"), expect=2)
    assert "holds no video clips" in err.stderr
    err = step("codec_pairs", "--photos", str(tiny_photo_corpus), "--crf", "libx264=10:60", "--output",
               str(tmp_path / "o"), expect=2)
    assert "libx264 takes CRF 0..51" in err.stderr
    err = step("codec_pairs", "--photos", str(tiny_photo_corpus), "--codecs", "libfoo", "--output",
               str(tmp_path / "o"), expect=2)
    assert "unknown encoder 'libfoo'" in err.stderr
    # an encoder missing from the FFmpeg build (simulated: PyAV says it does not know it)
    import av

    from training import codec_pairs

    real = av.codec.Codec

    def missing_svt(name, mode="r"):
        if name == "libsvtav1":
            raise av.codec.codec.UnknownCodecError(name)
        return real(name, mode)

    monkeypatch.setattr(av.codec, "Codec", missing_svt)
    assert codec_pairs.main(["--photos", str(tiny_photo_corpus), "--output", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "has no libsvtav1 encoder" in lines[0]


def test_codec_pairs_refuse_missing_and_unreadable_inputs(tiny_photo_corpus, tmp_path):
    """The data step's bad inputs: a missing video folder, a file that is no video, a photo the corpus
    lists but that is gone; one line each, exit 2."""
    out = str(tmp_path / "o")
    err = step("codec_pairs", "--photos", "none", "--videos", str(tmp_path / "nowhere"), "--output", out, expect=2)
    assert "does not exist" in err.stderr and len(err.stderr.strip().splitlines()) == 1
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    err = step("codec_pairs", "--photos", "none", "--videos", str(clips), "--output", out, expect=2)
    assert "broken.mp4 is not a readable video" in err.stderr and len(err.stderr.strip().splitlines()) == 1
    gone = tmp_path / "gone"
    shutil.copytree(tiny_photo_corpus, gone)
    next(p for p in gone.iterdir() if p.suffix != ".json").unlink()
    err = step("codec_pairs", "--photos", str(gone), "--no-videos", "--output", out, expect=2)
    assert "missing" in err.stderr and "offline_corpus" in err.stderr
    err = step("codec_pairs", "--photos", str(gone), "--no-videos", "--ten-bit", "2", "--output", out, expect=2)
    assert "--ten-bit is a fraction" in err.stderr
    err = step("train_konvid", "--no-such-flag", expect=2)
    assert err.stderr.strip() == "train_konvid: error: unrecognized arguments: --no-such-flag"


def test_realistic_codec_pairs_a_few_training_steps_and_a_gate(tiny_photo_corpus, tmp_path):
    """codec_v2's data step (noise, grain, dark, 10-bit, identity pairs), a few steps of harm-weighted
    training warm-started from the shipped codec model's ONNX, and a gate fitted on the result."""
    pairs = tmp_path / "pairs"
    step("codec_pairs", "--photos", str(tiny_photo_corpus), "--no-videos", "--output", str(pairs), "--frames", "4",
         "--clips-per-photo", "3", "--encodes-per-clip", "2", "--keep-frames", "2", "--workers", "2",
         "--codecs", "libx264", "libx265", "--crf", "libx264=12:51", "--noise", "1", "--dark", "0.5",
         "--ten-bit", "0.5", "--identity", "0.3", "--seed", "3", "--quiet")
    manifest = json.loads((pairs / "manifest.json").read_text())
    looks = [c["look"] for c in manifest["clips"]]
    assert all(lk["noise"] in ("sensor", "grain") for lk in looks)
    assert {c["bits"] for c in manifest["clips"]} == {8, 10}
    assert any(e["encoder"] == "identity" for c in manifest["clips"] for e in c["encodes"])
    from training.pair_sets import load_pairs

    every, labels = load_pairs(pairs, identity=True)
    assert len(every) == manifest["samples"] == len(labels)
    for (clean, degraded), label in zip(every, labels):
        assert clean.dtype == (np.uint16 if label["bits"] == 10 else np.uint8)
        assert (label["encoder"] == "identity") <= np.array_equal(clean, degraded)
    assert max(int(c.max()) for (c, _), lb in zip(every, labels) if lb["bits"] == 10) > 255
    lossy, _ = load_pairs(pairs)
    assert len(lossy) < len(every)

    run = tmp_path / "run"
    step("train_konvid", "--degradation", "codec", "--pairs", str(pairs), "--val-packages", "b", "--output-c3",
         str(run), "--steps", "4", "--chunk", "2", "--crop", "32", "--batch-size", "4", "--loss", "l1-harm",
         "--init", str(ROOT / "model/tiny/learned_filter_codec_v1.onnx"), "--model-id", "learned_filter_codec_v2",
         "--quiet")
    trained = json.loads((run / "train_konvid.manifest.json").read_text())
    assert trained["model_id"] == "learned_filter_codec_v2" and trained["schedule"]["loss"] == "l1-harm"
    final = trained["final"]
    assert set(final["per_bit_depth"]) <= {"8-bit", "10-bit"} and "worst_clip" in final and final["per_codec"]
    identity_in_a = sum(lb["encoder"] == "identity" and lb["package"] == "a" for lb in labels)
    assert trained["data"]["train_identity_pairs"] == identity_in_a  # kept for training, not dropped
    assert trained["init"]["checkpoint"].endswith(".onnx")
    gate = tmp_path / "gate.json"
    step("fit_gate", "--model", str(run / "last.ckpt"), "--pairs", str(pairs), "--val-packages", "b", "--frames", "10",
         "--output", str(gate))
    record = json.loads(gate.read_text())
    assert 0 < record["gate"]["threshold"] < 1 and record["held_out"]["all"]["frames"] > 0


def test_codec_breakdown_pairs_each_figure_with_its_own_frame(tmp_path):
    """A lossless round trip is dropped from the pairs; every later per-codec figure must still describe
    its own frame (the labels travel with the pairs). On main the labels shifted by one."""
    import torch

    from training.evaluation import codec_breakdown
    from training.pair_sets import load_pairs

    rng = np.random.default_rng(0)
    clean = rng.integers(0, 255, (3, 40, 40), dtype=np.uint8)
    noisy = np.clip(clean.astype(int) + rng.integers(-9, 10, clean.shape), 0, 255).astype(np.uint8)
    degraded = np.stack([clean[0], noisy[1], noisy[2]])  # the x264 frame 0 is lossless: dropped
    np.savez(tmp_path / "clip-00000.npz", clean=clean, degraded=degraded)
    manifest = {"key": "k", "clips": [{
        "clip": 0, "package": "p", "source": "s", "file": "clip-00000.npz", "bits": 8,
        "encodes": [{"encoder": "libx264", "crf": 20}, {"encoder": "libx265", "crf": 40}],
        "samples": [{"encode": 0, "frame": 0, "clean": 0}, {"encode": 1, "frame": 1, "clean": 1},
                    {"encode": 1, "frame": 2, "clean": 2}]}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    pairs, labels = load_pairs(tmp_path)
    assert [lb["encoder"] for lb in labels] == ["libx265", "libx265"]
    out = codec_breakdown(torch.nn.Identity(), pairs, labels, torch.device("cpu"))
    assert out["per_codec"] == {"libx265 crf 40-49": {"frames": 2, "psnr_gain_db": 0.0}}


def test_offline_corpus_names_every_photo_apart():
    """Wallpapers shipped at many sizes are named by the wallpaper, not by the size (no overwrites)."""
    from training.offline_corpus import photo_stem

    assert photo_stem("usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg") == "BytheWater"
    assert photo_stem("usr/share/wallpapers/Path/contents/images/2560x1600.jpg") == "Path"
    assert photo_stem("usr/share/backgrounds/mate/nature/Aqua.jpg") == "Aqua"
