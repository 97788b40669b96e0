"""Camera footage as training data: the footage corpus (training.footage_corpus), codec pairs made from it,
held-out test clips refused, and several pair sets pooled with weights (train_konvid --pairs A B)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_training import step


def _moving_noise(frames: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, (height, width + frames * 3)).astype(np.uint8)
    return [np.ascontiguousarray(base[:, 3 * n: 3 * n + width]) for n in range(frames)]


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """A footage corpus of one clip (16 frames, 288x320 source, 2x) from a fake unpacked package."""
    from training.corpus import LISTING
    from training.footage_corpus import Footage, add_clip, write_lossless

    root = tmp_path_factory.mktemp("package")
    source = root / "usr/share/demo/walk.mkv"
    source.parent.mkdir(parents=True)
    write_lossless(source, _moving_noise(16, 288, 320), 25)
    doc = root / "usr/share/doc/demo-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                                   "Files: *\nCopyright: someone\nLicense: GPL-2+\n\n"
                                   "Files: usr/share/demo/*.mkv\nCopyright: someone\nLicense: CC0-1.0\n")
    out = tmp_path_factory.mktemp("footage")
    row = add_clip(out, root, Footage("demo-data", "usr/share/demo/walk.mkv", 2, "a test walk"), "1.0-1")
    (out / LISTING).write_text(json.dumps({"files": [row]}))
    return out


def test_footage_corpus_downscales_writes_losslessly_and_records_the_licence(footage, tmp_path):
    from training.clips import decoded_lumas

    row = json.loads((footage / "corpus.json").read_text())["files"][0]
    assert row["license"] == "CC0-1.0" and row["package"] == "debian:demo-data" and row["version"] == "1.0-1"
    assert row["factor"] == 2 and row["size"] == [160, 144] and row["frames"] == 16 and row["codec"] == "ffv1"
    written = list(decoded_lumas(footage / row["file"], 0, 100))
    source = _moving_noise(16, 288, 320)
    expected = [np.rint(s.astype(np.float32).reshape(144, 2, 160, 2).mean(axis=(1, 3))).astype(np.uint8)
                for s in source]
    assert len(written) == 16 and all(np.array_equal(w, e) for w, e in zip(written, expected))
    from training.cli import sha256_file
    from training.footage_corpus import write_lossless

    again = tmp_path / "again.mkv"
    write_lossless(again, written, 25)
    assert sha256_file(again) == row["sha256"], "the same frames must give the same bytes"


def test_footage_corpus_refuses_what_it_cannot_use(tmp_path):
    from training.cli import UsageError
    from training.footage_corpus import Footage, add_clip, write_lossless

    root = tmp_path / "pkg"
    (root / "v").mkdir(parents=True)
    write_lossless(root / "v/small.mkv", _moving_noise(4, 240, 256), 25)
    with pytest.raises(UsageError, match="needs >= 2 frames of >= 128x128"):
        add_clip(tmp_path, root, Footage("p", "v/small.mkv", 4, "too small at 1/4"), "1")
    with pytest.raises(UsageError, match="has no v/gone.mkv; its layout changed"):
        add_clip(tmp_path, root, Footage("p", "v/gone.mkv", 2, "missing"), "1")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    err = step("footage_corpus", "--output", str(tmp_path / "full"), expect=2)
    assert "exists and is not empty; pass --force" in err.stderr


def test_codec_pairs_from_footage_and_held_out_clips_refused(footage, tmp_path):
    """Footage segments are the corpus's frames as written (no second downscale), one package per source;
    a folder holding one of the judging clips is refused before any encode."""
    from training.clips import decoded_lumas

    pairs = tmp_path / "pairs"
    step("codec_pairs", "--photos", "none", "--videos", str(footage), "--output", str(pairs), "--frames", "8",
         "--encodes-per-clip", "1", "--keep-frames", "2", "--codecs", "libx264", "--crf", "libx264=40:40",
         "--seed", "1", "--workers", "1", "--quiet")
    manifest = json.loads((pairs / "manifest.json").read_text())
    assert [(c["kind"], c["package"], c["start"]) for c in manifest["clips"]] == [
        ("footage", "debian:demo-data", 0), ("footage", "debian:demo-data", 8)]
    frames = list(decoded_lumas(footage / "demo-data__walk.mkv", 0, 16))
    for clip in manifest["clips"]:
        with np.load(pairs / clip["file"]) as data:
            kept = sorted({row["frame"] for row in clip["samples"]})
            assert all(np.array_equal(data["clean"][i], frames[clip["start"] + f]) for i, f in enumerate(kept))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(footage / "demo-data__walk.mkv", mixed / "walk.mkv")
    shutil.copy(footage / "demo-data__walk.mkv", mixed / "vtest.avi")
    err = step("codec_pairs", "--photos", "none", "--videos", str(mixed), "--output", str(tmp_path / "o"), expect=2)
    assert "held-out test clips (vtest.avi)" in err.stderr
    assert not (tmp_path / "o").exists()


def test_pair_sets_pooled_with_weights(footage, quantizer_pairs, tmp_path):
    """train_konvid pools several pair sets and draws each set's crops in proportion to its weight; a
    weight list that does not match the sets is one line, exit 2."""
    pairs = tmp_path / "pairs"
    step("codec_pairs", "--photos", "none", "--videos", str(footage), "--output", str(pairs), "--frames", "8",
         "--encodes-per-clip", "2", "--keep-frames", "2", "--codecs", "libx264", "--seed", "1", "--workers", "1",
         "--quiet")
    common = ["--degradation", "codec", "--quantizer", "--pairs", str(quantizer_pairs), str(pairs), "--val-packages",
              "b", "--steps", "2", "--crop", "64", "--batch-size", "4", "--num-blocks", "1", "--quiet"]
    err = step("train_konvid", *common, "--pair-weights", "1", "--output-c3", str(tmp_path / "bad"), expect=2)
    assert "--pair-weights needs one weight > 0 per --pairs set (2)" in err.stderr
    step("train_konvid", *common, "--pair-weights", "1", "3", "--output-c3", str(tmp_path / "run"))
    data = json.loads((tmp_path / "run" / "train_konvid.manifest.json").read_text())["data"]
    assert data["pairs"] == [str(quantizer_pairs), str(pairs)] and data["pair_weights"] == [1.0, 3.0]
    assert "debian:demo-data" not in data["val_sources"] and any("walk" in s for s in data["train_sources"])

    import torch

    from training.pairs import PairBank

    flat = [(np.full((64, 64), v, np.uint8), np.full((64, 64), v, np.uint8)) for v in (10, 200)]
    generator = torch.Generator().manual_seed(0)
    _, even = PairBank(flat, "cpu", 64).sample(4000, generator)
    _, leaning = PairBank(flat, "cpu", 64, weights=[1.0, 9.0]).sample(4000, generator)
    share = lambda y: float((y[:, 0, 0, 0] > 0.5).float().mean())  # noqa: E731
    assert abs(share(even) - 0.5) < 0.04 and abs(share(leaning) - 0.9) < 0.03
