"""vsfilter.batch on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsfilter.compare import compare

from media import encode_clip

distributed = pytest.importorskip("distributed", reason="dask[distributed] is a runtime dependency (.ci/setup)")

DASK = str(Path(sys.executable).with_name("dask"))


def _batch(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsfilter.batch", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def titles(tmp_path_factory):
    root = tmp_path_factory.mktemp("titles")
    ref = encode_clip(root / "ref.mkv", "ffv1", frames=240, width=128, height=96)
    pairs = {
        "x264": encode_clip(root / "x264.mp4", "libx264", frames=240, width=128, height=96, options={"crf": "38"}),
        "x265": encode_clip(root / "x265.mkv", "libx265", frames=240, width=128, height=96,
                            options={"crf": "36", "x265-params": "log-level=error"}),
        "short": encode_clip(root / "short.mp4", "libx264", frames=12, width=128, height=96, options={"crf": "30"}),
    }
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    manifest = root / "pairs.csv"
    manifest.write_text("id,reference,distorted\n" + "".join(f"{k},ref.mkv,{v.name}\n" for k, v in pairs.items())
                        + "broken,ref.mkv,corrupt.mp4\n")
    return root, manifest, ref, pairs


@pytest.fixture()
def cluster(tmp_path):
    """A scheduler and two single-threaded workers, started and stopped by the test."""
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    deadline = time.monotonic() + 60
    while not sched_file.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    address = json.loads(sched_file.read_text())["address"]
    for _ in range(2):
        procs.append(subprocess.Popen([DASK, "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                                       "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    with distributed.Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
        pids = list(client.run(os.getpid).values())
    try:
        yield address, pids
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _per_frame_equal(a: dict, b: dict, tol: float = 1e-4) -> None:
    assert [r["frame"] for r in a["per_frame"]] == [r["frame"] for r in b["per_frame"]]
    for x, y in zip(a["per_frame"], b["per_frame"]):
        for stream in ("distorted", "prefiltered"):
            for metric in ("vmaf", "vmaf_neg", "psnr_y", "ssim"):
                assert abs(x[stream][metric] - y[stream][metric]) <= tol, (x["frame"], stream, metric)


def test_batch_on_a_cluster_survives_a_killed_worker_and_resumes(titles, cluster, tmp_path, filter_onnx):
    root, manifest, ref, pairs = titles
    address, worker_pids = cluster
    out = tmp_path / "out"
    args = [str(manifest), "--out", str(out), "--scheduler", address, "--chunk-frames", "10", "--model",
            str(filter_onnx), "--device", "cpu", "--quiet"]
    child = subprocess.Popen([sys.executable, "-m", "vsfilter.batch", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    # kill a worker as soon as the first pair is written: the long titles' chunks are still running
    deadline = time.monotonic() + 300
    while not list(out.glob("*.json")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    written = {p.name for p in out.glob("*.json")}
    assert child.poll() is None and len(written) < 3, (written, child.poll())
    os.kill(worker_pids[0], signal.SIGKILL)
    _, err = child.communicate(timeout=600)
    assert child.returncode == 1, err  # the corrupt pair fails, every other pair completes

    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sorted(r["id"] for r in rows) == ["broken", "short", "x264", "x265"]  # each exactly once
    status = {r["id"]: r for r in rows}
    assert status["broken"]["status"] == "error" and "\n" not in status["broken"]["error"]
    assert "distorted" in status["broken"]["error"]
    for name, dist in pairs.items():
        assert status[name]["status"] == "ok"
        doc = json.loads((out / f"{name}.json").read_text())
        whole = compare(ref, dist, model=str(filter_onnx), device="cpu").to_dict()
        assert set(doc) == set(whole) | {"schema_version"}
        _per_frame_equal(doc, whole)
        assert abs(float(status[name]["psnr_y_delta"]) - whole["delta"]["psnr_y"]) <= 1e-4
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"

    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    again = _batch(*args[:-1])
    assert again.returncode == 1
    assert "3 of 4 pairs scored (3 from an earlier run)" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == before  # nothing rescored


def test_local_cluster_chunks_with_subsample_and_reports(titles, tmp_path, two_input_onnx):
    """Chunks of a quantizer-conditioned model: scores, and what it was told on each frame, as a whole run."""
    root, _, ref, pairs = titles
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "long", "reference": str(ref), "distorted": str(pairs["x264"])}) + "\n")
    out = tmp_path / "out"
    proc = _batch(str(manifest), "--out", str(out), "--workers", "2", "--chunk-frames", "7", "--subsample", "3",
                  "--model", str(two_input_onnx), "--device", "cpu", "--report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "long.json").read_text())
    whole = compare(ref, pairs["x264"], model=str(two_input_onnx), device="cpu", subsample=3).to_dict()
    _per_frame_equal(doc, whole)
    assert [r["frame"] for r in doc["per_frame"]] == list(range(0, 240, 3))
    told = [r["quantizer"] for r in doc["per_frame"]]
    assert told == [r["quantizer"] for r in whole["per_frame"]] and {t["source"] for t in told} == {"bitstream"}
    assert [n for n in doc["notes"] if "was told" in n] == [n for n in whole["notes"] if "was told" in n] != []
    page = (out / "long.html").read_text()
    assert "data:image/png;base64," in page and 'href="long.html"' in (out / "index.html").read_text()


def test_resume_recomputes_a_result_made_with_other_settings(titles, tmp_path):
    """A rerun reuses a result only when everything that shapes its scores is the same: another precision,
    VMAF model, subsample or tile size is scored again (it used to be "resumed" from the fp32 JSON)."""
    _, _, ref, pairs = titles
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"id,reference,distorted\nshort,{ref},{pairs['short']}\n")
    out = tmp_path / "out"
    base = [str(manifest), "--out", str(out), "--workers", "1", "--model", "learned_filter_codec_v1",
            "--device", "cpu"]

    def run(*extra: str) -> tuple[str, dict]:
        proc = _batch(*base, *extra)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout, json.loads((out / "short.json").read_text())

    first_out, first = run()
    assert "(0 from an earlier run)" in first_out and first["model"]["precision"] == "fp32"
    again_out, again = run()
    assert "(1 from an earlier run)" in again_out and again == first
    for extra, check in ((["--precision", "int8"], lambda d: d["model"]["precision"] == "int8"),
                         (["--subsample", "2"], lambda d: d["options"]["subsample"] == 2),
                         (["--tilesize", "32"], lambda d: d["options"]["tilesize"] == 32),
                         (["--vmaf-model", "vmaf_v0.6.1:phone"], lambda d: d["vmaf_model"] == "vmaf_v0.6.1:phone")):
        text, doc = run(*extra)
        assert "(0 from an earlier run)" in text and check(doc), (extra, text)


def test_bad_manifests_and_usage_exit_2(tmp_path):
    cases = {
        "nohead.csv": "ref.mkv,dist.mp4\n",
        "empty.csv": "reference,distorted\n",
        "dup.csv": "id,reference,distorted\na,r.mkv,d.mp4\na,r.mkv,e.mp4\n",
        "badid.csv": "id,reference,distorted\n../x,r.mkv,d.mp4\n",
        "bad.jsonl": '{"reference": "r.mkv", "distorted": "d.mp4"}\nnot json\n',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        proc = _batch(str(tmp_path / name), "--out", str(tmp_path / "o"))
        assert proc.returncode == 2, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("batch: error: "), (name, proc.stderr)
    (tmp_path / "ok.csv").write_text("reference,distorted\nr.mkv,d.mp4\n")
    (tmp_path / "file").write_text("x")
    assert "is a file" in _batch(str(tmp_path / "ok.csv"), "--out", str(tmp_path / "file")).stderr
    assert _batch(str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")).returncode == 2
    assert "--chunk-frames" in _batch(str(tmp_path / "ok.csv"), "--out", str(tmp_path / "o"),
                                      "--chunk-frames", "0").stderr
